"""A leader whose renewal is overdue (a slow or restarting API server) has lapsed, not lost:
its reconcilers retry shortly instead of dropping keys (nothing would queue them again), and
a renewal that lands queues nothing more. A standby never lapses (it drops, as before)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from scim_operator.cache import ClusterCache
from scim_operator.group_sync import LAPSE_RETRY_SECONDS, GroupSync
from scim_operator.leader import LeaderElector


def _elector(now: list[float], requeued: list[float]) -> LeaderElector:
    return LeaderElector(
        cast(Any, None), "scim-operator", "default", "me", lease_duration=15, renew_deadline=10,
        retry_period=2, on_started_leading=lambda: requeued.append(now[0]), clock=lambda: now[0],
    )  # fmt: skip


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


@pytest.mark.parametrize(("led", "retry"), [(True, LAPSE_RETRY_SECONDS), (False, None)])
def test_a_lapsed_leader_retries_a_group_a_standby_drops_it(led: bool, retry: float | None) -> None:
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
