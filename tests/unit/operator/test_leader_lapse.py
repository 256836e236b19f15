"""A leader whose renewal came late (a slow API server) dropped keys meanwhile: once renewed
it queues every key again, as when it first became the leader."""

from __future__ import annotations

from typing import Any, cast

from scim_operator.leader import LeaderElector


def test_a_late_renewal_queues_every_key_again() -> None:
    now = [0.0]
    requeued: list[float] = []
    elector = LeaderElector(
        cast(Any, None), "scim-operator", "default", "me", lease_duration=15, renew_deadline=10,
        retry_period=2, on_started_leading=lambda: requeued.append(now[0]), clock=lambda: now[0],
    )  # fmt: skip
    elector._renewed_at = 0.0  # a renewal that succeeded
    elector._transition()
    assert requeued == [0.0]
    now[0] = 5.0
    elector._transition()  # renewed in time: nothing to redo
    assert requeued == [0.0]
    now[0] = 11.0
    assert not elector.is_leader()  # a worker drops its key here
    now[0] = 12.0
    elector._renewed_at = 12.0  # the overdue renewal lands
    elector._transition()
    assert requeued == [0.0, 12.0]
    elector._transition()
    assert requeued == [0.0, 12.0]
