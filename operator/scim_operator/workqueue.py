"""A work queue like client-go's ``workqueue``: a key added while it waits is queued once;
a key added while it is processed runs again afterwards (bursts of events for one group
collapse into few reconciles); a failed key comes back after a per-key exponential back-off
that a success resets (``ItemExponentialFailureRateLimiter``: base x 2^failures, capped).

The queue knows nothing of its handler until :meth:`WorkQueue.start`, so producers (the
cache) and the consumer (a syncer) can be built in any order."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


@dataclass
class ExponentialBackoff(Generic[K]):
    """Per-key delay: ``base * 2**failures``, at most ``cap`` (client-go: 5 ms .. 1000 s)."""

    base: float = 0.005
    cap: float = 1000.0
    _failures: dict[K, int] = field(default_factory=dict)

    def when(self, key: K) -> float:
        """The delay before the next attempt of ``key``, counting this failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base is past any cap; avoid float overflow
            return self.cap
        return float(min(self.base * 2**failures, self.cap))

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next failure starts from ``base`` again."""
        self._failures.pop(key, None)

    def retries(self, key: K) -> int:
        return self._failures.get(key, 0)


class Parked(enum.Enum):
    """A handler's answer "not now, and not on a timer": the key waits aside until
    :meth:`WorkQueue.unpark` (a leader whose renewal is overdue: see ``leader.py``)."""

    PARK = "park"


PARK = Parked.PARK
#: What a handler returns: None when done, seconds after which to look again (a re-check on
#: a timer, e.g. waiting for another component; not a failure), or ``PARK``.
Result = float | Parked | None


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        workers: int = 4,
        backoff: ExponentialBackoff[K] | None = None,
        retries: _Counter | None = None,
        depth: _Gauge | None = None,
    ) -> None:
        self.name = name
        self._workers = workers
        self._backoff: ExponentialBackoff[K] = backoff if backoff is not None else ExponentialBackoff()
        self._retries = retries  # a Prometheus counter of back-off re-queues
        self._depth = depth  # a Prometheus gauge of pending keys
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._parked: set[K] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ producers

    def add(self, key: K) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)
        self._report()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds; of several pending delays the earliest wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._waiting[key] = (due, loop.call_at(due, self._due, key))

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` again after its back-off (one more failure counted)."""
        if self._retries is not None:
            self._retries.inc()
        self.add_after(key, self._backoff.when(key))

    def forget(self, key: K) -> None:
        self._backoff.forget(key)

    def unpark(self) -> int:
        """Queue every parked key again (the lead resumed); how many there were."""
        parked, self._parked = self._parked, set()
        for key in parked:
            self.add(key)
        return len(parked)

    def drop_parked(self) -> int:
        """Forget the parked keys (the lead is lost: whoever leads next queues everything)."""
        dropped = len(self._parked)
        self._parked.clear()
        return dropped

    def parked(self) -> int:
        return len(self._parked)

    def pending(self) -> int:
        return len(self._queued) + len(self._active)

    def waiting(self) -> int:
        return len(self._waiting)

    # ------------------------------------------------------------------ consumers

    def start(self, handler: Callable[[K], Awaitable[Result]]) -> None:
        self._tasks = [
            asyncio.create_task(self._work(handler), name=f"{self.name}-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _due(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    async def _work(self, handler: Callable[[K], Awaitable[Result]]) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                again = await handler(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: reconcile of %s failed; retry %d with back-off",
                              self.name, key, self._backoff.retries(key) + 1)  # fmt: skip
                self.add_rate_limited(key)
            else:
                self.forget(key)
                if again is PARK:
                    self._parked.add(key)
                elif again is not None:
                    self.add_after(key, again)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
                self._report()
            # A handler with nothing to write never suspends, nor does ``Queue.get`` while keys
            # wait: without this, one worker ran a whole no-op pass (100,000 groups, 15 s) with
            # the event loop blocked, and the Lease renewal came back past its deadline.
            await asyncio.sleep(0)

    def _report(self) -> None:
        if self._depth is not None:
            self._depth.set(self.pending())
