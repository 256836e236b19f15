"""Pure decisions about a workspace's health over time: is its IdP still calling (the
``Synced`` condition), and when must the operator look at it again (the next time-based
change: a rotation due, an expiry warning, a grace period ending, the IdP turning silent).

The API writes ``status.idp.lastRequestTime`` (throttled, about once a minute while the IdP
calls); nothing happens when the IdP stops calling, so silence is a deadline the operator
keeps, not an event it receives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from scim_core import tokens
from scim_core.timestamps import format_utc

#: Entra runs a provisioning cycle about every 40 minutes: two hours is three missed cycles.
DEFAULT_IDP_SILENCE = timedelta(hours=2)


@dataclass(frozen=True)
class IdpActivity:
    """The ``Synced`` condition of a workspace. Messages hold no clock-relative text, so the
    status is rewritten only when the condition changes, not at every request. ``synced`` is
    None (Unknown) before the first request: a workspace whose IdP is not set up yet is not
    an IdP that went silent (and has no metric series, so no "IdP silent" alert)."""

    synced: bool | None
    reason: str
    message: str


def silence_limit(spec_value: str | None, default: timedelta) -> timedelta:
    """The workspace's ``idpSilenceAfter`` or the operator's default (also when unparsable:
    the CRD pattern refuses that already; a bad value must not stop the reconcile)."""
    if spec_value is None:
        return default
    try:
        return tokens.parse_duration(spec_value)
    except ValueError:
        return default


def idp_activity(last_request: datetime | None, silence: timedelta, now: datetime) -> IdpActivity:
    if last_request is None:
        return IdpActivity(None, "NeverSeen", "The API has not seen a request from the IdP yet")
    if now - last_request > silence:
        return IdpActivity(
            False,
            "IdPSilent",
            f"No request from the IdP since {format_utc(last_request)}, "
            f"longer than {int(silence.total_seconds())}s",
        )
    return IdpActivity(
        True, "IdPActive", f"The IdP sent requests within the last {int(silence.total_seconds())}s"
    )


def silence_deadline(last_request: datetime | None, silence: timedelta) -> datetime | None:
    """When an active IdP turns silent if it sends nothing more."""
    return None if last_request is None else last_request + silence


def next_recheck(deadlines: Iterable[datetime | None], now: datetime, floor: float = 1.0) -> float | None:
    """Seconds until the first deadline still ahead (at least ``floor``), None when none is."""
    ahead = [d for d in deadlines if d is not None and d > now]
    if not ahead:
        return None
    return max((min(ahead) - now).total_seconds(), floor)
