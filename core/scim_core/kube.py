"""Kubernetes client setup and the two write idioms shared by the API and the operator:
tolerating an object that is already gone, and merge-patching one of our objects' status."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

NOT_FOUND = 404
#: kubernetes-asyncio's read buffer: a watch event carries a whole object (etcd allows 1.5 MiB).
READ_BUFFER = 2**21


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
    configuration.proxy = configuration.proxy or env_proxy(configuration.host, os.environ)
    api = client.ApiClient(configuration)
    _without_env_lookups(api)
    if user_agent:
        api.user_agent = user_agent
    return api


def env_proxy(host: str, env: Mapping[str, str]) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY`` (minus ``NO_PROXY``) name for the API
    server ``host``, read once at start. kubernetes-asyncio's session reads the environment
    (and ``~/.netrc``) on every request instead, each time in a worker thread: 16 % of the
    operator's event-loop samples during an offboarding (py-spy, docs/benchmarks.md)."""
    url = urllib.parse.urlsplit(host)
    ordered = sorted(env.items(), key=lambda item: item[0].islower())  # lowercase wins, as in curl
    proxies = {k.lower(): v for k, v in ordered if v and k.lower().endswith("_proxy")}
    no_proxy = proxies.pop("no_proxy", "")
    if not url.hostname or _bypassed(url.hostname, url.port, no_proxy):
        return None
    return proxies.get(f"{url.scheme}_proxy")


def _bypassed(hostname: str, port: int | None, no_proxy: str) -> bool:
    """``NO_PROXY`` as the standard library reads it (``*``, domain suffixes, host:port)."""
    host = f"{hostname}:{port}" if port else hostname
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # stdlib, untyped
    return bool(no_proxy) and bool(bypass(host, {"no": no_proxy}))


def _without_env_lookups(api: client.ApiClient) -> None:
    """Give ``api`` a session that does not look up the environment per request (the proxy
    was resolved once by :func:`env_proxy`; credentials come from the kubeconfig, never
    ``~/.netrc``), on the same connection pool."""
    rest = api.rest_client
    session: aiohttp.ClientSession = rest.pool_manager
    connector = session.connector
    session.detach()
    rest.pool_manager = aiohttp.ClientSession(connector=connector, read_bufsize=READ_BUFFER)


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
