"""Kubernetes client setup and the two write idioms shared by the API and the operator:
tolerating an object that is already gone, and merge-patching one of our objects' status."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

NOT_FOUND = 404


def _has_kubeconfig() -> bool:
    return bool(os.environ.get("KUBECONFIG")) or os.path.exists(os.path.expanduser("~/.kube/config"))


async def api_client(user_agent: str | None = None) -> client.ApiClient:
    """An ApiClient from ``$KUBECONFIG`` (or ~/.kube/config), else the in-cluster config.
    ``user_agent`` names this process in the API server's audit log."""
    kubeconfig = os.environ.get("KUBECONFIG")
    configuration = client.Configuration()
    if _has_kubeconfig():
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    api = client.ApiClient(configuration)
    if user_agent:
        api.user_agent = user_agent
    return api


@contextlib.contextmanager
def ignoring(*statuses: int) -> Iterator[None]:
    """Swallow an ``ApiException`` with one of ``statuses`` (default: 404, the object is
    already gone, which for a delete or a status write is success)."""
    try:
        yield
    except ApiException as exc:
        if exc.status not in (statuses or (NOT_FOUND,)):
            raise


async def patch_status(
    api: client.ApiClient,
    plural: str,
    namespace: str,
    name: str,
    status: dict[str, Any],
    resource_version: str | None = None,
) -> dict[str, Any] | None:
    """Merge-patch ``status`` of one of our namespaced objects; the object as stored after,
    or None when it is gone meanwhile (not an error: its deletion is handled by its own
    event). With ``resource_version`` the write is refused (409) if the object moved since:
    a read-modify-write of a list another writer also changes."""
    body: dict[str, Any] = {"status": status}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    try:
        updated: dict[str, Any] = await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            c.GROUP, c.VERSION, namespace, plural, name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    except ApiException as exc:
        if exc.status != NOT_FOUND:
            raise
        return None
    return updated


async def read_fresh(api: client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One of our namespaced objects straight from the API server (a quorum list by name:
    a role that may list and watch needs no ``get``); None when absent or being deleted."""
    found = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, plural, field_selector=f"metadata.name={name}"
    )
    items = [o for o in found.get("items", []) if not o["metadata"].get("deletionTimestamp")]
    return dict(items[0]) if items else None
