"""Kopf's part, registered on a registry built per operator (no import-time registration,
no module state): login, and the liveness endpoint Kopf serves. Everything else (groups,
users, workspace status and tokens) is driven by informers and work queues (see ``app.py``).

No resource handler is registered, so Kopf watches and patches nothing: in particular it
puts no finalizer on workspaces (one that only a running operator removes strands the
namespace after an uninstall; see docs/operator.md, Uninstall)."""

from __future__ import annotations

from typing import Any

import kopf

from scim_core import constants as c


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


def build_registry() -> kopf.OperatorRegistry:
    """The handlers of one operator."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster ServiceAccount, else ``$KUBECONFIG`` (read now, not at import time)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    return registry
