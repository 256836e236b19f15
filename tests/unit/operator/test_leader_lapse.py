"""A leader whose renewal is overdue (a slow or restarting API server) has lapsed, not lost:
its reconcilers park keys instead of dropping them (nothing would queue them again), and a
renewal of the same term queues only those, not everything. A standby never lapses (it
drops, as before)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from scim_operator import lease
from scim_operator.cache import ClusterCache
from scim_operator.group_sync import GroupSync
from scim_operator.leader import LeaderElector, refused
from scim_operator.workqueue import PARK, Result

WALL = datetime(2026, 1, 2, tzinfo=UTC)


def _elector(now: list[float], requeued: list[float], calls: list[str] | None = None) -> LeaderElector:
    record = calls if calls is not None else []
    return LeaderElector(
        cast(Any, None), "scim-operator", "default", "me", lease_duration=15, renew_deadline=10,
        retry_period=2, on_started_leading=lambda: requeued.append(now[0]), clock=lambda: now[0],
        on_resumed_leading=lambda: record.append("resumed"), on_lost_leading=lambda: record.append("lost"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kept_on_regain", "requeues", "calls"),
    [
        (True, [0.0], ["resumed"]),  # our own renewal of the same term: only the parked keys
        (False, [0.0, 14.0], []),  # a new term (taken and taken back): everything again
    ],
)
def test_a_late_renewal_lapses_and_the_same_term_resumes(
    kept_on_regain: bool, requeues: list[float], calls: list[str]
) -> None:
    now, requeued, seen = [0.0], [], []
    elector = _elector(now, requeued, seen)
    elector._renewed_at, elector._kept = 0.0, False  # took it
    elector._transition()
    now[0] = 12.0  # the renewal started at 0.5 came back at 12: past the deadline
    elector._renewed_at, elector._kept = 0.5, True
    elector._transition()
    assert elector.lapsed() and not elector.is_leader() and requeued == [0.0]
    now[0] = 14.0
    elector._renewed_at, elector._kept = 14.0, kept_on_regain
    elector._transition()
    assert elector.is_leader() and not elector.lapsed()
    assert requeued == requeues and seen == calls


def test_a_pause_no_round_saw_still_resumes_the_parked_keys() -> None:
    """Frozen (SIGSTOP) past the deadline: the first round after the thaw renews at once, so
    no round saw the lapse; keys refused in between were parked and must run again."""
    now, requeued, seen = [0.0], [], []
    elector = _elector(now, requeued, seen)
    elector._won(lease.claim("me", 15, None, WALL), 0.0)
    elector._kept = False
    elector._transition()
    now[0] = 30.0  # thawed: writers are refused and park, then the round renews
    assert elector.lapsed()
    elector._kept = True
    elector._won(lease.claim("me", 15, elector._term, WALL), 30.0)
    elector._transition()
    assert elector.is_leader() and requeued == [0.0] and seen == ["resumed"]


def test_another_term_seen_while_lapsed_is_a_loss() -> None:
    now, requeued, seen = [0.0], [], []
    elector = _elector(now, requeued, seen)
    elector._renewed_at, elector._kept = 0.0, False
    elector._transition()
    now[0] = 11.0
    elector._kept = None  # the API server did not answer
    elector._transition()
    assert elector.lapsed() and seen == []
    now[0] = 20.0
    elector._kept = False  # another replica holds it now
    elector._transition()
    assert not elector.lapsed() and not elector.is_leader() and seen == ["lost"]


def test_an_overdue_renewal_is_a_lapse_until_it_lands() -> None:
    now, requeued = [0.0], []
    elector = _elector(now, requeued)
    assert not elector.lapsed()  # a standby that never led
    elector._renewed_at = 0.0  # a renewal that succeeded
    elector._transition()
    assert requeued == [0.0] and not elector.lapsed()
    now[0] = 11.0
    assert not elector.is_leader() and elector.lapsed()
    now[0] = 12.0
    elector._renewed_at = 12.0  # the overdue renewal lands
    elector._transition()
    assert requeued == [0.0] and not elector.lapsed()


@pytest.mark.parametrize(("led", "retry"), [(True, PARK), (False, None)])
def test_a_lapsed_leader_parks_a_group_a_standby_drops_it(led: bool, retry: Result) -> None:
    now, requeued = [0.0], []
    elector = _elector(now, requeued)
    cache = ClusterCache()
    for kind in (
        "scimworkspaces",
        "scimusers",
        "scimgroups",
        "scimmembershards",
        "namespaces",
        "rolebindings",
    ):
        cache.replace_all(kind, [])
    if led:
        elector._renewed_at = 0.0
        elector._transition()
    now[0] = 11.0
    sync = GroupSync(cast(Any, None), cast(Any, None), cache, elector)
    assert asyncio.run(sync.reconcile(("ns", "g"))) == retry


class _Stance:
    def __init__(self, lapsed: bool) -> None:
        self._lapsed = lapsed

    def is_leader(self) -> bool:
        return False

    def lapsed(self) -> bool:
        return self._lapsed

    def check(self) -> None:
        return None


@pytest.mark.parametrize(("lapsed", "result"), [(True, PARK), (False, None)])
def test_a_key_turned_away_is_parked_during_a_lapse_and_dropped_on_a_standby(
    lapsed: bool, result: Result
) -> None:
    assert refused(_Stance(lapsed)) is result
