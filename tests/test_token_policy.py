"""Unit tests for the pure token rules (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scim_core import constants as c
from scim_core import tokens
from scim_operator.token_policy import (
    ISSUED_AT,
    MAX_LIFETIME,
    NOT_AFTER,
    PREVIOUS_NOT_AFTER,
    ROTATION_HANDLED,
    TOKEN_SECRET_LABEL,
    PublishedHash,
    SecretState,
    TokenClaims,
    TokenPlan,
    adoptable,
    expiry_notice,
    expiry_times,
    plan_token,
    refused,
    seen_since,
    settings_problem,
    token_deadlines,
    without_shared,
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
    # within a day of expiry: rotate (not-after is within issued-at + lifetime, so it is believed)
    plan = plan_token(state(old, **ann), 10 * DAY, DAY, NOW)
    assert plan.write_token and plan.write_previous == old
    assert plan.hashes[1].not_after == datetime(2026, 1, 10, 18, 0, tzinfo=UTC)  # never past its own expiry


def test_parse_duration() -> None:
    assert tokens.parse_duration("90d") == 90 * DAY
    assert tokens.parse_duration("15m") == timedelta(minutes=15)
    with pytest.raises(ValueError):
        tokens.parse_duration("1y")


# ------------------------------------------------------------------------- hardening (issue 8)

CURRENT = {ISSUED_AT: "2026-01-10T00:00:00Z", NOT_AFTER: "2026-04-10T00:00:00Z"}


@pytest.mark.parametrize("weak", ["hunter2", "a" * 64, "ab" * 20, "scim_ with a space and enough length!!"])
def test_weak_previous_token_is_never_published(weak: str) -> None:
    current = tokens.generate_token()
    secret = state(current, weak, **CURRENT, **{PREVIOUS_NOT_AFTER: "2026-01-11T00:00:00Z"})
    plan = plan_token(secret, 90 * DAY, DAY, NOW)
    assert plan.valid and [h.sha256 for h in plan.hashes] == [tokens.token_sha256(current)]
    assert plan.write_previous == ""  # dropped from the Secret
    assert plan.warning and plan.event_reason == "WeakPreviousToken" and plan.event


@pytest.mark.parametrize(
    ("annotations", "current_until"),
    [
        # a hand-set far not-after is capped at issued-at + lifetime
        ({ISSUED_AT: "2026-01-09T12:00:00Z", NOT_AFTER: "2099-01-01T00:00:00Z"}, "2026-04-09T12:00:00Z"),
        # an issue time in the future is taken as now
        ({ISSUED_AT: "2099-01-01T00:00:00Z", NOT_AFTER: "2099-04-01T00:00:00Z"}, "2026-04-10T12:00:00Z"),
        # a not-after alone is capped at creation + lifetime (the Secret was created a day ago)
        ({NOT_AFTER: "2099-01-01T00:00:00Z"}, "2026-04-09T12:00:00Z"),
        # an earlier not-after than the cap is kept
        ({ISSUED_AT: "2026-01-09T12:00:00Z", NOT_AFTER: "2026-03-01T00:00:00Z"}, "2026-03-01T00:00:00Z"),
    ],
)
def test_current_not_after_capped_at_issue_time_plus_lifetime(
    annotations: dict[str, str], current_until: str
) -> None:
    token = tokens.generate_token()
    plan = plan_token(state(token, **annotations), 90 * DAY, DAY, NOW)
    assert plan.valid and plan.hashes[0].as_status()["notAfter"] == current_until
    assert plan.message.endswith(current_until)
    if annotations.get(NOT_AFTER) != current_until:
        assert plan.annotations[NOT_AFTER] == current_until  # the Secret is corrected: the cap holds
    again = state(token, **{**annotations, **plan.annotations})
    assert plan_token(again, 90 * DAY, DAY, NOW).annotations == {}  # and stays put


@pytest.mark.parametrize(
    ("previous_not_after", "published_until"),
    [
        ("2099-01-01T00:00:00Z", "2026-01-11T00:00:00Z"),  # capped: rotation (issued-at) + grace
        ("2026-01-10T18:00:00Z", "2026-01-10T18:00:00Z"),  # within the grace period: believed
        ("2026-01-10T06:00:00Z", None),  # over: dropped
    ],
)
def test_previous_not_after_capped_at_rotation_plus_grace(
    previous_not_after: str, published_until: str | None
) -> None:
    current, previous = tokens.generate_token(), tokens.generate_token()
    secret = state(current, previous, **CURRENT, **{PREVIOUS_NOT_AFTER: previous_not_after})
    plan = plan_token(secret, 90 * DAY, DAY, NOW)
    assert plan.valid
    if published_until is None:
        assert len(plan.hashes) == 1 and plan.write_previous == ""
    else:
        assert plan.hashes[1].sha256 == tokens.token_sha256(previous)
        assert plan.hashes[1].as_status()["notAfter"] == published_until
    later = plan_token(secret, 90 * DAY, DAY, NOW + 2 * DAY)  # the cap does not slide with the clock
    assert len(later.hashes) == 1 and later.write_previous == ""


def test_previous_never_outlives_its_own_expiry() -> None:
    """A grace period longer than what is left of the token ends with the token."""
    current = tokens.generate_token()
    ann = {ISSUED_AT: "2026-01-10T00:00:00Z", NOT_AFTER: "2026-01-10T13:00:00Z"}
    plan = plan_token(state(current, **ann), 2 * DAY, timedelta(hours=20), NOW)  # due: rotated
    assert plan.write_token and plan.hashes[1].sha256 == tokens.token_sha256(current)
    assert plan.hashes[1].not_after == datetime(2026, 1, 10, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifetime", "grace"),
    [(DAY, DAY), (DAY, 2 * DAY), (timedelta(0), timedelta(0)), (timedelta(days=36501), DAY)],
)
def test_grace_not_shorter_than_lifetime_is_refused_never_rotated(
    lifetime: timedelta, grace: timedelta
) -> None:
    token = tokens.generate_token()
    for secret in (None, state(token, **CURRENT)):
        for minutes in range(3):  # resync after resync: still refused, nothing written
            plan = plan_token(secret, lifetime, grace, NOW + timedelta(minutes=minutes), rotate_request="r")
            assert not plan.valid and plan.reason == "InvalidTokenSettings" and plan.warning
            assert plan.hashes == [] and not plan.secret_changed


@pytest.mark.parametrize("text", ["36501d", "99999999999999d", "9" * 30 + "s"])
def test_parse_duration_refuses_durations_past_the_maximum(text: str) -> None:
    with pytest.raises(ValueError, match="maximum"):
        tokens.parse_duration(text)


UID = "0b7a5c1e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("labels", "owners", "expected"),
    [
        ({TOKEN_SECRET_LABEL: "ws"}, [], True),
        ({}, [{"kind": c.WORKSPACE_KIND, "uid": UID}], True),
        (None, None, False),
        ({TOKEN_SECRET_LABEL: "other-ws"}, [], False),
        ({"app": "db"}, [{"kind": c.WORKSPACE_KIND, "uid": "another-uid"}], False),
        ({}, [{"kind": "Deployment", "uid": UID}], False),
    ],
)
def test_only_operator_made_or_labelled_secrets_are_adopted(
    labels: dict[str, str] | None, owners: list[dict[str, str]] | None, expected: bool
) -> None:
    assert adoptable(labels, owners, "ws", UID) is expected


def test_foreign_secret_is_refused_untouched() -> None:
    foreign = SecretState(token=None, previous_token=None, annotations={}, created=NOW, foreign=True)
    plan = plan_token(foreign, 90 * DAY, DAY, NOW, rotate_request="r")
    assert not plan.valid and plan.reason == "SecretNotAdopted" and plan.warning
    assert plan.hashes == [] and not plan.secret_changed and TOKEN_SECRET_LABEL in plan.message


def test_shared_current_token_refuses_the_workspace() -> None:
    token = tokens.generate_token()
    plan = plan_token(state(token, **CURRENT), 90 * DAY, DAY, NOW)
    out = without_shared(plan, {tokens.token_sha256(token)})
    assert not out.valid and out.reason == "DuplicateToken" and out.warning and out.hashes == []
    assert not out.secret_changed and token not in out.message


def test_shared_previous_token_is_dropped_and_rotation_escapes_a_shared_token() -> None:
    current, previous = tokens.generate_token(), tokens.generate_token()
    secret = state(current, previous, **CURRENT, **{PREVIOUS_NOT_AFTER: "2026-01-11T00:00:00Z"})
    out = without_shared(plan_token(secret, 90 * DAY, DAY, NOW), {tokens.token_sha256(previous)})
    assert out.valid and [h.sha256 for h in out.hashes] == [tokens.token_sha256(current)]
    assert out.write_previous == "" and out.warning and out.event_reason == "DuplicateToken"
    # a rotation of a shared token keeps the new one and does not keep the shared one in grace
    rotated = plan_token(state(current, **CURRENT), 90 * DAY, DAY, NOW, rotate_request="r")
    out = without_shared(rotated, {tokens.token_sha256(current)})
    assert (
        out.valid
        and out.write_token
        and [h.sha256 for h in out.hashes] == [tokens.token_sha256(out.write_token)]
    )
    assert out.write_previous == "" and out.event and "stays valid" not in out.event


def test_nothing_shared_leaves_the_plan_alone() -> None:
    plan = plan_token(state(tokens.generate_token(), **CURRENT), 90 * DAY, DAY, NOW)
    assert without_shared(plan, set()) is plan
    assert without_shared(plan, {"0" * 64}) is plan


def test_token_claims_find_other_holders_and_forget_the_gone() -> None:
    claims = TokenClaims()
    claims.record(("a", "ws"), "uid-a", {"h1", "h2"})
    claims.record(("b", "ws"), "uid-b", {"h2"})
    assert claims.overlapping(("a", "ws"), {"h1", "h2"}) == {("b", "ws"): ("uid-b", {"h2"})}
    assert claims.overlapping(("c", "ws"), {"h3"}) == {}
    claims.forget(("b", "ws"), "another-uid")  # a newer workspace of that name keeps its claim
    assert ("b", "ws") in claims.held
    claims.forget(("b", "ws"), "uid-b")
    assert claims.overlapping(("a", "ws"), {"h2"}) == {}
    claims.record(("a", "ws"), "uid-a", ())
    assert claims.held == {}


def test_api_accepts_no_hash_published_by_two_workspaces() -> None:
    from scim_api.directory import Directory

    def ws(namespace: str, *secrets: str) -> dict[str, object]:
        hashes = [
            {"sha256": tokens.token_sha256(t), "fingerprint": "f", "notAfter": "2999-01-01T00:00:00Z"}
            for t in secrets
        ]
        return {
            "metadata": {"namespace": namespace, "name": "ws", "resourceVersion": "1"},
            "status": {"tokenHashes": hashes},
        }

    d = Directory()
    a, b = ws("a", "shared", "own-a"), ws("b", "shared")
    d.replace_all(c.WORKSPACE_PLURAL, [a, b])
    assert d.workspace_for_token_hash(tokens.token_sha256("shared")) is None
    assert d.workspace_for_token_hash(tokens.token_sha256("own-a")) is not None
    d.delete(c.WORKSPACE_PLURAL, b)
    found = d.workspace_for_token_hash(tokens.token_sha256("shared"))
    assert found is not None and found.namespace == "a"  # one holder again: accepted


@pytest.mark.parametrize(("rotate_request", "handled"), [(None, None), ("", None), ("r1", "r1")])
def test_an_empty_secret_gets_a_token_and_a_pending_rotation_request_is_handled(
    rotate_request: str | None, handled: str | None
) -> None:
    plan = plan_token(state(None), 90 * DAY, DAY, NOW, rotate_request=rotate_request)
    assert plan.valid and plan.write_token and not plan.create  # the Secret exists: filled in
    assert plan.event == "Generated a new workspace token"
    assert plan.annotations.get(ROTATION_HANDLED) == handled
    assert [h.sha256 for h in plan.hashes] == [tokens.token_sha256(plan.write_token)]


@pytest.mark.parametrize("past_expiry", [timedelta(0), timedelta(hours=1), 30 * DAY])
def test_an_expired_token_is_rotated_without_a_grace_period(past_expiry: timedelta) -> None:
    old = tokens.generate_token()
    ann = {ISSUED_AT: "2026-01-01T00:00:00Z", NOT_AFTER: "2026-01-05T00:00:00Z"}
    now = datetime(2026, 1, 5, tzinfo=UTC) + past_expiry
    plan = plan_token(state(old, **ann), 10 * DAY, DAY, now)
    assert plan.valid and plan.write_token and plan.write_token != old
    assert plan.write_previous == ""  # the old token is over: not kept
    assert [h.sha256 for h in plan.hashes] == [tokens.token_sha256(plan.write_token)]
    assert plan.annotations[PREVIOUS_NOT_AFTER] == "2026-01-05T00:00:00Z"
    assert ROTATION_HANDLED not in plan.annotations
    assert plan.event == "Rotated the workspace token before expiry"  # no grace announced


def test_dropping_a_shared_previous_token_keeps_the_plans_own_event() -> None:
    # plan_token never makes such a plan today (its only event on an unrotated token is for
    # a weak previous token, which is not published); without_shared still keeps the event.
    current, previous = tokens.generate_token(), tokens.generate_token()
    until = NOW + DAY
    current_hash = PublishedHash(tokens.token_sha256(current), "sha256:current", until)
    previous_hash = PublishedHash(tokens.token_sha256(previous), "sha256:previous", until)
    plan = TokenPlan(hashes=[current_hash, previous_hash], valid=True, reason="TokenActive", event="Adopted")
    out = without_shared(plan, {previous_hash.sha256})
    assert out.valid and out.hashes == [current_hash] and out.write_previous == ""
    assert out.event == "Adopted; Dropped the previous token: another workspace holds the same token"
    assert out.event_reason == "DuplicateToken" and out.warning
    assert plan.hashes == [current_hash, previous_hash]  # the input is not changed


# ------------------------------------------------------------------------- lifecycle (issue 11)

ROTATED = {ISSUED_AT: "2026-01-10T11:00:00Z", PREVIOUS_NOT_AFTER: "2026-01-11T11:00:00Z"}


def test_without_a_lifetime_a_token_never_expires() -> None:
    plan = plan_token(None, None, DAY, NOW)
    assert plan.valid and plan.create and plan.write_token
    (published,) = plan.hashes
    assert not published.expires and published.not_after == NOW + MAX_LIFETIME  # what the API checks
    assert "never expires" in plan.message
    # a thousand years on the clock of the same Secret: still not due, nothing rewritten
    later = plan_token(state(plan.write_token, **plan.annotations), None, DAY, NOW + 3650 * DAY)
    assert later.valid and not later.secret_changed and later.hashes[0].not_after == published.not_after
    assert settings_problem(None, timedelta(days=tokens.MAX_DURATION_DAYS)) is None


def test_without_a_lifetime_an_earlier_lifetimes_expiry_no_longer_applies() -> None:
    """A Secret written under the old 90-day default keeps working past that date: the
    settings say the token does not expire, so the written not-after is corrected."""
    token = tokens.generate_token()
    old = {ISSUED_AT: "2025-01-01T00:00:00Z", NOT_AFTER: "2025-04-01T00:00:00Z"}
    plan = plan_token(state(token, **old), None, DAY, NOW)
    assert plan.valid and plan.write_token is None and plan.write_previous is None  # not rotated
    assert plan.hashes[0].not_after == datetime(2025, 1, 1, tzinfo=UTC) + MAX_LIFETIME
    assert plan.annotations == {ISSUED_AT: old[ISSUED_AT], NOT_AFTER: "2124-12-08T00:00:00Z"}


def test_without_a_lifetime_rotation_on_request_keeps_the_previous_for_grace() -> None:
    old = tokens.generate_token()
    plan = plan_token(state(old, **{ISSUED_AT: "2026-01-01T00:00:00Z"}), None, DAY, NOW, rotate_request="r")
    assert plan.write_token and plan.write_previous == old
    new, previous = plan.hashes
    assert not new.expires and previous.expires and previous.not_after == NOW + DAY


@pytest.mark.parametrize(
    ("used", "retired"),
    [
        ({}, False),  # the IdP never used the new token: the old one stays for the grace period
        ({"other": "2026-01-10T11:30:00Z"}, False),  # another fingerprint's use says nothing
        ({"new": "2026-01-10T10:59:59Z"}, False),  # before the rotation: not this token's use
        ({"new": "2026-01-10T11:00:00Z"}, True),  # the second of the rotation counts
        ({"new": "2026-01-10T11:45:00Z"}, True),
    ],
)
def test_previous_token_retired_once_the_idp_uses_the_new_one(used: dict[str, str], retired: bool) -> None:
    new, old = tokens.generate_token(), tokens.generate_token()
    fingerprint = tokens.fingerprint(tokens.token_sha256(new))
    last_used = {
        (fingerprint if k == "new" else k): datetime.fromisoformat(v.replace("Z", "+00:00"))
        for k, v in used.items()
    }
    plan = plan_token(state(new, old, **ROTATED), 90 * DAY, DAY, NOW, last_used=last_used)
    assert plan.valid
    if retired:
        assert plan.write_previous == "" and [h.fingerprint for h in plan.hashes] == [fingerprint]
        assert plan.event_reason == "PreviousTokenRetired" and not plan.warning
    else:
        assert plan.write_previous is None and len(plan.hashes) == 2
        assert plan.hashes[1].not_after == datetime(2026, 1, 11, 11, 0, tzinfo=UTC)  # grace still caps it


def test_seen_since_ignores_sub_second_rotation_times() -> None:
    at = datetime(2026, 1, 10, 11, 0, 0, 700000, tzinfo=UTC)
    assert seen_since({"fp": at.replace(microsecond=0)}, "fp", at)
    assert not seen_since(None, "fp", at)


def _hash(fingerprint: str, not_after: datetime, expires: bool = True) -> PublishedHash:
    return PublishedHash("0" * 64, fingerprint, not_after, expires)


WARN = 14 * DAY


@pytest.mark.parametrize(
    ("hashes", "valid", "expected", "reason", "needle"),
    [
        ([], False, None, "NoValidToken", "TokenValid"),
        ([("cur", 100, False)], True, False, "TokenNeverExpires", "never expires"),
        ([("cur", 15, True)], True, False, "TokenNotExpiringSoon", "1209600s"),
        ([("cur", 14, True)], True, True, "TokenExpiresSoon", "hand the IdP the new token before"),
        ([("cur", -1, True)], True, True, "TokenExpiresSoon", "Token cur expires"),
        # after a rotation: the previous token is what the IdP still holds
        ([("cur", 90, True), ("prev", 1, True)], True, True, "TokenExpiresSoon", "not been seen using"),
        ([("cur", 100, False), ("prev", 1, True)], True, True, "TokenExpiresSoon", "Token prev expires"),
        ([("cur", 10, True), ("prev", 1, True)], True, True, "TokenExpiresSoon", "Token prev expires"),
    ],
)
def test_expiry_notice(
    hashes: list[tuple[str, int, bool]], valid: bool, expected: bool | None, reason: str, needle: str
) -> None:
    plan = TokenPlan(hashes=[_hash(f, NOW + d * DAY, e) for f, d, e in hashes], valid=valid)
    notice = expiry_notice(plan, WARN, NOW)
    assert (notice.expiring, notice.reason) == (expected, reason)
    assert needle in notice.message


def test_expiry_times_and_deadlines() -> None:
    plan = TokenPlan(hashes=[_hash("cur", NOW + 90 * DAY), _hash("prev", NOW + DAY)], valid=True)
    assert expiry_times(plan) == {"cur": (NOW + 90 * DAY).timestamp(), "prev": (NOW + DAY).timestamp()}
    assert sorted(token_deadlines(plan, DAY, WARN)) == sorted(
        [NOW + 76 * DAY, NOW + 90 * DAY, NOW - 13 * DAY, NOW + DAY, NOW + 89 * DAY]
    )
    never = TokenPlan(hashes=[_hash("cur", NOW + MAX_LIFETIME, expires=False)], valid=True)
    assert expiry_times(never) == {} and token_deadlines(never, DAY, WARN) == []
    gone = refused("WeakToken", "no")
    assert expiry_times(gone) == {} and token_deadlines(gone, DAY, WARN) == []
