"""Leader election decisions (client-go semantics), pure: who may take the Lease, what is
written, when a holder stops counting itself leader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scim_operator.lease import (
    Change,
    LeaseRecord,
    Observation,
    Standing,
    check_timings,
    claim,
    leading,
    may_take,
    micro_time,
    released,
    same_term,
    step,
)

WALL = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
OTHER = LeaseRecord("other", 15, "t0", "t1", 3)


def test_micro_time_is_utc_with_microseconds() -> None:
    assert micro_time(WALL) == "2026-01-02T03:04:05.678901Z"
    assert micro_time(WALL.astimezone(timezone(timedelta(hours=2)))) == "2026-01-02T03:04:05.678901Z"


@pytest.mark.parametrize(
    ("duration", "deadline", "period", "ok"),
    [(15, 10, 2, True), (10, 10, 2, False), (15, 16, 2, False), (15, 10, 9, False), (15, 10, 0, False)],
)
def test_timings_follow_client_go(duration: float, deadline: float, period: float, ok: bool) -> None:
    if ok:
        check_timings(duration, deadline, period)
    else:
        with pytest.raises(ValueError):
            check_timings(duration, deadline, period)


def test_record_round_trips_through_the_spec() -> None:
    spec = OTHER.to_spec()
    assert spec == {"holderIdentity": "other", "leaseDurationSeconds": 15, "acquireTime": "t0",
                    "renewTime": "t1", "leaseTransitions": 3}  # fmt: skip
    assert LeaseRecord.from_spec(spec) == OTHER
    assert LeaseRecord.from_spec(None) == LeaseRecord()
    assert LeaseRecord.from_spec({"holderIdentity": None}) == LeaseRecord()


@pytest.mark.parametrize(
    ("record", "seen_at", "now", "may"),
    [
        (None, 0.0, 0.0, True),  # no Lease yet
        (LeaseRecord(), 100.0, 100.0, True),  # released
        (LeaseRecord("me", 15), 100.0, 100.0, True),  # our own: renew
        (OTHER, 100.0, 100.0, False),  # held, just seen renewed
        (OTHER, 100.0, 114.9, False),  # not yet expired on our clock
        (OTHER, 100.0, 115.0, True),  # unchanged for the whole duration: take it
    ],
)
def test_may_take(record: LeaseRecord | None, seen_at: float, now: float, may: bool) -> None:
    assert may_take("me", Observation(record, seen_at), now) is may


def test_observation_restarts_only_when_the_record_changes() -> None:
    seen = Observation().see(OTHER, 10.0)
    assert seen.at == 10.0
    assert seen.see(OTHER, 50.0).at == 10.0  # same record: the clock keeps running
    renewed = LeaseRecord("other", 15, "t0", "t2", 3)
    assert seen.see(renewed, 50.0) == Observation(renewed, 50.0)
    assert not may_take("me", seen.see(renewed, 50.0), 60.0)


def test_claim_renews_or_takes_over() -> None:
    stamp = micro_time(WALL)
    first = claim("me", 15, None, WALL)
    assert first == LeaseRecord("me", 15, stamp, stamp, 0)
    renewed = claim("me", 15, LeaseRecord("me", 15, "t0", "t1", 4), WALL)
    assert renewed == LeaseRecord("me", 15, "t0", stamp, 4)  # same term: acquireTime kept
    taken = claim("me", 14.2, OTHER, WALL)
    assert taken == LeaseRecord("me", 15, stamp, stamp, 4)  # new term; whole seconds, rounded up
    assert claim("me", 0.2, None, WALL).duration_seconds == 1


def test_release_frees_the_lease_for_an_immediate_takeover() -> None:
    out = released(LeaseRecord("me", 15, "t0", "t1", 4), WALL)
    assert out.holder == "" and out.duration_seconds == 1 and out.transitions == 4
    assert may_take("other", Observation(out, 100.0), 100.0)


@pytest.mark.parametrize(
    ("renewed_at", "now", "leader"),
    [
        (None, 0.0, False),
        (100.0, 100.0, True),
        (100.0, 109.9, True),
        (100.0, 110.0, False),
        (100.0, 500.0, False),
    ],
)
def test_leading_lapses_at_the_renew_deadline(renewed_at: float | None, now: float, leader: bool) -> None:
    assert leading(renewed_at, 10.0, now) is leader


def test_a_lapsed_holder_stops_before_anyone_may_take_over() -> None:
    """The holder's renewal started at t=100 and was seen by the standby at t>=100: the holder
    stops at 100 + renew deadline, the standby may take at >= 100 + lease duration."""
    duration, deadline = 15.0, 10.0
    check_timings(duration, deadline, 2.0)
    renewed_at = 100.0
    record = LeaseRecord("holder", int(duration), "t0", "t1", 0)
    seen = Observation(record, renewed_at + 0.5)  # the standby read it a little later
    now = renewed_at
    while leading(renewed_at, deadline, now):
        assert not may_take("standby", seen, now)
        now += 0.1
    assert now < seen.at + duration


MINE = LeaseRecord("me", 15, "t0", "t1", 4)


@pytest.mark.parametrize(
    ("current", "kept"),
    [
        (LeaseRecord("me", 15, "t0", "t9", 4), True),  # renewed since: same term
        (MINE, True),
        (LeaseRecord("other", 15, "t5", "t5", 5), False),  # taken
        (LeaseRecord("", 1, "t5", "t5", 4), False),  # released
        (LeaseRecord("me", 15, "t7", "t7", 6), False),  # taken, then taken back: a new term
        (LeaseRecord("me", 15, "t7", "t7", 4), False),  # re-created (acquireTime moved)
        (None, False),
    ],
)
def test_same_term(current: LeaseRecord | None, kept: bool) -> None:
    assert same_term(MINE, current) is kept


def test_no_term_held_is_never_kept() -> None:
    assert not same_term(None, MINE)
    assert not same_term(LeaseRecord(), LeaseRecord())


L, S, X = Standing.LEADING, Standing.STANDBY, Standing.LAPSED


@pytest.mark.parametrize(
    ("standing", "leading_now", "kept", "after", "change"),
    [
        (S, False, None, S, Change.NONE),
        (S, False, False, S, Change.NONE),
        (S, True, False, L, Change.STARTED),  # took it
        (L, True, True, L, Change.NONE),  # renewed
        (L, True, False, L, Change.NONE),  # still inside the deadline: the clock decides
        (L, False, True, X, Change.LAPSED),  # renewal came back late
        (L, False, None, X, Change.LAPSED),  # API server away
        (L, False, False, S, Change.LOST),  # another term seen
        (X, False, None, X, Change.NONE),
        (X, False, True, X, Change.NONE),
        (X, False, False, S, Change.LOST),
        (X, True, True, L, Change.RESUMED),  # renewed the same term: only what was parked
        (X, True, False, L, Change.STARTED),  # a new term: everything
        (X, True, None, L, Change.STARTED),  # unknown: the safe side
    ],
)
def test_step(
    standing: Standing, leading_now: bool, kept: bool | None, after: Standing, change: Change
) -> None:
    assert step(standing, leading_now, kept) == (after, change)


@pytest.mark.parametrize(
    ("standing", "kept", "after", "change"),
    [
        (L, True, L, Change.RESUMED),  # paused past the deadline, no round saw it: resume
        (L, False, L, Change.STARTED),
        (S, False, L, Change.STARTED),
        (X, True, L, Change.RESUMED),
    ],
)
def test_a_renewal_after_a_gap_no_round_saw_is_a_lapse_ending(
    standing: Standing, kept: bool, after: Standing, change: Change
) -> None:
    assert step(standing, True, kept, gap=True) == (after, change)
