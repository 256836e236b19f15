"""ScimWorkspace reconciliation on the leader: the token Secret (``workspace_tokens``), the
``Ready`` condition and the group/user counts; and the cleanup when a workspace goes away.

Keys come from the cluster cache (any workspace change), from the token Secret watch (a Secret
changed or was deleted: revocation) and from the leader's periodic resync (expiry, rotation
schedule). The workspace is read fresh from the API server: token decisions are never taken
on a cached copy that may miss our own last write."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.kube import NOT_FOUND, ignoring, patch_status

from .cache import ClusterCache
from .conditions import same_conditions, set_condition
from .leader import Leadership, NotLeader
from .workqueue import Result
from .workspace_mappings import role_mappings_condition
from .workspace_tokens import reconcile_workspace_token

log = logging.getLogger(__name__)
WorkspaceKey = tuple[str, str]  # (namespace, name)


class WorkspaceSync:
    def __init__(self, api: client.ApiClient, cache: ClusterCache, leader: Leadership) -> None:
        self.api = api
        self.cache = cache
        self.leader = leader

    async def _exists(self, namespace: str, name: str) -> bool:
        try:
            await client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            raise
        return True

    async def reconcile(self, key: WorkspaceKey) -> Result:
        if not self.leader.is_leader():
            return None  # the takeover queues every workspace again
        namespace, name = key
        try:
            workspace = await client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        if workspace["metadata"].get("deletionTimestamp"):
            return None
        try:
            await self._reconcile(workspace)
        except NotLeader:
            return None
        return None

    async def _reconcile(self, workspace: dict[str, Any]) -> None:
        meta = workspace["metadata"]
        self.leader.check()
        try:
            token_status = await reconcile_workspace_token(self.api, kopf.Body(cast(kopf.RawBody, workspace)))
        except ApiException as exc:
            if exc.status == 403 and "being terminated" in str(exc.body):
                return  # the namespace is going away: nothing left to manage
            raise
        status: dict[str, Any] = workspace.get("status") or {}
        conditions = await role_mappings_condition(self.api, workspace, token_status.pop("conditions"))
        ready = token_status["tokenFingerprint"] is not None
        conditions = set_condition(
            conditions, "Ready", ready, "WorkspaceReady" if ready else "NoValidToken",
            "Workspace is serving SCIM requests" if ready else "No valid token: see the TokenValid condition",
            meta.get("generation"),
        )  # fmt: skip
        desired = {**token_status, "observedGeneration": meta.get("generation")}
        if self.cache.ready:  # counts only from a complete picture (no churn at start-up)
            desired["groups"] = self.cache.count(c.GROUP_PLURAL, meta["namespace"])
            desired["users"] = self.cache.count(c.USER_PLURAL, meta["namespace"])
        changed = {k: v for k, v in desired.items() if status.get(k) != v}
        if not same_conditions(status.get("conditions"), conditions):
            changed["conditions"] = conditions
        if not changed:
            return
        self.leader.check()
        await patch_status(self.api, c.WORKSPACE_PLURAL, meta["namespace"], meta["name"], changed)

    async def finalize(self, namespace: str, name: str, poll: float = 2.0) -> None:
        """Finalizer: a workspace going away takes every binding it granted with it. Every
        replica's Kopf sees the deletion; a standby waits here until it leads, or until the
        workspace is gone (the leader did the work and removed the finalizer)."""
        while not self.leader.is_leader():
            if not await self._exists(namespace, name):
                return
            await asyncio.sleep(poll)
        rbac = client.RbacAuthorizationV1Api(self.api)
        selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.WORKSPACE_LABEL}={namespace}"
        for rb in (await rbac.list_role_binding_for_all_namespaces(label_selector=selector)).items:
            self.leader.check()
            with ignoring():
                await rbac.delete_namespaced_role_binding(rb.metadata.name, rb.metadata.namespace)
