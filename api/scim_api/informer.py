"""A watch-fed cache of one custom resource kind across all namespaces.

List once, then watch from that resourceVersion; on ``410 Gone`` list again. Every event
is handed to a sink (the in-memory directory), so reads never need a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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


class Informer:
    """Keeps ``sink`` in step with every object of ``plural`` in the cluster."""

    def __init__(self, api: client.ApiClient, plural: str, sink: Sink, on_ready: Callable[[], None]) -> None:
        self._api = client.CustomObjectsApi(api)
        self._plural = plural
        self._sink = sink
        self._on_ready = on_ready
        self.synced = asyncio.Event()
        self.healthy = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self._plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _list(self) -> str:
        result = await self._api.list_cluster_custom_object(c.GROUP, c.VERSION, self._plural)
        self._sink.replace_all(self._plural, result.get("items", []))
        rv: str = result["metadata"]["resourceVersion"]
        return rv

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                rv = await self._list()
                self.healthy = True
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
                self.healthy = False
                log.warning("informer %s: %s; retrying in %.1fs", self._plural, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _watch(self, rv: str) -> str:
        """Follow the watch from ``rv`` until it ends; return the last resourceVersion.

        Reads the raw stream (aiohttp's readline refuses lines over 128 KiB, and a large
        group's event is bigger than that)."""
        resp = await self._api.list_cluster_custom_object(
            c.GROUP, c.VERSION, self._plural, watch=True, resource_version=rv,
            allow_watch_bookmarks=True, timeout_seconds=290, _preload_content=False,
        )  # fmt: skip
        buffer = b""
        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        rv = self._handle(orjson.loads(line), rv)
        finally:
            resp.release()
        return rv

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj}")
        new_rv: str = obj.get("metadata", {}).get("resourceVersion", rv)
        if kind in ("ADDED", "MODIFIED"):
            self._sink.upsert(self._plural, obj)
        elif kind == "DELETED":
            self._sink.delete(self._plural, obj)
        return new_rv


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""
