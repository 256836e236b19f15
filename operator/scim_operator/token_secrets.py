"""Token Secrets, watched server-side by label: the list and watch requests carry
``labelSelector=<TOKEN_SECRET_LABEL>``, so the API server never sends this process any other
Secret (Kopf's ``labels=`` filter is applied client-side, after every Secret of the cluster
has been streamed). A change or deletion queues the owning workspace (revocation). Nothing
of the Secret is kept: the workspace reconcile reads it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from scim_core.informer import Informer

from .workspace_tokens import TOKEN_SECRET_LABEL

SECRETS = "secrets"
SECRETS_PATH = "/api/v1/secrets"
WorkspaceKey = tuple[str, str]


class TokenSecretEvents:
    """An informer sink that turns token Secret events into workspace keys."""

    def __init__(self, on_workspace: Callable[[WorkspaceKey], None]) -> None:
        self._on_workspace = on_workspace

    def _owner(self, obj: dict[str, Any]) -> None:
        md = obj.get("metadata") or {}
        owner = (md.get("labels") or {}).get(TOKEN_SECRET_LABEL)
        if owner and md.get("namespace"):
            self._on_workspace((md["namespace"], owner))

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            self._owner(obj)

    def upsert(self, plural: str, obj: dict[str, Any]) -> None:
        self._owner(obj)

    def delete(self, plural: str, obj: dict[str, Any]) -> None:
        self._owner(obj)


def token_secret_informer(api: client.ApiClient, sink: TokenSecretEvents) -> Informer:
    return Informer(api, SECRETS, sink, path=SECRETS_PATH, label_selector=TOKEN_SECRET_LABEL)
