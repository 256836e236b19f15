"""Kubernetes client setup and the two write idioms shared by the API and the operator:
tolerating an object that is already gone, and merge-patching one of our objects' status."""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import os
import ssl
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
#: Connections (so requests in flight) per client.
POOL_SIZE = 64
#: An idle connection is closed after this long (aiohttp's default).
KEEPALIVE_SECONDS = 15.0
#: Bytes asyncio reads from a TLS connection at once, into a buffer each connection holds for
#: its life (asyncio's default: 256 KiB, zero-filled, so resident at once).
TLS_READ_BUFFER = 2**16


def small_tls_buffers(protocol: type = asyncio.sslproto.SSLProtocol, size: int = TLS_READ_BUFFER) -> bool:
    """Give every TLS connection opened from now on a read buffer of ``size`` bytes instead
    of asyncio's 256 KiB (``SSLProtocol.max_size``, a class constant asyncio reads once per
    connection); whether this Python has that constant. A kept-open connection to the API
    server cost 318 KB of RSS, 125 KB with 64 KiB (the operator keeps about 70 open: the
    Revoker's 64 and the watches), and reading a list page of 1,000 groups (1.9 MB) cost
    the same CPU within the measurement's noise; 16 KiB cost about twice as much
    (docs/operator.md, "Memory"). Call at process start."""
    if not isinstance(getattr(protocol, "max_size", None), int):
        return False  # another asyncio: its own buffers, nothing changed
    protocol.max_size = size  # type: ignore[attr-defined]  # checked above
    return True


def _has_kubeconfig() -> bool:
    return bool(os.environ.get("KUBECONFIG")) or os.path.exists(os.path.expanduser("~/.kube/config"))


async def api_client(
    user_agent: str | None = None, pool_size: int = POOL_SIZE, keepalive: float = KEEPALIVE_SECONDS
) -> client.ApiClient:
    """An ApiClient from ``$KUBECONFIG`` (or ~/.kube/config), else the in-cluster config.
    ``user_agent`` names this process in the API server's audit log; ``pool_size`` and
    ``keepalive`` size its connection pool (:func:`_own_session`)."""
    kubeconfig = os.environ.get("KUBECONFIG")
    configuration = client.Configuration()
    if _has_kubeconfig():
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    configuration.proxy = configuration.proxy or env_proxy(configuration.host, os.environ)
    api = client.ApiClient(configuration)
    await _own_session(api, keepalive)
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


def ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    """The TLS settings kubernetes-asyncio's REST client makes of ``configuration``: its CA,
    client certificate and verification switches."""
    ctx = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        ctx.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if configuration.disable_strict_ssl_verification:
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return ctx


async def _own_session(api: client.ApiClient, keepalive: float) -> None:
    """Give ``api`` a session of our own in place of kubernetes-asyncio's (unused so far):
    one that does not look up the environment per request (the proxy was resolved once by
    :func:`env_proxy`; credentials come from the kubeconfig, never ``~/.netrc``), on a pool
    whose idle connections live ``keepalive`` seconds."""
    rest = api.rest_client
    await rest.pool_manager.close()
    connector = aiohttp.TCPConnector(
        limit=api.configuration.connection_pool_maxsize,
        ssl=ssl_context(api.configuration),
        keepalive_timeout=keepalive,
    )
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


async def read_object(api: client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One of our namespaced objects by name (a GET, which kube-apiserver serves from etcd even
    while it rebuilds the kind's watch cache and refuses lists with a selector: 429); None when
    absent."""
    try:
        obj: dict[str, Any] = await client.CustomObjectsApi(api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, plural, name
        )
    except ApiException as exc:
        if exc.status != NOT_FOUND:
            raise
        return None
    return obj


async def read_fresh(api: client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One of our namespaced objects straight from the API server (a quorum list by name:
    a role that may list and watch needs no ``get``); None when absent or being deleted."""
    found = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, plural, field_selector=f"metadata.name={name}"
    )
    items = [o for o in found.get("items", []) if not o["metadata"].get("deletionTimestamp")]
    return dict(items[0]) if items else None
