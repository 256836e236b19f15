"""Best-effort work in the background, bounded twice: at most ``concurrency`` pieces run at
once, and at most ``capacity`` are held (running or waiting for a slot); what would queue
beyond that is dropped and counted instead of piling up in memory.

For Kubernetes Events: a first sync of 1,000 groups writes 1,000 RoleBindings, each with its
Event; posted as they came they reached the API server all at once, competing with the writes
that matter. An Event is worth a slot, never a wait of the work it reports on, nor unbounded
memory (100,000 groups synced at once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Nothing:
    def inc(self, amount: float = 1) -> None:
        """No metric: nothing to count."""


class BoundedBackground:
    def __init__(self, concurrency: int, capacity: int, dropped: _Counter | None = None) -> None:
        if concurrency < 1 or capacity < concurrency:
            raise ValueError(f"need 1 <= concurrency <= capacity, got {concurrency} and {capacity}")
        self.capacity = capacity
        self.dropped: _Counter = dropped if dropped is not None else _Nothing()
        self._slots = asyncio.Semaphore(concurrency)
        self._held: set[asyncio.Task[None]] = set()
        #: pieces running now, and the most that ever ran at once (for tests and logs)
        self.running = 0
        self.peak = 0

    @property
    def held(self) -> int:
        """Pieces running or waiting for a slot."""
        return len(self._held)

    def submit(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work()`` in the background when a slot is free; False (and counted as dropped)
        when ``capacity`` pieces are held already. ``work`` is only called once it has a slot,
        so a dropped piece costs nothing (not even an un-awaited coroutine)."""
        if len(self._held) >= self.capacity:
            self.dropped.inc()
            return False
        task = asyncio.get_running_loop().create_task(self._run(work))
        self._held.add(task)
        task.add_done_callback(self._held.discard)
        return True

    async def _run(self, work: Callable[[], Awaitable[None]]) -> None:
        async with self._slots:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await work()
            except Exception:  # best-effort: a failure is logged, never raised into the loop
                log.warning("background work failed", exc_info=True)
            finally:
                self.running -= 1

    async def drain(self) -> None:
        """Wait until nothing is held (what is submitted meanwhile is waited for too)."""
        while self._held:
            await asyncio.gather(*self._held, return_exceptions=True)

    async def close(self, grace: float = 0.0) -> None:
        """Stopping: wait up to ``grace`` seconds for what is held, then cancel the rest
        (best-effort work does not hold a shutdown up)."""
        if self._held and grace > 0:
            await asyncio.wait(set(self._held), timeout=grace)
        held = list(self._held)
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
