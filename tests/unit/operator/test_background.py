"""BoundedBackground (the Events' limiter): never more than ``concurrency`` pieces at once,
never more than ``capacity`` held, the rest dropped and counted, failures contained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from scim_operator.background import BoundedBackground


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


@pytest.mark.parametrize(
    ("concurrency", "capacity", "submitted"), [(1, 1, 3), (4, 10, 10), (4, 10, 25), (3, 100, 60)]
)
async def test_never_more_than_the_bound_at_once_nor_held(
    concurrency: int, capacity: int, submitted: int
) -> None:
    dropped = Count()
    limiter = BoundedBackground(concurrency, capacity, dropped)
    release = asyncio.Event()
    started: list[int] = []
    concurrent: list[int] = []

    def piece(i: int) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            started.append(i)
            concurrent.append(limiter.running)
            await release.wait()

        return work

    accepted = [limiter.submit(piece(i)) for i in range(submitted)]
    assert accepted == [True] * min(capacity, submitted) + [False] * max(0, submitted - capacity)
    assert dropped.value == max(0, submitted - capacity) and limiter.held == min(capacity, submitted)
    for _ in range(5):
        await asyncio.sleep(0)
    assert limiter.running == len(started) == min(concurrency, submitted)  # the others wait
    release.set()
    await limiter.drain()
    assert sorted(started) == list(range(min(capacity, submitted)))  # dropped ones never ran
    assert max(concurrent) == limiter.peak == min(concurrency, submitted) and limiter.held == 0


async def test_room_comes_back_as_pieces_finish() -> None:
    dropped = Count()
    limiter = BoundedBackground(1, 2, dropped)
    done: list[int] = []

    def piece(i: int) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            done.append(i)

        return work

    assert limiter.submit(piece(1)) and limiter.submit(piece(2))
    assert not limiter.submit(piece(3))
    await limiter.drain()
    assert limiter.submit(piece(4))
    await limiter.drain()
    assert done == [1, 2, 4] and dropped.value == 1


async def test_a_failure_is_logged_and_frees_its_slot(caplog: pytest.LogCaptureFixture) -> None:
    limiter = BoundedBackground(1, 5)  # no metric given: drops are not counted anywhere
    done: list[str] = []

    async def fails() -> None:
        raise RuntimeError("API server said no")

    async def works() -> None:
        done.append("ok")

    with caplog.at_level(logging.WARNING, logger="scim_operator.background"):
        assert limiter.submit(fails) and limiter.submit(works)
        await limiter.drain()
    assert done == ["ok"] and limiter.running == 0
    assert "background work failed" in caplog.text and "API server said no" in caplog.text
    full = BoundedBackground(1, 1)
    assert full.submit(works) and not full.submit(works)
    await full.drain()


async def test_close_waits_a_grace_then_cancels() -> None:
    limiter = BoundedBackground(2, 10)
    finished: list[str] = []
    forever = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0)
        finished.append("quick")

    async def stuck() -> None:
        await forever.wait()
        finished.append("stuck")  # never: cancelled

    limiter.submit(quick), limiter.submit(stuck), limiter.submit(stuck)
    await limiter.close(grace=0.05)
    assert finished == ["quick"] and limiter.held == 0 and limiter.running == 0
    await limiter.close()  # nothing held: a no-op


@pytest.mark.parametrize(("concurrency", "capacity"), [(0, 5), (3, 2)])
def test_refuses_a_bound_that_cannot_work(concurrency: int, capacity: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        BoundedBackground(concurrency, capacity)
