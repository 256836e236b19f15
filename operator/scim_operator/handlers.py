"""Kopf's part, registered on a registry built per operator (no import-time registration,
no module state): login, and the workspace finalizer. Everything else (groups, users,
workspace status and tokens) is driven by informers and work queues (see ``app.py``)."""

from __future__ import annotations

from typing import Any

import kopf

from scim_core import constants as c

from .workspace_sync import WorkspaceSync


def kopf_settings() -> kopf.OperatorSettings:
    """Kopf's own bookkeeping under our API group; no Events from log lines."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # Events are posted on purpose, not from log lines
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def build_registry(workspaces: WorkspaceSync) -> kopf.OperatorRegistry:
    """The handlers of one operator, bound to its collaborators."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster ServiceAccount, else ``$KUBECONFIG`` (read now, not at import time)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.delete(c.GROUP, c.VERSION, c.WORKSPACE_PLURAL, registry=registry)
    async def _workspace_deleted(namespace: str, name: str, **_: Any) -> None:
        await workspaces.finalize(namespace, name)

    return registry
