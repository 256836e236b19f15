"""The offboarding fast path (``scim_operator.revocation``) against the real control plane:
a deactivated user is removed from every binding of their groups by guarded JSON patches
ahead of the reconciles, a reactivation brings them back, a guarded patch of a binding
that changed meanwhile is refused whole by the API server (nothing half applied), and the
fast path's own connection pool is opened ahead of an offboarding."""

from __future__ import annotations

import re

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.kube import api_client
from scim_devenv.controlplane import ControlPlane
from scim_operator import metrics
from scim_operator.cache import ClusterCache
from scim_operator.leader import AlwaysLeader
from scim_operator.rbac import RBAC_API, revocation_patch
from scim_operator.revocation import WARM_KEEPALIVE_SECONDS, Revoker
from scim_operator.settings import OperatorSettings

from .helpers import allowed, create_user, create_workspace, custom, eventually

pytestmark = pytest.mark.cluster
GROUPS = 12


def _revoked_writes() -> float:
    return float(metrics.WRITES.labels("revoked")._value.get())


def test_deactivation_is_revoked_at_once_and_reactivation_restores(
    kube: client.ApiClient, namespace: str, operator_running: None
) -> None:
    create_workspace(
        kube,
        namespace,
        roleMappings=[{"name": "all", "groups": {"pattern": "team-.*"}, "clusterRole": "view"}],
    )
    create_user(kube, namespace, "usr-leaver", "leaver@example.com")
    create_user(kube, namespace, "usr-stayer", "stayer@example.com")
    for i in range(GROUPS):
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i:02d}"},
            "spec": {"displayName": f"team-{i:02d}", "members": [{"value": "usr-leaver"}, {"value": "usr-stayer"}]},
        })  # fmt: skip
    rbac = client.RbacAuthorizationV1Api(kube)

    def subjects() -> list[set[str]]:
        return [
            {s.name for s in rb.subjects or []} for rb in rbac.list_namespaced_role_binding(namespace).items
        ]

    both = {"leaver@example.com", "stayer@example.com"}
    eventually(lambda: len(subjects()) == GROUPS and all(s == both for s in subjects()), timeout=60)
    assert allowed(kube, "leaver@example.com", namespace)
    before = _revoked_writes()

    def set_active(active: bool) -> None:
        custom(kube).patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.USER_PLURAL, "usr-leaver", {"spec": {"active": active}}
        )

    set_active(False)
    eventually(lambda: not allowed(kube, "leaver@example.com", namespace), timeout=30)
    eventually(lambda: all(s == {"stayer@example.com"} for s in subjects()), timeout=30)
    assert len(subjects()) == GROUPS  # one subject out, the bindings stay
    assert allowed(kube, "stayer@example.com", namespace)
    # the removals were the fast path's JSON patches (a binding the operator had not cached yet
    # when the user changed is left to its reconcile), and the user's Event says how many
    # (the metric is the process's: a namespace of an earlier test torn down meanwhile may
    # add its own removals, so this namespace's count is the Event's)
    assert _revoked_writes() - before > 0

    def revoked_event() -> str | None:
        events = (
            client.CoreV1Api(kube)
            .list_namespaced_event(
                namespace, field_selector="involvedObject.name=usr-leaver,reason=AccessRevoked"
            )
            .items
        )
        return events[0].message if events else None

    message = eventually(revoked_event)
    found = re.fullmatch(r"Removed from (\d+) RoleBindings", message or "")
    assert found is not None, message
    revoked = int(found.group(1))
    assert 0 < revoked <= GROUPS and revoked <= _revoked_writes() - before

    set_active(True)
    eventually(lambda: allowed(kube, "leaver@example.com", namespace), timeout=30)
    eventually(lambda: len(subjects()) == GROUPS and all(s == both for s in subjects()), timeout=30)


def test_a_guarded_removal_of_a_changed_binding_is_refused_whole(
    kube: client.ApiClient, namespace: str
) -> None:
    """Not labelled as ours, so no operator touches it: only the API server's JSON patch."""
    rbac = client.RbacAuthorizationV1Api(kube)

    def user(name: str) -> dict[str, str]:
        return {"kind": "User", "apiGroup": RBAC_API, "name": name}

    body = {
        "metadata": {"name": "hand-made"},
        "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": "view"},
        "subjects": [user("a"), user("leaver"), user("b")],
    }
    read = rbac.create_namespaced_role_binding(namespace, body)
    ops = revocation_patch(kube.sanitize_for_serialization(read), frozenset({"a", "b"}))
    # someone inserts a subject first: the indices moved, the guard fails, nothing is removed
    rbac.patch_namespaced_role_binding(
        "hand-made", namespace, [{"op": "add", "path": "/subjects/0", "value": user("z")}]
    )
    with pytest.raises(ApiException) as refused:
        rbac.patch_namespaced_role_binding("hand-made", namespace, ops)
    assert refused.value.status == 422
    live = rbac.read_namespaced_role_binding("hand-made", namespace)
    assert [s.name for s in live.subjects] == ["z", "a", "leaver", "b"]
    # planned again from what is there now, it applies
    ops = revocation_patch(kube.sanitize_for_serialization(live), frozenset({"a", "b", "z"}))
    rbac.patch_namespaced_role_binding("hand-made", namespace, ops)
    assert [s.name for s in rbac.read_namespaced_role_binding("hand-made", namespace).subjects] == [
        "z",
        "a",
        "b",
    ]


async def test_warm_opens_every_connection_of_the_revocation_pool(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the patches of an offboarding wait for no TLS handshake."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    api = await api_client(pool_size=5, keepalive=WARM_KEEPALIVE_SECONDS)
    try:
        revoker = Revoker(
            api, OperatorSettings.from_env({}), ClusterCache(), AlwaysLeader(), print, concurrency=5
        )
        await revoker.warm()
        await revoker.warm()  # again: the five open ones are reused
        connector = api.rest_client.pool_manager.connector
        open_idle = sum(len(conns) for conns in connector._conns.values())  # aiohttp has no public count
        assert open_idle == 5
    finally:
        await api.close()
