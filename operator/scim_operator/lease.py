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
"""

from __future__ import annotations

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
