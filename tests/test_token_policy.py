"""Unit tests for the pure token rules (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scim_core import tokens
from scim_operator.token_policy import (
    ISSUED_AT,
    NOT_AFTER,
    PREVIOUS_NOT_AFTER,
    ROTATION_HANDLED,
    SecretState,
    plan_token,
)

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def state(token: str | None, previous: str | None = None, **ann: str) -> SecretState:
    return SecretState(token=token, previous_token=previous, annotations=dict(ann), created=NOW - DAY)


def test_generated_token_has_256_bits_and_is_url_safe() -> None:
    token = tokens.generate_token()
    body = token.removeprefix(tokens.TOKEN_PREFIX)
    assert len(body) >= 43  # 32 bytes in base64url
    assert all(ch.isalnum() or ch in "-_" for ch in body)
    assert tokens.weakness(token) is None


@pytest.mark.parametrize(
    "weak", ["short", "a" * 64, "abababababababababababababababab", "password1234567890password12345678"[:20]]
)
def test_weak_tokens_refused(weak: str) -> None:
    assert tokens.weakness(weak) is not None
    plan = plan_token(state(weak), 90 * DAY, DAY, NOW)
    assert not plan.valid and plan.reason == "WeakToken" and plan.hashes == [] and plan.warning


def test_missing_secret_is_generated() -> None:
    plan = plan_token(None, 90 * DAY, DAY, NOW)
    assert plan.create and plan.write_token and plan.valid
    assert plan.hashes[0].sha256 == tokens.token_sha256(plan.write_token)
    assert plan.hashes[0].not_after == NOW + 90 * DAY


def test_strong_hand_made_token_is_adopted_without_rewrite() -> None:
    token = tokens.generate_token()
    plan = plan_token(state(token), 90 * DAY, DAY, NOW)
    assert plan.valid and plan.write_token is None
    assert set(plan.annotations) == {ISSUED_AT, NOT_AFTER}  # only bookkeeping is added


def test_valid_token_needs_no_change() -> None:
    token = tokens.generate_token()
    plan = plan_token(
        state(token, **{ISSUED_AT: "2026-01-09T12:00:00Z", NOT_AFTER: "2026-04-09T12:00:00Z"}),
        90 * DAY,
        DAY,
        NOW,
    )
    assert plan.valid and not plan.secret_changed and len(plan.hashes) == 1


def test_rotation_on_request_keeps_previous_for_grace() -> None:
    old = tokens.generate_token()
    secret = state(old, **{ISSUED_AT: "2026-01-09T12:00:00Z", NOT_AFTER: "2026-04-09T12:00:00Z"})
    plan = plan_token(secret, 90 * DAY, DAY, NOW, rotate_request="r1")
    assert plan.write_token and plan.write_token != old
    assert plan.write_previous == old
    assert plan.annotations[ROTATION_HANDLED] == "r1"
    assert [h.sha256 for h in plan.hashes] == [
        tokens.token_sha256(plan.write_token),
        tokens.token_sha256(old),
    ]
    assert plan.hashes[1].not_after == NOW + DAY
    # the same request is not handled twice
    again = state(plan.write_token, old, **{**plan.annotations})
    assert (
        plan_token(again, 90 * DAY, DAY, NOW + timedelta(minutes=1), rotate_request="r1").write_token is None
    )


def test_previous_token_dropped_after_grace() -> None:
    new, old = tokens.generate_token(), tokens.generate_token()
    ann = {
        ISSUED_AT: "2026-01-10T12:00:00Z",
        NOT_AFTER: "2026-04-10T12:00:00Z",
        PREVIOUS_NOT_AFTER: "2026-01-11T12:00:00Z",
    }
    during = plan_token(state(new, old, **ann), 90 * DAY, DAY, NOW + timedelta(hours=1))
    assert len(during.hashes) == 2 and during.write_previous is None
    after = plan_token(state(new, old, **ann), 90 * DAY, DAY, NOW + 2 * DAY)
    assert len(after.hashes) == 1 and after.write_previous == ""


def test_scheduled_rotation_before_expiry() -> None:
    old = tokens.generate_token()
    ann = {ISSUED_AT: "2026-01-01T00:00:00Z", NOT_AFTER: "2026-01-10T18:00:00Z"}
    plan = plan_token(state(old, **ann), 9 * DAY, DAY, NOW)  # within a day of expiry: rotate
    assert plan.write_token and plan.write_previous == old
    assert plan.hashes[1].not_after == datetime(2026, 1, 10, 18, 0, tzinfo=UTC)  # never past its own expiry


def test_parse_duration() -> None:
    assert tokens.parse_duration("90d") == 90 * DAY
    assert tokens.parse_duration("15m") == timedelta(minutes=15)
    with pytest.raises(ValueError):
        tokens.parse_duration("1y")
