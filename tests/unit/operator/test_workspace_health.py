"""The IdP-silence condition and the per-workspace recheck time (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scim_operator.workspace_health import (
    DEFAULT_IDP_SILENCE,
    idp_activity,
    next_recheck,
    silence_deadline,
    silence_limit,
)

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("last", "synced", "reason"),
    [
        (None, None, "NeverSeen"),  # Unknown: not set up yet is not silent
        (NOW, True, "IdPActive"),
        (NOW - 2 * H, True, "IdPActive"),  # exactly the limit: not yet silent
        (NOW - 2 * H - timedelta(seconds=1), False, "IdPSilent"),
        (NOW - 30 * 24 * H, False, "IdPSilent"),
    ],
)
def test_idp_activity(last: datetime | None, synced: bool | None, reason: str) -> None:
    activity = idp_activity(last, DEFAULT_IDP_SILENCE, NOW)
    assert (activity.synced, activity.reason) == (synced, reason)


def test_messages_do_not_move_with_the_clock_or_each_request() -> None:
    """The status is rewritten only when the condition changes, not at every API write."""
    assert idp_activity(NOW - H, 2 * H, NOW) == idp_activity(NOW + H - timedelta(minutes=10), 2 * H, NOW + H)
    silent = idp_activity(NOW - 3 * H, 2 * H, NOW)
    assert silent == idp_activity(NOW - 3 * H, 2 * H, NOW + 5 * H)
    assert "2026-01-10T09:00:00Z" in silent.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_IDP_SILENCE),
        ("30m", timedelta(minutes=30)),
        ("1d", 24 * H),
        ("soon", DEFAULT_IDP_SILENCE),
    ],
)
def test_silence_limit(value: str | None, expected: timedelta) -> None:
    assert silence_limit(value, DEFAULT_IDP_SILENCE) == expected


def test_silence_deadline() -> None:
    assert silence_deadline(None, H) is None
    assert silence_deadline(NOW, H) == NOW + H


@pytest.mark.parametrize(
    ("deadlines", "expected"),
    [
        ([], None),
        ([None, NOW - H, NOW], None),  # nothing ahead
        ([NOW + H, None, NOW + 2 * H, NOW - H], 3600.0),
        ([NOW + timedelta(milliseconds=10)], 1.0),  # never a busy loop
    ],
)
def test_next_recheck(deadlines: list[datetime | None], expected: float | None) -> None:
    assert next_recheck(deadlines, NOW) == expected
