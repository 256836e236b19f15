"""A de-duplicating work queue, as in controller-runtime: a key added while it waits is
queued once; a key added while it is being processed runs again afterwards. Bursts of
events for one group (Okta's parallel PATCHes) collapse into few reconciles."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)


K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handler: Callable[[K], Awaitable[None]],
        workers: int = 4,
        retry_delay: float = 1.0,
        depth: Any = None,
    ) -> None:
        self._depth = depth  # an optional Prometheus gauge of pending keys
        self._handler = handler
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()
        self._workers = workers
        self._retry_delay = retry_delay
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"workqueue-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def add(self, key: K) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)
        self._report()

    def add_later(self, key: K, delay: float = 30.0) -> None:
        """Queue ``key`` again after ``delay`` seconds (retries, waiting for readiness)."""
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def pending(self) -> int:
        return len(self._queued) + len(self._active)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._handler(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of %s failed; retrying", key)
                asyncio.get_running_loop().call_later(self._retry_delay, self.add, key)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
                self._report()

    def _report(self) -> None:
        if self._depth is not None:
            self._depth.set(self.pending())
