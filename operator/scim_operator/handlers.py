"""Kopf handlers: small, idempotent, level-based. Each one re-computes the desired state
from what is in the cluster and writes only the difference."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes_asyncio import client

from scim_core import constants as c

from .conditions import same_conditions, set_condition
from .settings import OperatorSettings
from .workspace_tokens import TOKEN_SECRET_LABEL, reconcile_workspace_token

log = logging.getLogger(__name__)
SETTINGS = OperatorSettings.from_env()


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from scim_core.kube import api_client

    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # Events are posted on purpose, not from log lines
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    memo.api = await api_client()


@kopf.on.login()
def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount, else ``$KUBECONFIG`` (read now, not at import time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
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
    token_status = await reconcile_workspace_token(memo.api, body)
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
    if type == "DELETED":
        return
    await reconcile_workspace(body, memo, groups_by_namespace, users_by_namespace)


@kopf.timer(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL, interval=SETTINGS.workspace_resync_seconds, sharp=False)
async def workspace_timer(
    body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int], **_: Any,
) -> None:  # fmt: skip
    await reconcile_workspace(body, memo, groups_by_namespace, users_by_namespace)


@kopf.on.event("v1", "secrets", labels={TOKEN_SECRET_LABEL: kopf.PRESENT})
async def token_secret_event(
    body: kopf.Body, memo: kopf.Memo, groups_by_namespace: kopf.Index[str, int],
    users_by_namespace: kopf.Index[str, int], **_: Any,
) -> None:  # fmt: skip
    """A token Secret changed or was deleted: re-check its workspace at once (revocation)."""
    from kubernetes_asyncio.client.exceptions import ApiException

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
