"""Group commit: how concurrent changes to one group are folded into rounds (pure parts)
and answered one by one (the coordinator, with a fake writer in place of the API server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from scim_api.errors import ScimError, bad_request, uniqueness
from scim_api.group_commit import (
    MAX_LINGER,
    MAX_REMEMBERED,
    Change,
    GroupCommit,
    Pending,
    _resolve,
    fold,
    linger,
    next_round,
)
from scim_api.protocol.group_patch import GroupState
from scim_api.protocol.preconditions import PreconditionFailed


def _add(value: str) -> Change:
    def change(state: GroupState) -> GroupState:
        out = state.copy()
        out.members[value] = None
        return out

    return change


def _fail(state: GroupState) -> GroupState:
    raise bad_request("no such member")


def _rename(name: str) -> Change:
    def change(state: GroupState) -> GroupState:
        out = state.copy()
        out.display_name = name
        return out

    return change


@pytest.mark.parametrize(
    ("if_matches", "limit", "rounds"),
    [
        ([], 10, []),
        ([None, None, None], 10, [3]),
        ([None, None, None], 2, [2, 1]),
        (['W/"1"', None, None], 10, [1, 2]),  # a conditional request runs alone
        ([None, 'W/"1"', None], 10, [1, 1, 1]),  # ... and keeps its place in line
        (["*", None], 10, [2]),  # "*" is no condition
        ([None, " * ", 'W/"2"', 'W/"2"'], 10, [2, 1, 1]),
    ],
)
def test_next_round(if_matches: list[str | None], limit: int, rounds: list[int]) -> None:
    queue: list[Pending[Any]] = [Pending(_add(str(i)), m) for i, m in enumerate(if_matches)]
    order = list(queue)
    taken: list[Pending[Any]] = []
    sizes = []
    while batch := next_round(queue, limit):
        sizes.append(len(batch))
        taken += batch
    assert sizes == rounds and taken == order  # arrival order, nothing lost


@pytest.mark.parametrize(
    ("changes", "members", "failed"),
    [
        ([_add("a"), _add("b")], ["a", "b"], []),
        ([_add("a"), _fail, _add("b")], ["a", "b"], [1]),
        ([_fail, _fail], [], [0, 1]),
        ([], [], []),
    ],
)
def test_fold_leaves_out_only_the_failing_change(
    changes: list[Change], members: list[str], failed: list[int]
) -> None:
    start = GroupState("G")
    folded = fold(start, changes)
    assert list(folded.state.members) == members and start.members == {}
    assert [i for i, e in enumerate(folded.errors) if e is not None] == failed
    assert len(folded.errors) == len(changes)


@pytest.mark.parametrize(
    ("waiting", "last_round", "last_seconds", "expected"),
    [
        (0, 1, 0.1, 0.0),  # a lone client: never wait
        (3, 1, 0.1, 0.0),
        (8, 8, 0.1, 0.0),  # everyone is back
        (9, 8, 0.1, 0.0),
        (1, 8, 0.04, 0.01),  # a share of the last write's time ...
        (0, 8, 0.04, 0.01),
        (1, 8, 10.0, MAX_LINGER),  # ... never more than MAX_LINGER
    ],
)
def test_linger(waiting: int, last_round: int, last_seconds: float, expected: float) -> None:
    assert linger(waiting, last_round, last_seconds) == pytest.approx(expected)


class FakeGroup:
    """A writer standing in for the store: applies a round's change to one state, counts
    writes, and can hold a write open (a gate) to let requests pile up behind it."""

    def __init__(self) -> None:
        self.state = GroupState("G")
        self.version = 1
        self.writes = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.taken: set[str] = set()

    async def write(self, change: Change, if_match: str | None) -> tuple[GroupState, int]:
        await self.gate.wait()
        if if_match is not None and if_match != f'W/"{self.version}"':
            raise PreconditionFailed()
        new = change(self.state)
        if new.display_name in self.taken:
            raise uniqueness("taken")
        self.writes += 1
        self.state, self.version = new, self.version + 1
        return new, self.version


def _run(body: Callable[[GroupCommit[Any], FakeGroup], Any]) -> Any:
    async def main() -> Any:
        return await body(GroupCommit(), FakeGroup())

    return asyncio.run(main())


async def _settle(*coros: Any) -> list[Any]:
    return list(await asyncio.gather(*coros, return_exceptions=True))


def test_requests_arriving_during_a_write_share_the_next_one() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        first = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)  # the first write is now in flight
        rest = [asyncio.ensure_future(gc.submit("g", _add(f"m{i}"), None, g.write)) for i in range(7)]
        await asyncio.sleep(0)
        g.gate.set()
        answers = await _settle(first, *rest)
        assert g.writes == 2 and gc.rounds == 2  # eight requests, two writes
        assert set(g.state.members) == {"a"} | {f"m{i}" for i in range(7)}
        assert answers[0][1] == 2 and {a[1] for a in answers[1:]} == {3}  # each its own answer
        assert not gc._queues  # the writer is gone once its queue is empty

    _run(body)


def test_a_failing_request_is_answered_alone() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        first = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)
        ok = asyncio.ensure_future(gc.submit("g", _add("b"), None, g.write))
        bad = asyncio.ensure_future(gc.submit("g", _fail, None, g.write))
        ok2 = asyncio.ensure_future(gc.submit("g", _add("c"), None, g.write))
        await asyncio.sleep(0)
        g.gate.set()
        answers = await _settle(first, ok, bad, ok2)
        assert isinstance(answers[2], ScimError) and answers[2].status == 400
        assert not isinstance(answers[1], BaseException) and not isinstance(answers[3], BaseException)
        assert set(g.state.members) == {"a", "b", "c"} and g.writes == 2

    _run(body)


def test_a_conditional_request_keeps_its_own_412() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        first = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)
        stale = asyncio.ensure_future(gc.submit("g", _add("x"), 'W/"1"', g.write))  # read before "a"
        after = asyncio.ensure_future(gc.submit("g", _add("b"), None, g.write))
        fresh = asyncio.ensure_future(gc.submit("g", _add("y"), 'W/"3"', g.write))  # after "b" lands
        await asyncio.sleep(0)
        g.gate.set()
        answers = await _settle(first, stale, after, fresh)
        assert isinstance(answers[1], PreconditionFailed)
        assert not any(isinstance(a, BaseException) for a in (answers[0], answers[2], answers[3]))
        assert set(g.state.members) == {"a", "b", "y"}

    _run(body)


def test_a_round_that_fails_as_a_whole_is_retried_one_by_one() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.taken.add("Taken")
        g.gate.clear()
        first = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)
        ok = asyncio.ensure_future(gc.submit("g", _add("b"), None, g.write))
        clash = asyncio.ensure_future(gc.submit("g", _rename("Taken"), None, g.write))
        await asyncio.sleep(0)
        g.gate.set()
        answers = await _settle(first, ok, clash)
        assert isinstance(answers[2], ScimError) and answers[2].status == 409
        assert not isinstance(answers[1], BaseException)
        assert set(g.state.members) == {"a", "b"} and g.state.display_name == "G"
        assert gc.rounds == 4  # the first, the failed round, then its two requests alone

    _run(body)


def test_groups_do_not_wait_for_each_other() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        other = FakeGroup()
        g.gate.clear()
        held = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        assert (await gc.submit("h", _add("b"), None, other.write))[1] == 2
        assert not held.done()
        g.gate.set()
        await held

    _run(body)


def test_a_cancelled_caller_does_not_cancel_the_write() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        caller = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)
        caller.cancel()
        await asyncio.sleep(0)
        g.gate.set()
        await asyncio.sleep(0.01)
        assert "a" in g.state.members  # what it joined still lands

    _run(body)


def test_a_stopped_writer_answers_every_waiting_request() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        first = asyncio.ensure_future(gc.submit("g", _add("a"), None, g.write))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(gc.submit("g", _add("b"), None, g.write))
        await asyncio.sleep(0)
        for task in list(gc._tasks):
            task.cancel()
        answers = await _settle(first, second)
        assert all(isinstance(a, RuntimeError) for a in answers)
        assert not gc._queues

    _run(body)


def test_a_request_is_answered_once() -> None:
    """A writer stopped in the middle of re-running a failed round answers the requests not
    yet answered; the ones already answered keep their answer."""

    async def body() -> None:
        p: Pending[int] = Pending(_add("a"), None, asyncio.get_running_loop().create_future())
        _resolve(p, 1, None)
        _resolve(p, None, RuntimeError("the group writer stopped"))
        assert p.future is not None and p.future.result() == 1

    asyncio.run(body())


def test_clients_coming_back_together_share_one_round() -> None:
    """Eight clients each sending their next request as soon as they are answered: after
    the first rounds, a round waits the moment it takes them to come back (one write for
    eight requests) instead of writing for whoever came back first."""

    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        sizes: list[int] = []

        async def slow_write(change: Change, if_match: str | None) -> tuple[GroupState, int]:
            before = len(g.state.members)
            await asyncio.sleep(0.04)  # the API server's write
            result = await g.write(change, if_match)
            sizes.append(len(g.state.members) - before)
            return result

        async def client(n: int) -> None:
            for i in range(5):
                await gc.submit("g", _add(f"c{n}-{i}"), None, slow_write)
                await asyncio.sleep(0.001 * (n % 3))  # back after a client's own moment

        await asyncio.gather(*(client(n) for n in range(8)))
        assert len(g.state.members) == 40  # every request landed
        assert sizes[-2:] == [8, 8] and g.writes <= 7  # five rounds of eight, give or take the start
        assert not gc._queues

    _run(body)


def test_a_new_writer_waits_for_the_last_rounds_clients() -> None:
    """When a round answered everyone, the queue empties and the writer stops: the next
    writer for that group still waits for the rest of them, then forgets the group."""

    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        g.gate.clear()
        first = [asyncio.ensure_future(gc.submit("g", _add(f"a{i}"), None, g.write)) for i in range(4)]
        await asyncio.sleep(0)
        g.gate.set()
        await _settle(*first)
        assert list(gc._last) == ["g"] and gc._last["g"][0] == 4
        gc._last["g"] = (4, 0.04)  # as if that write had taken 40 ms: wait up to 10 ms

        async def back(i: int) -> Any:
            await asyncio.sleep(0.002 * i)  # the four come back over 6 ms
            return await gc.submit("g", _add(f"b{i}"), None, g.write)

        await _settle(*(back(i) for i in range(4)))
        assert g.writes == 2 and not gc._queues  # one round for the four (not one, then three)
        gc._last["g"] = (4, 0.04)
        started = asyncio.get_running_loop().time()
        await gc.submit("g", _add("alone"), None, g.write)  # nobody else comes: it waits 10 ms, no more
        assert g.writes == 3 and 0.009 < asyncio.get_running_loop().time() - started < 0.5

    _run(body)


def test_remembered_groups_are_bounded() -> None:
    async def body(gc: GroupCommit[Any], g: FakeGroup) -> None:
        for n in range(MAX_REMEMBERED + 5):
            g.gate.clear()
            held = [asyncio.ensure_future(gc.submit(n, _add(f"x{i}"), None, g.write)) for i in range(3)]
            await asyncio.sleep(0)
            g.gate.set()
            await _settle(*held)
        assert len(gc._last) == MAX_REMEMBERED and 0 not in gc._last

    _run(body)
