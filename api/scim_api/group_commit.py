"""Group commit: concurrent changes to one group share one write to the API server.

The API server serializes writes to one object, so one write per SCIM request caps member
adds on a busy group at the raw write rate. Here a request that finds a write in flight for
its group joins the next round instead; a round folds the changes of every request waiting
for it into one change (:func:`fold`) and writes that once. Each request still gets its own
answer:

- a request whose operations fail (400 ``noTarget``, ``invalidValue``, the member cap) is
  answered with its own error, and the others' changes go on without it;
- a conditional request (``If-Match`` naming a version) runs in a round of its own, so its
  412 and its check-then-write stay exactly as without batching;
- when a whole round's write fails (a rename that collides, the API server refusing it), the
  requests of that round are re-run one by one, so one bad request never fails the others.

Nothing is answered before the write that holds its change has landed. The folding is pure
(:func:`fold`, :func:`next_round`, :func:`linger`); :class:`GroupCommit` is the small asyncio
coordinator.

A round answers its requests together, so clients that send one request after another come
back together, a moment after the next round has already started with whoever was waiting:
eight clients split into two cohorts of about four, each round writing half of what it could.
So before a round the writer waits a little (:func:`linger`, a fraction of the last round's
write time, at most ``MAX_LINGER``) while fewer requests wait than the last round answered.
A lone client's requests (a round of one) never wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # the type only: scim_api.state (imported before the web stack, main.py) stays light
    from .protocol.group_patch import GroupState

Change = Callable[["GroupState"], "GroupState"]
R = TypeVar("R")

#: Most requests folded into one round: bounds the work (and the answer delay) of a round.
MAX_ROUND = 256
#: Longest wait for the last round's clients to come back before a round starts, and the
#: share of the last round's write time it may take (a few ms against a write of 50-100 ms).
MAX_LINGER = 0.02
LINGER_SHARE = 0.25
#: Groups whose last round is remembered after their writer stopped (oldest forgotten first).
MAX_REMEMBERED = 1024


@dataclass
class Pending(Generic[R]):
    """One request waiting for a round."""

    change: Change
    if_match: str | None = None
    future: asyncio.Future[R] | None = None

    @property
    def exclusive(self) -> bool:
        """A check-then-write on a version runs alone (its 412 must be its own)."""
        return self.if_match is not None and self.if_match.strip() != "*"


def next_round(queue: list[Pending[R]], limit: int = MAX_ROUND) -> list[Pending[R]]:
    """The requests of the next round, taken off the front of ``queue`` (arrival order):
    a conditional request alone, otherwise every unconditional one up to the next
    conditional request (it keeps its place in line) and at most ``limit``."""
    if not queue:
        return []
    if queue[0].exclusive:
        return [queue.pop(0)]
    n = 0
    while n < len(queue) and n < limit and not queue[n].exclusive:
        n += 1
    taken = queue[:n]
    del queue[:n]
    return taken


@dataclass
class Folded:
    """The outcome of folding a round's changes into one: the state to write and, per
    request, None (applied) or the error it raised (answered alone)."""

    state: GroupState
    errors: list[Exception | None] = field(default_factory=list)


def fold(state: GroupState, changes: list[Change]) -> Folded:
    """Apply ``changes`` in order, each to the result of the ones before; a change that
    raises is left out (its error kept) and the next one sees the state without it."""
    out = Folded(state)
    for change in changes:
        try:
            out.state = change(out.state)
        except Exception as exc:  # answered to that request alone
            out.errors.append(exc)
        else:
            out.errors.append(None)
    return out


def linger(waiting: int, last_round: int, last_seconds: float) -> float:
    """Seconds to wait for more requests before the next round: none while as many wait as
    the last round answered, or when that round was a lone request (nobody to wait for)."""
    if last_round <= 1 or waiting >= last_round:
        return 0.0
    return min(MAX_LINGER, last_seconds * LINGER_SHARE)


#: Writes one round: (change for the whole round, If-Match or None) -> the result.
Writer = Callable[[Change, "str | None"], Awaitable[R]]


class GroupCommit(Generic[R]):
    """Per-group queues of waiting requests, each drained by one writer task at a time."""

    def __init__(self, limit: int = MAX_ROUND) -> None:
        self._queues: dict[Hashable, list[Pending[R]]] = {}
        self._arrived: dict[Hashable, asyncio.Event] = {}  # set when a request joins a queue
        # per group whose writer stopped: its last round's size and write time
        self._last: dict[Hashable, tuple[int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # held so a running writer is not collected
        self._limit = limit
        self.rounds = 0  # writes started (for tests and metrics): fewer than requests under load

    async def submit(self, key: Hashable, change: Change, if_match: str | None, write: Writer[R]) -> R:
        """Queue ``change`` for the group ``key`` and wait for the round that writes it."""
        pending: Pending[R] = Pending(change, if_match, asyncio.get_running_loop().create_future())
        queue = self._queues.get(key)
        if queue is None:  # no write in flight: this request starts the writer
            queue = self._queues[key] = [pending]
            task = asyncio.get_running_loop().create_task(self._drain(key, queue, write))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append(pending)
            arrived = self._arrived.get(key)
            if arrived is not None:
                arrived.set()
        assert pending.future is not None
        # the writer goes on if this request is cancelled: what it joined still lands whole
        return await asyncio.shield(pending.future)

    async def _drain(self, key: Hashable, queue: list[Pending[R]], write: Writer[R]) -> None:
        last_round, last_seconds = self._last.pop(key, (1, 0.0))
        try:
            while queue:
                await self._linger(key, queue, last_round, linger(len(queue), last_round, last_seconds))
                batch = next_round(queue, self._limit)
                started = time.monotonic()
                try:
                    await self._round(batch, write)
                except BaseException as exc:  # never leave a request waiting forever
                    for p in batch:
                        _resolve(p, None, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                    raise
                last_round, last_seconds = len(batch), time.monotonic() - started
        finally:
            del self._queues[key]
            self._arrived.pop(key, None)
            if last_round > 1:  # the clients of that round may come back to a new writer
                if len(self._last) >= MAX_REMEMBERED:
                    del self._last[next(iter(self._last))]
                self._last[key] = (last_round, last_seconds)
            for p in queue:  # only when the writer itself was stopped (shutdown)
                _resolve(p, None, RuntimeError("the group writer stopped"))

    async def _linger(self, key: Hashable, queue: list[Pending[R]], want: int, seconds: float) -> None:
        """Wait up to ``seconds`` until ``want`` requests wait (each arrival re-checks)."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        arrived = self._arrived.setdefault(key, asyncio.Event())
        while len(queue) < want and (left := deadline - time.monotonic()) > 0:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), left)
            except TimeoutError:
                return

    async def _round(self, batch: list[Pending[R]], write: Writer[R]) -> None:
        self.rounds += 1
        if len(batch) == 1:
            await _settle(batch[0], write(batch[0].change, batch[0].if_match))
            return
        errors: list[Exception | None] = []

        def change(state: GroupState) -> GroupState:
            folded = fold(state, [p.change for p in batch])
            errors[:] = folded.errors  # the last attempt's outcome counts (a conflict re-folds)
            return folded.state

        try:
            result = await write(change, None)
        except Exception:  # the round as a whole failed: each request alone, in order
            for p in batch:
                self.rounds += 1
                await _settle(p, write(p.change, p.if_match))
            return
        for p, error in zip(batch, errors, strict=True):
            _resolve(p, result, error)


async def _settle(p: Pending[R], outcome: Awaitable[R]) -> None:
    try:
        result = await outcome
    except Exception as exc:
        _resolve(p, None, exc)
    else:
        _resolve(p, result, None)


def _resolve(p: Pending[R], result: R | None, error: Exception | None) -> None:
    assert p.future is not None
    if p.future.done():
        return
    if error is not None:
        p.future.set_exception(error)
    else:
        p.future.set_result(result)  # type: ignore[arg-type]
