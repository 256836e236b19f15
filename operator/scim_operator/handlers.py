"""Kopf handlers: small, idempotent, level-based. Each one re-computes the desired state
from what is in the cluster and writes only the difference."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import prometheus_client
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

from .conditions import same_conditions, set_condition
from .group_sync import GroupKey, GroupSync
from .settings import OperatorSettings
from .workqueue import WorkQueue
from .workspace_tokens import TOKEN_SECRET_LABEL, reconcile_workspace_token

log = logging.getLogger(__name__)
SETTINGS = OperatorSettings.from_env()


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
    memo.sync = GroupSync(memo.api, SETTINGS)
    memo.queue = WorkQueue(memo.sync.reconcile, workers=4)
    memo.sync.retry_later = memo.queue.add_later
    memo.queue.start()
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
    queue = getattr(memo, "queue", None)
    if queue is not None:
        await queue.stop()
    api = getattr(memo, "api", None)
    if api is not None:
        await api.close()


# ---------------------------------------------------------------------------------- indices


@kopf.index(c.GROUP, c.VERSION, c.GROUP_PLURAL)
def groups_by_namespace(namespace: str, **_: Any) -> dict[str, int]:
    return {namespace: 1}


@kopf.index(c.GROUP, c.VERSION, c.USER_PLURAL)
def users_by_namespace(namespace: str, **_: Any) -> dict[str, int]:
    return {namespace: 1}


# ---------------------------------------------------------------------------------- workspaces


async def reconcile_workspace(
    body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int],
) -> None:  # fmt: skip
    workspace: dict[str, Any] = dict(body)
    meta = workspace["metadata"]
    try:
        token_status = await reconcile_workspace_token(memo.api, body)
    except ApiException as exc:
        if exc.status == 403 and "being terminated" in str(exc.body):
            return  # the namespace is going away: nothing left to manage
        raise
    status: dict[str, Any] = workspace.get("status") or {}
    conditions = token_status.pop("conditions")
    ready = token_status["tokenFingerprint"] is not None
    conditions = set_condition(
        conditions, "Ready", ready, "WorkspaceReady" if ready else "NoValidToken",
        "Workspace is serving SCIM requests" if ready else "No valid token: see the TokenValid condition",
        meta.get("generation"),
    )  # fmt: skip
    desired = {
        **token_status,
        "observedGeneration": meta.get("generation"),
        "groups": len(groups_by_namespace.get(meta["namespace"], [])),
        "users": len(users_by_namespace.get(meta["namespace"], [])),
    }
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
    type: str, body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int], **_: Any,
) -> None:  # fmt: skip
    if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        return
    await reconcile_workspace(body, memo, groups_by_namespace, users_by_namespace)


@kopf.timer(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL, interval=SETTINGS.workspace_resync_seconds, sharp=False)
async def workspace_timer(
    body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int], **_: Any,
) -> None:  # fmt: skip
    if body["metadata"].get("deletionTimestamp"):
        return
    await reconcile_workspace(body, memo, groups_by_namespace, users_by_namespace)


@kopf.on.event("v1", "secrets", labels={TOKEN_SECRET_LABEL: kopf.PRESENT})
async def token_secret_event(
    body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int], **_: Any,
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
    await reconcile_workspace(kopf.Body(workspace), memo, groups_by_namespace, users_by_namespace)


# ---------------------------------------------------------------------------------- groups → RoleBindings


@kopf.index(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL)
def workspace_specs(namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    return {namespace: dict(spec)}


@kopf.index(c.GROUP, c.VERSION, c.USER_PLURAL)
def user_specs(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], Any]:
    return {(namespace, name): dict(spec)}


@kopf.index(c.GROUP, c.VERSION, c.GROUP_PLURAL)
def group_details(
    namespace: str, name: str, uid: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[GroupKey, Any]:
    return {
        (namespace, name): {
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "generation": meta.get("generation"),
            "spec": dict(spec),
            "status": dict(status),
            "deleting": bool(meta.get("deletionTimestamp")),
        }
    }


@kopf.index(c.GROUP, c.VERSION, c.GROUP_PLURAL)
def group_members(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    return {(namespace, m["value"]): name for m in spec.get("members") or []}


@kopf.index(c.GROUP, c.VERSION, c.SHARD_PLURAL)
def shard_members(namespace: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    """Members a large group keeps in ScimMemberShards: by group, and by member."""
    group = spec.get("group", "")
    members = list(spec.get("members") or [])
    out: dict[Any, Any] = {(namespace, group): members}
    out.update({(namespace, "member", m["value"]): group for m in members})
    return out


@kopf.index("v1", "namespaces")
def namespace_labels(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


@kopf.index(
    "rbac.authorization.k8s.io", "v1", "rolebindings", labels={c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
)
def managed_bindings(
    namespace: str, name: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[GroupKey, Any]:
    if c.WORKSPACE_LABEL not in labels or c.GROUP_LABEL not in labels:
        return {}
    return {
        (labels[c.WORKSPACE_LABEL], labels[c.GROUP_LABEL]): {
            "namespace": namespace,
            "name": name,
            "roleRef": dict(body.get("roleRef") or {}),
            "subjects": [dict(s) for s in body.get("subjects") or []],
            "metadata": {
                "labels": dict(labels),
                "ownerReferences": [dict(o) for o in body.get("metadata", {}).get("ownerReferences") or []],
            },
        }
    }


def _bind(memo: kopf.Memo, kwargs: dict[str, Any]) -> GroupSync:
    sync: GroupSync = memo.sync
    if not sync.idx.ready:
        idx = sync.idx
        idx.workspaces = kwargs["workspace_specs"]
        idx.users = kwargs["user_specs"]
        idx.groups = kwargs["group_details"]
        idx.namespaces = kwargs["namespace_labels"]
        idx.bindings = kwargs["managed_bindings"]
        idx.shards = kwargs["shard_members"]
        idx.ready = True
    return sync


def _groups_in(kwargs: dict[str, Any], namespace: str) -> list[GroupKey]:
    return [key for key in kwargs["group_details"] if key[0] == namespace]


@kopf.on.event(c.GROUP, c.VERSION, c.GROUP_PLURAL)
async def group_event(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    _bind(memo, kwargs)
    memo.queue.add((namespace, name))


@kopf.on.event(c.GROUP, c.VERSION, c.SHARD_PLURAL)
async def shard_event(namespace: str, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any) -> None:
    _bind(memo, kwargs)
    if spec.get("group"):
        memo.queue.add((namespace, spec["group"]))


@kopf.on.event(c.GROUP, c.VERSION, c.USER_PLURAL)
async def user_event(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """A user appeared, changed (active) or left: re-check every group listing them."""
    _bind(memo, kwargs)
    for group in kwargs["group_members"].get((namespace, name), ()):
        memo.queue.add((namespace, group))
    for group in kwargs["shard_members"].get((namespace, "member", name), ()):
        memo.queue.add((namespace, group))


@kopf.on.event(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL)
async def workspace_mappings_event(namespace: str, memo: kopf.Memo, **kwargs: Any) -> None:
    _bind(memo, kwargs)
    for key in _groups_in(kwargs, namespace):
        memo.queue.add(key)


@kopf.on.event("v1", "namespaces")
async def namespace_event(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """Namespace labels feed namespaceSelectors: re-check workspaces that use one."""
    sync = _bind(memo, kwargs)
    for ws_namespace, store in kwargs["workspace_specs"].items():
        for spec in store:
            if any(m.get("namespaceSelector") is not None for m in spec.get("roleMappings") or []):
                for key in _groups_in(kwargs, ws_namespace):
                    memo.queue.add(key)
    del sync


@kopf.on.event(
    "rbac.authorization.k8s.io", "v1", "rolebindings", labels={c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
)
async def binding_event(labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    """Drift: a managed RoleBinding was edited or deleted by hand: put it back."""
    _bind(memo, kwargs)
    if c.WORKSPACE_LABEL in labels and c.GROUP_LABEL in labels:
        memo.queue.add((labels[c.WORKSPACE_LABEL], labels[c.GROUP_LABEL]))


async def _delete_bindings(api: client.ApiClient, selector: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    found = await rbac.list_role_binding_for_all_namespaces(label_selector=selector)
    for rb in found.items:
        labels = rb.metadata.labels or {}
        if labels.get(c.MANAGED_BY_LABEL) != c.MANAGED_BY_VALUE:
            continue  # never touch what we do not manage
        try:
            await rbac.delete_namespaced_role_binding(rb.metadata.name, rb.metadata.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


@kopf.on.delete(c.GROUP, c.VERSION, c.GROUP_PLURAL)
async def group_deleted(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Finalizer: remove the group's bindings everywhere (GC only reaches its namespace)."""
    await _delete_bindings(
        memo.api,
        f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.GROUP_LABEL}={name},{c.WORKSPACE_LABEL}={namespace}",
    )


@kopf.on.delete(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL)
async def workspace_deleted(namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Finalizer: a workspace going away takes every binding it granted with it."""
    await _delete_bindings(
        memo.api, f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.WORKSPACE_LABEL}={namespace}"
    )
