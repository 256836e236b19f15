"""A watch-fed cache of one resource kind across all namespaces (client-go's informer, small).

List once, then watch from that resourceVersion; on ``410 Gone`` list again. Every event
is handed to a sink, so reads never need a round trip, and ``synced`` tells exactly when the
first full list has landed (nothing is decided on half a picture). Used by the API's
directory and the operator's cluster cache.

``health`` says how long the informer has gone without hearing from the API server. A quiet
but healthy watch still proves itself: it is asked to end after ``watch_timeout`` seconds
(the server closes it cleanly and it is re-opened at once), so silence longer than that
means the connection is broken or half-open (a network partition need not reset anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from kubernetes_asyncio import client

from scim_core import constants as c

log = logging.getLogger(__name__)


class Sink(Protocol):
    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None: ...
    def upsert(self, plural: str, obj: dict[str, Any]) -> None: ...
    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


def _custom_path(plural: str) -> str:
    return f"/apis/{c.GROUP}/{c.VERSION}/{plural}"


class WatchHealth:
    """When an informer last heard from the API server (a list, a watch opened, an event,
    a bookmark, a watch the server ended cleanly): the basis for readiness."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None

    def heard(self) -> None:
        self._last = self._clock()

    def silent_for(self) -> float:
        """Seconds since the API server was last heard from; infinite before the first time."""
        return math.inf if self._last is None else self._clock() - self._last


class Informer:
    """Keeps ``sink`` in step with every object of one kind in the cluster.

    ``plural`` names the kind to the sink; ``path`` is its cluster-wide list URL
    (default: our API group's ``plural``), ``label_selector`` narrows it. Each watch request
    asks the server to end it after ``watch_timeout`` seconds (see ``health``)."""

    def __init__(
        self,
        api: client.ApiClient,
        plural: str,
        sink: Sink,
        on_ready: Callable[[], None] = lambda: None,
        path: str | None = None,
        label_selector: str | None = None,
        watch_timeout: int = 290,
    ) -> None:
        self._api = api
        self._path = path or _custom_path(plural)
        self._selector = label_selector
        self._plural = plural
        self._sink = sink
        self._on_ready = on_ready
        self._watch_timeout = max(1, watch_timeout)
        self.synced = asyncio.Event()
        self.health = WatchHealth()
        self._task: asyncio.Task[None] | None = None

    @property
    def plural(self) -> str:
        return self._plural

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self._plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _get(self, request_timeout: float, **query: Any) -> Any:
        params = [(k, v) for k, v in query.items() if v is not None]
        if self._selector:
            params.append(("labelSelector", self._selector))
        response = await self._api.call_api(
            self._path, "GET", query_params=params, auth_settings=["BearerToken"],
            _preload_content=False, _request_timeout=request_timeout,
        )  # fmt: skip
        return response[0] if isinstance(response, tuple) else response

    async def _list(self) -> str:
        resp = await self._get(330)
        try:
            result = orjson.loads(await resp.read())
        finally:
            resp.release()
        if "items" not in result:
            raise RuntimeError(f"list {self._path}: {result.get('message', result)}")
        self.health.heard()
        kind = result.get("kind", "").removesuffix("List")
        items = result.get("items") or []
        for item in items:  # list items carry no kind; the watch's objects do
            item.setdefault("kind", kind)
        self._sink.replace_all(self._plural, items)
        rv: str = result["metadata"]["resourceVersion"]
        return rv

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                rv = await self._list()
                if not self.synced.is_set():
                    self.synced.set()
                    self._on_ready()
                backoff = 0.5
                while True:
                    rv = await self._watch(rv)
            except asyncio.CancelledError:
                raise
            except _Gone:
                continue
            except Exception as exc:  # the API server may be gone for a while: keep trying
                log.warning("informer %s: %s; retrying in %.1fs", self._plural, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _watch(self, rv: str) -> str:
        """Follow the watch from ``rv`` until it ends; return the last resourceVersion.

        Reads the raw stream (aiohttp's readline refuses lines over 128 KiB, and a large
        group's event is bigger than that)."""
        resp = await self._get(
            self._watch_timeout + 30,
            watch="true", resourceVersion=rv, allowWatchBookmarks="true",
            timeoutSeconds=str(self._watch_timeout),
        )  # fmt: skip
        if resp.status != 200:
            resp.release()
            if resp.status == 410:
                raise _Gone()
            raise RuntimeError(f"watch {self._path}: HTTP {resp.status}")
        self.health.heard()
        buffer = b""
        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        rv = self._handle(orjson.loads(line), rv)
                        self.health.heard()
        finally:
            resp.release()
        self.health.heard()  # the server ended the watch as asked: the connection was alive
        return rv

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj}")
        new_rv: str = obj.get("metadata", {}).get("resourceVersion", rv)
        if kind == "BOOKMARK":
            return new_rv
        if kind in ("ADDED", "MODIFIED"):
            self._sink.upsert(self._plural, obj)
        elif kind == "DELETED":
            self._sink.delete(self._plural, obj)
        return new_rv


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""
