"""ScimWorkspace reconciliation on the leader: the token Secret (``workspace_tokens``), the
``Ready``, ``TokenExpiring`` and ``Synced`` (is the IdP calling?) conditions, the group/user
counts and the workspace metrics.

Keys come from the cluster cache (any workspace change, the API's status writes included),
from the token Secret watch (a Secret changed or was deleted: revocation), from the
reconcile itself (it asks to be run again at the next time-based change: a rotation due, an
expiry warning, the IdP turning silent) and from the leader's periodic resync (a safety
net). The workspace is read fresh from the API server: token decisions are never taken on a
cached copy that may miss our own last write.

A workspace carries no finalizer: its groups own their bindings (garbage-collected in its
namespace; a group with a binding elsewhere has its own finalizer), so deleting a workspace,
or its namespace, never waits for the operator. Workspaces made by releases that put one on
lose it at their next reconcile."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.kube import NOT_FOUND, ignoring, patch_status
from scim_core.timestamps import parse_time

from . import metrics
from .cache import ClusterCache
from .conditions import same_conditions, set_condition
from .events import EventPoster
from .leader import Leadership, NotLeader, refused
from .workqueue import Result
from .workspace_health import (
    DEFAULT_IDP_SILENCE,
    idp_activity,
    next_recheck,
    silence_deadline,
    silence_limit,
)
from .workspace_mappings import role_mappings_condition
from .workspace_tokens import reconcile_workspace_token

log = logging.getLogger(__name__)
WorkspaceKey = tuple[str, str]  # (namespace, name)


class WorkspaceSync:
    def __init__(
        self,
        api: client.ApiClient,
        cache: ClusterCache,
        leader: Leadership,
        idp_silence: timedelta = DEFAULT_IDP_SILENCE,
        events: EventPoster | None = None,
    ) -> None:
        self.api = api
        self.cache = cache
        self.leader = leader
        #: Events about tokens and refused patterns: best-effort, through the bounded limiter
        #: shared with the group reconciles and the Revoker (the composition root passes one)
        self.events = events if events is not None else EventPoster(api, leader=leader)
        #: the Synced condition's default silence limit (a workspace may set its own)
        self.idp_silence = idp_silence

    def _forget(self, namespace: str) -> None:
        metrics.TOKEN_EXPIRY_SERIES.clear(namespace)
        metrics.WORKSPACE_CONDITION_SERIES.clear(namespace)

    async def reconcile(self, key: WorkspaceKey) -> Result:
        if not self.leader.is_leader():  # a takeover queues every workspace again; a lapse parks
            return refused(self.leader)
        namespace, name = key
        try:
            workspace = await client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                self._forget(namespace)
                return None
            raise
        try:
            if workspace["metadata"].get("deletionTimestamp"):
                self._forget(namespace)
                await self._drop_finalizer(workspace)
                return None
            await self._drop_finalizer(workspace)
            return await self._reconcile(workspace)
        except NotLeader:
            return refused(self.leader)

    async def _drop_finalizer(self, workspace: dict[str, Any]) -> None:
        """Remove the finalizer earlier releases put on every workspace (see the module doc)."""
        md = workspace["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if c.FINALIZER not in finalizers:
            return
        self.leader.check()
        with ignoring(404, 409, 422):  # gone or changed meanwhile: the next event retries
            await client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
                c.GROUP, c.VERSION, md["namespace"], c.WORKSPACE_PLURAL, md["name"],
                [
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {"op": "replace", "path": "/metadata/finalizers",
                     "value": [f for f in finalizers if f != c.FINALIZER]},
                ],
                _content_type="application/json-patch+json",
            )  # fmt: skip

    async def _reconcile(self, workspace: dict[str, Any]) -> Result:
        meta = workspace["metadata"]
        self.leader.check()
        try:
            outcome = await reconcile_workspace_token(
                self.api, kopf.Body(cast(kopf.RawBody, workspace)), self.events
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND or (exc.status == 403 and "being terminated" in str(exc.body)):
                return None  # the workspace or its namespace is (going) away: nothing left to manage
            raise
        token_status = outcome.status
        status: dict[str, Any] = workspace.get("status") or {}
        conditions = role_mappings_condition(self.events, workspace, outcome.conditions)
        now = datetime.now(UTC)
        last_request = parse_time((status.get("idp") or {}).get("lastRequestTime"))
        silence = silence_limit((workspace.get("spec") or {}).get("idpSilenceAfter"), self.idp_silence)
        activity = idp_activity(last_request, silence, now)
        conditions = set_condition(
            conditions, "Synced", activity.synced, activity.reason, activity.message, meta.get("generation")
        )
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
        metrics.WORKSPACE_CONDITION_SERIES.set(meta["namespace"], metrics.condition_values(conditions))
        recheck = next_recheck([*outcome.deadlines, silence_deadline(last_request, silence)], now)
        if changed:
            self.leader.check()
            await patch_status(self.api, c.WORKSPACE_PLURAL, meta["namespace"], meta["name"], changed)
        return recheck
