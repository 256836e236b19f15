"""WorkQueue: de-duplication, per-key exponential back-off reset on success, the retry
counter, delayed adds (earliest wins) — against a real event loop, no cluster."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from scim_operator.workqueue import PARK, ExponentialBackoff, Result, WorkQueue


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Depth:
    def __init__(self) -> None:
        self.values: list[float] = []

    def set(self, value: float) -> None:
        self.values.append(value)


@pytest.mark.parametrize(
    ("base", "cap", "failures", "expected"),
    [
        (0.005, 1000.0, 0, 0.005),
        (0.005, 1000.0, 1, 0.01),
        (0.005, 1000.0, 10, 5.12),
        (0.005, 1000.0, 18, 1000.0),  # 0.005 * 2**18 = 1310.72: capped
        (0.005, 1000.0, 200, 1000.0),  # far past the cap: no overflow
        (1.0, 60.0, 5, 32.0),
        (1.0, 60.0, 6, 60.0),
    ],
)
def test_backoff_doubles_per_failure_up_to_the_cap(
    base: float, cap: float, failures: int, expected: float
) -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base, cap)
    for _ in range(failures):
        backoff.when("k")
    assert backoff.when("k") == pytest.approx(expected)
    assert backoff.retries("k") == failures + 1


def test_backoff_is_per_key_and_forget_resets() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(1.0, 100.0)
    assert [backoff.when("a") for _ in range(3)] == [1.0, 2.0, 4.0]
    assert backoff.when("b") == 1.0  # another key starts afresh
    backoff.forget("a")
    assert backoff.retries("a") == 0
    assert backoff.when("a") == 1.0
    backoff.forget("never-seen")  # harmless


async def _drain(queue: WorkQueue[str], until: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + until
    while (queue.pending() or queue.waiting()) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_keys_added_while_waiting_run_once() -> None:
    seen: list[str] = []

    async def handler(key: str) -> Result:
        seen.append(key)
        return None

    depth = Depth()
    queue: WorkQueue[str] = WorkQueue("t", workers=2, depth=depth)
    for key in ["a", "b", "a", "a", "b", "c"]:
        queue.add(key)
    assert queue.pending() == 3
    queue.start(handler)
    await _drain(queue)
    await queue.stop()
    assert sorted(seen) == ["a", "b", "c"]
    assert depth.values[-1] == 0


async def test_key_added_while_active_runs_again_after() -> None:
    runs: list[str] = []
    gate, started = asyncio.Event(), asyncio.Event()

    async def handler(key: str) -> Result:
        runs.append(key)
        started.set()
        if len(runs) == 1:
            await gate.wait()
        return None

    queue: WorkQueue[str] = WorkQueue("t", workers=2)
    queue.add("a")
    queue.start(handler)
    await started.wait()
    queue.add("a")  # during the first run: not concurrently, but once more afterwards
    queue.add("a")
    await asyncio.sleep(0.01)
    assert runs == ["a"]
    gate.set()
    await _drain(queue)
    await queue.stop()
    assert runs == ["a", "a"]


@pytest.mark.parametrize("failures", [1, 3, 5])
async def test_failures_retry_with_backoff_then_success_forgets(failures: int) -> None:
    attempts: list[float] = []
    loop = asyncio.get_running_loop()

    async def handler(key: str) -> Result:
        attempts.append(loop.time())
        if len(attempts) <= failures:
            raise RuntimeError("API server said no")
        return None

    retries = Count()
    backoff: ExponentialBackoff[str] = ExponentialBackoff(0.01, 1.0)
    queue: WorkQueue[str] = WorkQueue("t", workers=1, backoff=backoff, retries=retries)
    queue.add("g")
    queue.start(handler)
    await _drain(queue, until=5.0)
    await queue.stop()
    assert len(attempts) == failures + 1
    assert retries.value == failures
    assert backoff.retries("g") == 0  # the success reset it
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for i, gap in enumerate(gaps):
        assert gap >= 0.01 * 2**i * 0.9  # at least the back-off (timer slack aside)


async def test_a_requested_recheck_is_not_a_failure() -> None:
    runs = 0

    async def handler(key: str) -> Result:
        nonlocal runs
        runs += 1
        return 0.02 if runs == 1 else None

    retries = Count()
    queue: WorkQueue[str] = WorkQueue("t", workers=1, retries=retries)
    queue.add("g")
    queue.start(handler)
    await asyncio.sleep(0.005)
    assert queue.waiting() == 1
    await _drain(queue)
    await queue.stop()
    assert runs == 2 and retries.value == 0


@pytest.mark.parametrize(
    ("first", "second", "kept"), [(5.0, 0.01, 0.01), (0.01, 5.0, 0.01), (0.0, 5.0, None)]
)
async def test_add_after_keeps_the_earliest(first: float, second: float, kept: float | None) -> None:
    queue: WorkQueue[str] = WorkQueue("t")
    queue.add_after("k", first)
    queue.add_after("k", second)
    if kept is None:  # a zero delay is an immediate add; the later delay waits besides
        assert queue.pending() == 1
    else:
        assert queue.waiting() == 1 and queue.pending() == 0
        await asyncio.sleep(kept + 0.05)
        assert queue.waiting() == 0 and queue.pending() == 1
    await queue.stop()
    assert queue.waiting() == 0


async def test_failures_retry_without_a_retry_counter() -> None:
    attempts = 0

    async def handler(key: str) -> Result:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("API server said no")
        return None

    backoff: ExponentialBackoff[str] = ExponentialBackoff(0.01, 1.0)
    queue: WorkQueue[str] = WorkQueue("t", workers=1, backoff=backoff)  # no retries counter
    queue.add("g")
    queue.start(handler)
    await _drain(queue)
    await queue.stop()
    assert attempts == 2  # retried after the back-off all the same
    assert backoff.retries("g") == 0


async def test_a_cancelled_handler_ends_its_worker_without_a_retry() -> None:
    async def handler(key: str) -> Result:
        raise asyncio.CancelledError

    retries = Count()
    backoff: ExponentialBackoff[str] = ExponentialBackoff(0.01, 1.0)
    queue: WorkQueue[str] = WorkQueue("t", workers=1, backoff=backoff, retries=retries)
    queue.add("g")
    queue.start(handler)
    (worker,) = queue._tasks
    await asyncio.gather(worker, return_exceptions=True)
    assert worker.cancelled()  # the cancellation propagates: not caught as a failure
    assert retries.value == 0 and backoff.retries("g") == 0
    assert queue.pending() == 0 and queue.waiting() == 0  # no longer active, not re-queued
    await queue.stop()


@pytest.mark.parametrize(("lead", "runs_after"), [("resumed", ["a", "b", "a", "b"]), ("lost", ["a", "b"])])
async def test_parked_keys_run_again_only_when_the_lead_resumes(lead: str, runs_after: list[str]) -> None:
    runs: list[str] = []
    leading = [False]

    async def handler(key: str) -> Result:
        runs.append(key)
        return None if leading[0] else PARK

    queue: WorkQueue[str] = WorkQueue("t", workers=2)
    queue.add("a")
    queue.add("b")
    queue.start(handler)
    await _drain(queue)
    assert sorted(runs) == ["a", "b"] and queue.parked() == 2 and not queue.pending()
    leading[0] = True
    if lead == "resumed":
        assert queue.unpark() == 2
    else:
        assert queue.drop_parked() == 2
    await _drain(queue)
    await queue.stop()
    assert sorted(runs) == sorted(runs_after) and queue.parked() == 0


async def test_a_handler_that_never_suspends_leaves_the_loop_free_between_keys() -> None:
    """A no-op pass (nothing to write: no handler awaits anything) must not hold the event
    loop for the whole queue: the Lease renewal runs in between."""
    done: list[int] = []
    ticks: list[int] = []

    async def handler(key: int) -> Result:
        done.append(key)
        return None

    async def ticker() -> None:
        while len(done) < 1000:
            ticks.append(len(done))
            await asyncio.sleep(0)

    queue: WorkQueue[int] = WorkQueue("t", workers=1)
    for key in range(1000):
        queue.add(key)
    queue.start(handler)
    await asyncio.gather(ticker(), _drain(queue))
    await queue.stop()
    assert len(done) == 1000
    assert len(set(ticks)) > 500  # the other task ran between keys, not once after all of them
