"""Reads and the writes the API makes on ScimUsers: ``spec.active``, and the opt-in create.

Users are owned by the workspace (platform admins create them); an IdP may only turn
``active`` on and off, and create users in the domains the workspace lists
(``protocol/user_create.py``). A deactivation is never answered as "nothing to do" from the cache,
which may lag another replica: the absolute JSON Patch always goes to the API server, which
confirms a no-op against etcd before answering it, and its answer is what the IdP sees."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.kube import read_fresh

from .directory import Directory
from .errors import ScimError, not_found, uniqueness
from .kube_errors import NETWORK_ERRORS, kube_error, reason
from .protocol.preconditions import PreconditionFailed, check_if_match
from .protocol.user_create import user_manifest
from .write_noter import WriteNoter, note

Obj = dict[str, Any]
log = logging.getLogger(__name__)
NOT_PERMITTED = (
    "This workspace allows user creation but the SCIM service may not create users: "
    "ask the platform administrator to grant it (Helm value api.userProvisioning.enabled)."
)


class UserStore:
    def __init__(self, api: client.ApiClient, directory: Directory, noter: WriteNoter | None = None) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._directory = directory
        #: names each write for the operator while a watch is down (``write_noter``)
        self._noter = noter

    async def current(self, namespace: str, uid: str) -> Obj:
        """From the cache, or from the API server when the cache has not seen it yet."""
        obj = self._directory.user_table(namespace).by_id.get(uid)
        return obj if obj is not None else await self.fetch(namespace, uid)

    async def fetch(self, namespace: str, uid: str) -> Obj:
        """The user fresh from the API server (a quorum list by name: the API's role may
        list users, and needs no ``get``)."""
        try:
            obj = await read_fresh(self._api, c.USER_PLURAL, namespace, uid)
        except (ApiException, *NETWORK_ERRORS) as exc:
            raise kube_error(exc) from exc
        if obj is None:
            raise not_found(f"User {uid!r} not found")
        obj.setdefault("kind", c.USER_KIND)  # list items carry no kind
        self._directory.upsert(c.USER_PLURAL, obj)
        return obj

    async def create(self, namespace: str, spec: Obj) -> Obj:
        """Create an IdP-made user whose userName is free in the workspace.

        Against admin-made users the cache decides (a user an admin creates at the same
        instant may slip through); between API replicas the name derived from the userName
        makes the API server refuse the second create (409)."""
        taken = self._directory.user_table(namespace).lookup("userName", str(spec["userName"]))
        if taken:
            raise uniqueness(f"A user with userName {spec['userName']!r} already exists")
        try:
            obj: Obj = await self._custom.create_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.USER_PLURAL, user_manifest(namespace, spec),
                field_manager=c.API_FIELD_MANAGER,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 409:
                raise uniqueness(f"A user with userName {spec['userName']!r} already exists") from exc
            if exc.status == 403:  # the workspace opted in, the installation did not
                log.error("may not create ScimUsers (grant api.userProvisioning): %s", reason(exc))
                raise ScimError(403, NOT_PERMITTED) from exc
            raise kube_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise kube_error(exc) from exc
        self._directory.upsert(c.USER_PLURAL, obj)
        await note(self._noter, namespace, c.USER_PLURAL, obj)
        return obj

    async def set_active(
        self, namespace: str, uid: str, decide: Callable[[Obj], bool], if_match: str | None = None
    ) -> Obj:
        """Write ``spec.active = decide(user)`` and return the stored user.

        ``decide`` validates the request against the user (raising a ScimError) and
        returns the wanted ``active``. ``If-Match`` is checked against the cached user, then
        once more against a fresh one (the cache may lag), and guarded in the write."""
        obj = await self.current(namespace, uid)
        try:
            check_if_match(obj, if_match)
        except PreconditionFailed:
            obj = await self.fetch(namespace, uid)
            check_if_match(obj, if_match)
        active = decide(obj)
        ops: list[Obj] = []
        if if_match is not None:
            ops.append(
                {"op": "test", "path": "/metadata/generation", "value": obj["metadata"].get("generation")}
            )
        # one field, set to an absolute value; no resourceVersion guard (the operator's
        # status writes move it all the time)
        ops.append({"op": "add", "path": "/spec/active", "value": active})
        try:
            updated: Obj = await self._custom.patch_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.USER_PLURAL, uid, ops,
                field_manager=c.API_FIELD_MANAGER, _content_type="application/json-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                raise not_found(f"User {uid!r} not found") from exc
            if exc.status in (409, 422) and if_match is not None:
                raise PreconditionFailed() from exc
            if exc.status == 409:
                raise ScimError(409, "The user changed meanwhile; retry the request") from exc
            raise kube_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise kube_error(exc) from exc
        self._directory.upsert(c.USER_PLURAL, updated)
        await note(self._noter, namespace, c.USER_PLURAL, updated)
        return updated
