"""Kopf handlers: small, idempotent, level-based. Each one re-computes the desired state
from what is in the cluster and writes only the difference."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import kopf
import prometheus_client
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.informer import Informer

from . import metrics
from .cache import BINDINGS, NAMESPACES, ClusterCache
from .conditions import same_conditions, set_condition
from .group_sync import GroupSync
from .settings import OperatorSettings
from .user_sync import UserSync
from .workqueue import WorkQueue
from .workspace_mappings import role_mappings_condition
from .workspace_tokens import TOKEN_SECRET_LABEL, reconcile_workspace_token

log = logging.getLogger(__name__)
SETTINGS = OperatorSettings.from_env()


@dataclass
class Heartbeat:
    """When a Kopf timer last ran here: timers run only on the active peering replica."""

    last: float = 0.0


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from scim_core.kube import api_client

    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # Events are posted on purpose, not from log lines
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    memo.api = await api_client()
    memo.beat = Heartbeat()  # shared: Kopf gives each object a shallow copy of the memo
    memo.queue = WorkQueue(lambda key: memo.sync.reconcile(key), workers=4, depth=metrics.QUEUE_DEPTH)
    memo.user_queue = WorkQueue(lambda key: memo.user_sync.reconcile(key), workers=2)
    memo.cache = ClusterCache(on_change=memo.queue.add, on_user_change=memo.user_queue.add)
    memo.sync = GroupSync(memo.api, SETTINGS, memo.cache)
    memo.sync.retry_later = memo.queue.add_later
    memo.user_sync = UserSync(memo.api, memo.cache, retry_later=memo.user_queue.add_later)
    if SETTINGS.peering:
        # Kopf runs timers only on the active replica: while workspace timers tick, this
        # replica may reconcile groups; a standby's informers stay warm for a fast takeover.
        beat = memo.beat
        memo.sync.active = lambda: time.monotonic() - beat.last < 3 * SETTINGS.workspace_resync_seconds
        memo.user_sync.active = memo.sync.active
    memo.informers = informers(memo.api, memo.cache)
    for informer in memo.informers:
        informer.start()
    memo.queue.start()
    memo.user_queue.start()
    if SETTINGS.metrics_port:
        try:
            prometheus_client.start_http_server(SETTINGS.metrics_port)
        except OSError as exc:
            log.warning("metrics port %s unavailable: %s", SETTINGS.metrics_port, exc)


@kopf.on.login()
def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount, else ``$KUBECONFIG`` (read now, not at import time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
    for informer in getattr(memo, "informers", []):
        await informer.stop()
    for name in ("queue", "user_queue"):
        queue = getattr(memo, name, None)
        if queue is not None:
            await queue.stop()
    api = getattr(memo, "api", None)
    if api is not None:
        await api.close()


# ---------------------------------------------------------------------------------- workspaces


async def reconcile_workspace(body: kopf.Body, memo: kopf.Memo) -> None:
    workspace: dict[str, Any] = dict(body)
    meta = workspace["metadata"]
    try:
        token_status = await reconcile_workspace_token(memo.api, body)
    except ApiException as exc:
        if exc.status == 403 and "being terminated" in str(exc.body):
            return  # the namespace is going away: nothing left to manage
        raise
    status: dict[str, Any] = workspace.get("status") or {}
    conditions = await role_mappings_condition(memo.api, workspace, token_status.pop("conditions"))
    ready = token_status["tokenFingerprint"] is not None
    conditions = set_condition(
        conditions, "Ready", ready, "WorkspaceReady" if ready else "NoValidToken",
        "Workspace is serving SCIM requests" if ready else "No valid token: see the TokenValid condition",
        meta.get("generation"),
    )  # fmt: skip
    desired = {**token_status, "observedGeneration": meta.get("generation")}
    cache: ClusterCache = memo.cache
    if cache.ready:  # counts only from a complete picture (no churn at start-up)
        desired["groups"] = cache.count(c.GROUP_PLURAL, meta["namespace"])
        desired["users"] = cache.count(c.USER_PLURAL, meta["namespace"])
    changed = {k: v for k, v in desired.items() if status.get(k) != v}
    if not same_conditions(status.get("conditions"), conditions):
        changed["conditions"] = conditions
    if not changed:
        return
    await client.CustomObjectsApi(memo.api).patch_namespaced_custom_object_status(
        c.GROUP, c.VERSION, meta["namespace"], c.WORKSPACE_PLURAL, meta["name"], {"status": changed},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


@kopf.on.event(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL)
async def workspace_event(
    type: str, body: kopf.Body, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        return
    await reconcile_workspace(body, memo)


@kopf.timer(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL, interval=SETTINGS.workspace_resync_seconds, sharp=False)
async def workspace_timer(
    body: kopf.Body, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    memo.beat.last = time.monotonic()
    if body["metadata"].get("deletionTimestamp"):
        return
    await reconcile_workspace(body, memo)


@kopf.on.event("v1", "secrets", labels={TOKEN_SECRET_LABEL: kopf.PRESENT})
async def token_secret_event(
    body: kopf.Body, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """A token Secret changed or was deleted: re-check its workspace at once (revocation)."""
    namespace = body["metadata"]["namespace"]
    owner = body["metadata"]["labels"][TOKEN_SECRET_LABEL]
    try:
        workspace = await client.CustomObjectsApi(memo.api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, owner
        )
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    await reconcile_workspace(kopf.Body(workspace), memo)


# ---------------------------------------------------------------------------------- groups → RoleBindings
# Groups, users, shards, namespaces and managed RoleBindings come from informers into
# ClusterCache (cache.py), which queues affected groups; GroupSync reconciles them.


def informers(api: client.ApiClient, cache: ClusterCache) -> list[Informer]:
    managed = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}"
    return [
        Informer(api, c.WORKSPACE_PLURAL, cache),
        Informer(api, c.USER_PLURAL, cache),
        Informer(api, c.GROUP_PLURAL, cache),
        Informer(api, c.SHARD_PLURAL, cache),
        Informer(api, NAMESPACES, cache, path="/api/v1/namespaces"),
        Informer(
            api,
            BINDINGS,
            cache,
            path="/apis/rbac.authorization.k8s.io/v1/rolebindings",
            label_selector=managed,
        ),
    ]


@kopf.on.delete(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL)
async def workspace_deleted(namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Finalizer: a workspace going away takes every binding it granted with it."""
    rbac = client.RbacAuthorizationV1Api(memo.api)
    selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.WORKSPACE_LABEL}={namespace}"
    for rb in (await rbac.list_role_binding_for_all_namespaces(label_selector=selector)).items:
        try:
            await rbac.delete_namespaced_role_binding(rb.metadata.name, rb.metadata.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
