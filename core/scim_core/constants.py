"""Names every component agrees on: the API group, kinds, labels and paths.

This is the single source of these facts; nothing else spells them out.
"""

from __future__ import annotations

from typing import Any, Final

GROUP: Final = "scim.optimaite.eu"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

WORKSPACE_KIND: Final = "ScimWorkspace"
WORKSPACE_PLURAL: Final = "scimworkspaces"
GROUP_KIND: Final = "ScimGroup"
GROUP_PLURAL: Final = "scimgroups"
#: Overflow storage for the members of large groups (no object may pass 1 MiB).
SHARD_KIND: Final = "ScimMemberShard"
SHARD_PLURAL: Final = "scimmembershards"
USER_KIND: Final = "ScimUser"
USER_PLURAL: Final = "scimusers"

#: Labels put on every object the operator manages.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "scim-operator"
GROUP_LABEL: Final = f"{GROUP}/group"
WORKSPACE_LABEL: Final = f"{GROUP}/workspace"

#: Finalizer the operator puts on groups and workspaces to clean up what GC cannot reach.
FINALIZER: Final = f"{GROUP}/cleanup"

#: Field manager for server-side apply and for every write the components make.
OPERATOR_FIELD_MANAGER: Final = "scim-operator"
API_FIELD_MANAGER: Final = "scim-api"

#: The SCIM base path, as in the product documentation.
SCIM_BASE_PATH: Final = "/api/auth/scim/v2"

#: Key of the token inside a workspace token Secret.
TOKEN_SECRET_KEY: Final = "token"


def owner_reference(kind: str, name: str, uid: str, block_deletion: bool = True) -> dict[str, Any]:
    """A controller ownerReference to one of our objects (garbage-collected with it)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": block_deletion,
    }
