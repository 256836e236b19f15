"""The Revoker keeps its connection pool open while this replica leads, and only then: warmed
at once on taking the lead, again each period, never on a standby; a failed warm-up is
logged and retried, never fatal."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from scim_operator.cache import ClusterCache
from scim_operator.revocation import Revoker
from scim_operator.settings import OperatorSettings

from .test_group_sync import Leader, NoApi


class CountingRevoker(Revoker):
    """Counts warm-ups instead of making requests; the first ``failures`` of them fail."""

    def __init__(self, leader: Leader, failures: int = 0) -> None:
        super().__init__(NoApi(), OperatorSettings.from_env({}), ClusterCache(), leader, lambda key: None)  # type: ignore[arg-type]
        self.warmed = 0
        self.failures = failures

    async def warm(self) -> None:
        self.warmed += 1
        if self.warmed <= self.failures:
            raise OSError("API server unreachable")


async def run_for(revoker: Revoker, seconds: float, period: float) -> None:
    task = asyncio.create_task(revoker.keep_warm(period=period, check_seconds=0.01))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_standby_keeps_nothing_open() -> None:
    revoker = CountingRevoker(Leader(False))
    await run_for(revoker, 0.1, period=0.01)
    assert revoker.warmed == 0


async def test_the_leader_warms_at_once_and_then_once_per_period() -> None:
    revoker = CountingRevoker(Leader(True))
    await run_for(revoker, 0.1, period=60)
    assert revoker.warmed == 1
    await run_for(revoker, 0.35, period=0.1)  # due at once (0.1 s have passed), then each 0.1 s
    assert 2 <= revoker.warmed - 1 <= 4  # never more often than the period (a slow loop: fewer)


async def test_taking_the_lead_again_warms_at_once() -> None:
    leader = Leader(True)
    revoker = CountingRevoker(leader)
    task = asyncio.create_task(revoker.keep_warm(period=60, check_seconds=0.01))
    try:
        await asyncio.sleep(0.05)
        leader.leading = False
        await asyncio.sleep(0.05)
        leader.leading = True
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert revoker.warmed == 2


async def test_a_failed_warm_up_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    revoker = CountingRevoker(Leader(True), failures=1)
    await run_for(revoker, 0.1, period=0.02)
    assert revoker.warmed >= 2
    assert "could not warm the revocation pool" in caplog.text
