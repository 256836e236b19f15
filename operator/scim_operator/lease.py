"""Leader election on a ``coordination.k8s.io/v1`` Lease, the pure part (client-go's
``leaderelection`` semantics, decided without I/O so it is unit-tested in full).

- A candidate may take the Lease when it is free, already its own, or when the record has
  not changed for ``leaseDurationSeconds`` *as measured on the candidate's own clock* from
  the moment it saw the record change (client-go's ``observedTime``): no clock skew between
  replicas matters, only elapsed time.
- The holder counts as leader only until ``renew_deadline`` after the start of its last
  successful renewal. ``renew_deadline < lease_duration`` and the others start counting after
  that renewal reached the API server, so a holder that cannot renew (partitioned, paused)
  stops acting before anyone else may take over.
- A renewal that comes back late is a *lapse*, not a loss: the holder stops writing (the
  clock says so) but loses the lead only once the Lease shows another term (another holder,
  or a new ``acquireTime``/``leaseTransitions``). A lapse that ends with our own renewal of
  the same term *resumes* the lead (only the work set aside meanwhile runs again); a new
  term *starts* one (everything is looked at again).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

#: client-go's JitterFactor: the retry period must fit in the renew deadline with room to spare.
JITTER_FACTOR = 1.2


def micro_time(moment: datetime) -> str:
    """A Kubernetes ``MicroTime`` (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """client-go's rule: lease duration > renew deadline > retry period x jitter > 0."""
    if not lease_duration > renew_deadline:
        raise ValueError(f"lease duration {lease_duration}s must exceed the renew deadline {renew_deadline}s")
    if not renew_deadline > retry_period * JITTER_FACTOR:
        raise ValueError(
            f"renew deadline {renew_deadline}s must exceed {JITTER_FACTOR} x retry period {retry_period}s"
        )
    if retry_period <= 0:
        raise ValueError("retry period must be positive")


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's ``spec``."""

    holder: str = ""
    duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> LeaseRecord:
        spec = spec or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Observation:
    """The last record seen and when (local monotonic seconds) it was seen to change."""

    record: LeaseRecord | None = None
    at: float = 0.0

    def see(self, record: LeaseRecord | None, now: float) -> Observation:
        return self if record == self.record else Observation(record, now)


def may_take(identity: str, seen: Observation, now: float) -> bool:
    """Whether ``identity`` may write itself into the Lease now."""
    record = seen.record
    if record is None or not record.holder or record.holder == identity:
        return True
    return now >= seen.at + record.duration_seconds


def claim(identity: str, lease_duration: float, current: LeaseRecord | None, wall: datetime) -> LeaseRecord:
    """The record to write: a renewal keeps ``acquireTime`` and the transition count; a
    takeover (from another holder or a released Lease) starts a new term."""
    stamp = micro_time(wall)
    seconds = max(1, math.ceil(lease_duration))
    if current is not None and current.holder == identity:
        return replace(current, duration_seconds=seconds, renew_time=stamp)
    transitions = 0 if current is None else current.transitions + 1
    return LeaseRecord(identity, seconds, stamp, stamp, transitions)


def released(current: LeaseRecord, wall: datetime) -> LeaseRecord:
    """What a holder writes when it stops cleanly, so a standby takes over at once."""
    stamp = micro_time(wall)
    return LeaseRecord("", 1, stamp, stamp, current.transitions)


def leading(renewed_at: float | None, renew_deadline: float, now: float) -> bool:
    """Leader while the last successful renewal began less than ``renew_deadline`` ago."""
    return renewed_at is not None and now - renewed_at < renew_deadline


def same_term(held: LeaseRecord | None, current: LeaseRecord | None) -> bool:
    """Whether ``current`` is still the term this replica wrote as ``held``: same holder,
    ``acquireTime`` and ``leaseTransitions`` (a renewal changes none of them; a takeover,
    a release or a re-acquisition after one changes at least one)."""
    return (
        held is not None
        and current is not None
        and bool(held.holder)
        and (current.holder, current.acquire_time, current.transitions)
        == (held.holder, held.acquire_time, held.transitions)
    )


class Standing(enum.Enum):
    STANDBY = "standby"
    LEADING = "leading"
    LAPSED = "lapsed"  # was leading, renewal overdue, the term not known to be over


class Change(enum.Enum):
    NONE = "none"
    STARTED = "started"  # a new term: look at everything
    RESUMED = "resumed"  # the same term after a lapse: only what was set aside
    LAPSED = "lapsed"
    LOST = "lost"  # another term seen: what was set aside is someone else's now


def step(
    standing: Standing, leading_now: bool, kept: bool | None, gap: bool = False
) -> tuple[Standing, Change]:
    """The next standing after an election round. ``leading_now``: by the clock, after the
    round; ``kept``: whether the Lease read this round was still our term (``same_term``,
    taken before our write), None when it could not be read; ``gap``: this round's renewal
    began past the deadline of the one before (a process paused, or a loop blocked, for
    longer than a round: no round saw the lapse, but writers were refused meanwhile)."""
    if gap and standing is Standing.LEADING:
        standing = Standing.LAPSED
    if leading_now:
        if standing is Standing.LEADING:
            return Standing.LEADING, Change.NONE
        if standing is Standing.LAPSED and kept:
            return Standing.LEADING, Change.RESUMED
        return Standing.LEADING, Change.STARTED
    if standing is Standing.STANDBY:
        return Standing.STANDBY, Change.NONE
    if kept is False:
        return Standing.STANDBY, Change.LOST
    if standing is Standing.LEADING:
        return Standing.LAPSED, Change.LAPSED
    return Standing.LAPSED, Change.NONE
