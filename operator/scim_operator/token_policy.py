"""Pure decisions about a workspace's token Secret: generate, adopt, rotate, expire.

``plan_token`` takes what is (the Secret's data and annotations, the workspace settings,
the clock) and returns what should be: the Secret contents to write (if any), the hashes
to publish and the TokenValid condition. No I/O here, so every rule is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scim_core import constants as c
from scim_core import tokens

ISSUED_AT = f"{c.GROUP}/issued-at"
NOT_AFTER = f"{c.GROUP}/not-after"
PREVIOUS_NOT_AFTER = f"{c.GROUP}/previous-not-after"
ROTATION_HANDLED = f"{c.GROUP}/rotation-handled"
#: Put this annotation (any new value) on a ScimWorkspace to rotate its token now.
ROTATE_REQUEST = f"{c.GROUP}/rotate-token"
PREVIOUS_KEY = "previous-token"


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class SecretState:
    """What the operator read from the token Secret (None when it does not exist)."""

    token: str | None
    previous_token: str | None
    annotations: dict[str, str]
    created: datetime | None


@dataclass(frozen=True)
class PublishedHash:
    sha256: str
    fingerprint: str
    not_after: datetime

    def as_status(self) -> dict[str, str]:
        return {
            "sha256": self.sha256,
            "fingerprint": self.fingerprint,
            "notAfter": _iso(self.not_after),
        }


@dataclass
class TokenPlan:
    """The outcome: what to write and publish."""

    write_token: str | None = None  # the Secret's new ``token`` value
    write_previous: str | None = None  # the Secret's new ``previous-token`` ("" drops it)
    annotations: dict[str, str] = field(default_factory=dict)  # to merge into the Secret
    create: bool = False  # the Secret must be created
    hashes: list[PublishedHash] = field(default_factory=list)
    valid: bool = False
    reason: str = ""
    message: str = ""
    event: str | None = None  # a human sentence for a Normal/Warning Event
    warning: bool = False

    @property
    def secret_changed(self) -> bool:
        return (
            self.create
            or self.write_token is not None
            or self.write_previous is not None
            or bool(self.annotations)
        )


def plan_token(
    secret: SecretState | None,
    lifetime: timedelta,
    grace: timedelta,
    now: datetime,
    rotate_request: str | None = None,
) -> TokenPlan:
    """Decide what the token Secret and the published hashes should be."""
    if secret is None or secret.token is None:
        token = tokens.generate_token()
        plan = _fresh(token, now, lifetime, create=secret is None)
        plan.event = "Generated a new workspace token"
        if rotate_request:
            plan.annotations[ROTATION_HANDLED] = rotate_request
        return plan

    if (why := tokens.weakness(secret.token)) is not None:
        return TokenPlan(valid=False, reason="WeakToken", message=f"Refused the token Secret: {why}",
                         event=f"Refused weak token: {why}", warning=True)  # fmt: skip

    issued = _parse(secret.annotations.get(ISSUED_AT)) or secret.created or now
    not_after = _parse(secret.annotations.get(NOT_AFTER)) or issued + lifetime
    plan = TokenPlan()
    if ISSUED_AT not in secret.annotations or NOT_AFTER not in secret.annotations:
        plan.annotations = {ISSUED_AT: _iso(issued), NOT_AFTER: _iso(not_after)}

    asked = bool(rotate_request) and secret.annotations.get(ROTATION_HANDLED) != rotate_request
    due = now >= not_after - grace
    if asked or due:
        new = tokens.generate_token()
        previous_until = min(now + grace, not_after)
        rotated = _fresh(new, now, lifetime)
        rotated.write_previous = secret.token if previous_until > now else ""
        rotated.annotations[PREVIOUS_NOT_AFTER] = _iso(previous_until)
        if rotate_request:
            rotated.annotations[ROTATION_HANDLED] = rotate_request
        if previous_until > now:
            sha = tokens.token_sha256(secret.token)
            rotated.hashes.append(PublishedHash(sha, tokens.fingerprint(sha), previous_until))
        rotated.event = (
            "Rotated the workspace token on request" if asked else "Rotated the workspace token before expiry"
        ) + (f"; the previous one stays valid until {_iso(previous_until)}" if previous_until > now else "")
        return rotated

    sha = tokens.token_sha256(secret.token)
    plan.hashes.append(PublishedHash(sha, tokens.fingerprint(sha), not_after))
    previous_valid_until = _parse(secret.annotations.get(PREVIOUS_NOT_AFTER))
    if secret.previous_token:
        if previous_valid_until is not None and previous_valid_until > now:
            psha = tokens.token_sha256(secret.previous_token)
            plan.hashes.append(PublishedHash(psha, tokens.fingerprint(psha), previous_valid_until))
        else:
            plan.write_previous = ""  # grace period over: drop it
    plan.valid = True
    plan.reason = "TokenActive"
    plan.message = f"Token {tokens.fingerprint(sha)} valid until {_iso(not_after)}"
    return plan


def _fresh(token: str, now: datetime, lifetime: timedelta, create: bool = False) -> TokenPlan:
    sha = tokens.token_sha256(token)
    not_after = now + lifetime
    return TokenPlan(
        write_token=token,
        create=create,
        annotations={ISSUED_AT: _iso(now), NOT_AFTER: _iso(not_after)},
        hashes=[PublishedHash(sha, tokens.fingerprint(sha), not_after)],
        valid=True,
        reason="TokenActive",
        message=f"Token {tokens.fingerprint(sha)} valid until {_iso(not_after)}",
    )
