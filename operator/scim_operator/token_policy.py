"""Pure decisions about a workspace's token Secret: adopt, generate, rotate, expire, refuse,
retire the previous token, warn before an expiry.

``plan_token`` takes what is (the Secret's data and annotations, the workspace settings,
the clock) and returns what should be: the Secret contents to write (if any), the hashes
to publish and the TokenValid condition. No I/O here, so every rule is unit-tested.

Nothing in the Secret is believed beyond the workspace's own settings: whoever can edit a
Secret in the namespace must not be able to publish a weak token, stretch a token's life
past ``lifetime`` (or a previous token's past ``gracePeriod``), or make the operator adopt
a Secret that was never meant to hold a workspace token.

Without a ``lifetime`` a token never expires (an expiry the IdP is not told about is an
outage): its hash is published with ``notAfter`` = issue time + ``MAX_LIFETIME`` and it is
rotated only on request. After any rotation the previous token stays valid until the API has
seen the IdP use the new one, or until ``gracePeriod`` ends, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from scim_core import constants as c
from scim_core import tokens
from scim_core.timestamps import format_utc, parse_time

ISSUED_AT = f"{c.GROUP}/issued-at"
NOT_AFTER = f"{c.GROUP}/not-after"
PREVIOUS_NOT_AFTER = f"{c.GROUP}/previous-not-after"
ROTATION_HANDLED = f"{c.GROUP}/rotation-handled"
#: Put this annotation (any new value) on a ScimWorkspace to rotate its token now.
ROTATE_REQUEST = f"{c.GROUP}/rotate-token"
#: Label on token Secrets: its value is the owning ScimWorkspace's name. A Secret the
#: operator did not create is adopted only when it carries this label.
TOKEN_SECRET_LABEL = f"{c.GROUP}/token-for"
PREVIOUS_KEY = "previous-token"
#: Longest token lifetime: keeps every expiry a representable date (the CRD says the same).
MAX_LIFETIME = timedelta(days=tokens.MAX_DURATION_DAYS)


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


@dataclass(frozen=True)
class SecretState:
    """What the operator read from the token Secret (None when it does not exist).

    ``foreign``: the Secret exists but is neither owned by the workspace nor labelled for
    it; its data was not read."""

    token: str | None
    previous_token: str | None
    annotations: dict[str, str]
    created: datetime | None
    foreign: bool = False


def adoptable(
    labels: Mapping[str, str] | None,
    owner_references: Collection[Mapping[str, Any]] | None,
    workspace_name: str,
    workspace_uid: str,
) -> bool:
    """May the workspace use this Secret as its token Secret? Only when the operator
    created it for this workspace (ownerReference) or an admin labelled it for it."""
    if (labels or {}).get(TOKEN_SECRET_LABEL) == workspace_name:
        return True
    return any(
        ref.get("kind") == c.WORKSPACE_KIND and ref.get("uid") == workspace_uid
        for ref in owner_references or []
    )


def settings_problem(lifetime: timedelta | None, grace: timedelta) -> str | None:
    """Why the workspace's token settings cannot be applied, or None."""
    if lifetime is None:
        return None  # no expiry: any grace period (capped at MAX_LIFETIME by parsing) works
    if lifetime > MAX_LIFETIME:
        return f"lifetime {_seconds(lifetime)} is longer than the maximum {tokens.MAX_DURATION_DAYS}d"
    if grace >= lifetime:
        return (
            f"gracePeriod ({_seconds(grace)}) must be shorter than lifetime ({_seconds(lifetime)}); "
            "otherwise every token would be due for rotation as soon as it is issued"
        )
    return None


@dataclass(frozen=True)
class PublishedHash:
    sha256: str
    fingerprint: str
    not_after: datetime
    #: False for a token without a lifetime: ``not_after`` is only the representable far end.
    expires: bool = True

    def as_status(self) -> dict[str, str]:
        return {
            "sha256": self.sha256,
            "fingerprint": self.fingerprint,
            "notAfter": format_utc(self.not_after),
        }


def _published(token: str, not_after: datetime, expires: bool = True) -> PublishedHash:
    sha = tokens.token_sha256(token)
    return PublishedHash(sha, tokens.fingerprint(sha), not_after, expires)


def _validity(published: PublishedHash) -> str:
    if published.expires:
        return f"Token {published.fingerprint} valid until {format_utc(published.not_after)}"
    return f"Token {published.fingerprint} never expires (no spec.token.lifetime): rotate it on request"


def seen_since(last_used: Mapping[str, datetime] | None, fingerprint: str, since: datetime) -> bool:
    """Has the API seen the token ``fingerprint`` used at or after ``since`` (the rotation)?
    ``last_used`` is ``status.tokenUsage`` as fingerprint -> lastUsedTime; the times are
    whole seconds, so the second of the rotation counts."""
    used = (last_used or {}).get(fingerprint)
    return used is not None and used >= since.replace(microsecond=0)


@dataclass
class TokenPlan:
    """The outcome: what to write and publish."""

    write_token: str | None = None  # the Secret's new ``token`` value
    write_previous: str | None = None  # the Secret's new ``previous-token`` ("" drops it)
    annotations: dict[str, str] = field(default_factory=dict)  # to merge into the Secret
    create: bool = False  # the Secret must be created
    hashes: list[PublishedHash] = field(default_factory=list)  # the current token's first
    valid: bool = False
    reason: str = ""
    message: str = ""
    event: str | None = None  # a human sentence for a Normal/Warning Event
    warning: bool = False
    event_reason: str | None = None  # when the Event's reason is not the condition's

    @property
    def secret_changed(self) -> bool:
        return (
            self.create
            or self.write_token is not None
            or self.write_previous is not None
            or bool(self.annotations)
        )


def refused(reason: str, message: str) -> TokenPlan:
    """No token is accepted for the workspace and the Secret is left as it is."""
    return TokenPlan(valid=False, reason=reason, message=message, event=message, warning=True)


def plan_token(
    secret: SecretState | None,
    lifetime: timedelta | None,
    grace: timedelta,
    now: datetime,
    rotate_request: str | None = None,
    last_used: Mapping[str, datetime] | None = None,
) -> TokenPlan:
    """Decide what the token Secret and the published hashes should be.

    ``lifetime`` None: the token never expires. ``last_used``: fingerprint -> when the API
    last saw that token used (``status.tokenUsage``); once the current token has been used
    since its rotation, the previous one is dropped before its grace period ends."""
    now = now.replace(microsecond=0)  # annotations hold whole seconds: keep them stable
    if (problem := settings_problem(lifetime, grace)) is not None:
        return refused("InvalidTokenSettings", f"Refused the token settings: {problem}")
    if secret is not None and secret.foreign:
        return refused(
            "SecretNotAdopted",
            "Refused the token Secret: it was not created by the operator for this workspace and "
            f"does not carry the label {TOKEN_SECRET_LABEL}=<workspace name>; it is neither read nor changed",
        )
    if secret is None or secret.token is None:
        token = tokens.generate_token()
        plan = _fresh(token, now, lifetime, create=secret is None)
        plan.event = "Generated a new workspace token"
        if rotate_request:
            plan.annotations[ROTATION_HANDLED] = rotate_request
        return plan

    if (why := tokens.weakness(secret.token)) is not None:
        return refused("WeakToken", f"Refused the token Secret: {why}")

    # Caps: an issue time is never in the future, a token never outlives ``lifetime`` from
    # it, a previous token never outlives ``gracePeriod`` from the rotation (= the current
    # token's issue time) nor the current token. Without a lifetime the written not-after (an
    # earlier lifetime's) is not believed either: the settings say the token does not expire.
    written_issued = parse_time(secret.annotations.get(ISSUED_AT))
    issued = min(written_issued or secret.created or now, now)
    written_not_after = parse_time(secret.annotations.get(NOT_AFTER))
    if lifetime is None:
        not_after = issued + MAX_LIFETIME
    else:
        not_after = min(written_not_after or issued + lifetime, issued + lifetime)
    written_previous = parse_time(secret.annotations.get(PREVIOUS_NOT_AFTER))
    previous_until = (
        min(written_previous, issued + grace, not_after) if written_previous is not None else None
    )
    plan = TokenPlan()
    if written_issued != issued or written_not_after != not_after:
        plan.annotations = {ISSUED_AT: format_utc(issued), NOT_AFTER: format_utc(not_after)}
    if previous_until is not None and previous_until != written_previous:
        plan.annotations[PREVIOUS_NOT_AFTER] = format_utc(previous_until)

    asked = bool(rotate_request) and secret.annotations.get(ROTATION_HANDLED) != rotate_request
    due = now >= not_after - grace
    if asked or due:
        return _rotated(secret.token, now, lifetime, grace, not_after, rotate_request, asked)

    current = _published(secret.token, not_after, expires=lifetime is not None)
    plan.hashes.append(current)
    if secret.previous_token:
        if (weak := tokens.weakness(secret.previous_token)) is not None:
            plan.write_previous = ""  # never published: drop it
            plan.event = f"Dropped the previous token: {weak}"
            plan.event_reason, plan.warning = "WeakPreviousToken", True
        elif previous_until is not None and previous_until > now:
            if seen_since(last_used, current.fingerprint, issued):
                plan.write_previous = ""  # the IdP has switched: the old copy is no longer needed
                plan.event = (
                    f"Dropped the previous token: the IdP uses the new one ({current.fingerprint}) "
                    f"since the rotation at {format_utc(issued)}"
                )
                plan.event_reason = "PreviousTokenRetired"
            else:
                plan.hashes.append(_published(secret.previous_token, previous_until))
        else:
            plan.write_previous = ""  # grace period over: drop it
    plan.valid = True
    plan.reason = "TokenActive"
    plan.message = _validity(current)
    return plan


def _rotated(
    old: str,
    now: datetime,
    lifetime: timedelta | None,
    grace: timedelta,
    not_after: datetime,
    rotate_request: str | None,
    asked: bool,
) -> TokenPlan:
    """A new token; the old one stays valid for the grace period (never past its own expiry)."""
    previous_until = min(now + grace, not_after)
    rotated = _fresh(tokens.generate_token(), now, lifetime)
    rotated.write_previous = old if previous_until > now else ""
    rotated.annotations[PREVIOUS_NOT_AFTER] = format_utc(previous_until)
    if rotate_request:
        rotated.annotations[ROTATION_HANDLED] = rotate_request
    if previous_until > now:
        rotated.hashes.append(_published(old, previous_until))
    rotated.event = (
        "Rotated the workspace token on request" if asked else "Rotated the workspace token before expiry"
    ) + (f"; the previous one stays valid until {format_utc(previous_until)}" if previous_until > now else "")
    return rotated


def without_shared(plan: TokenPlan, shared: Collection[str]) -> TokenPlan:
    """The plan with no hash that another workspace also holds.

    A token held by two workspaces cannot tell them apart, so neither may accept it: a
    shared current token refuses the workspace (both sides do the same); a shared previous
    token is dropped from the Secret, as a rotation does at the end of the grace period."""
    hashes = [h for h in plan.hashes if h.sha256 not in shared]
    if not plan.valid or len(hashes) == len(plan.hashes):
        return plan
    if not plan.hashes or plan.hashes[0].sha256 in shared:
        return refused(
            "DuplicateToken",
            f"Refused the token {plan.hashes[0].fingerprint}: another workspace holds the same token, "
            "so neither accepts it. Rotate or delete the token Secret of the workspace that should "
            "not hold it",
        )
    dropped = "Dropped the previous token: another workspace holds the same token"
    if plan.write_token is not None:  # a rotation: the grace period it announced is void
        dropped = f"Rotated the workspace token; {dropped[0].lower()}{dropped[1:]}"
    elif plan.event:
        dropped = f"{plan.event}; {dropped}"
    return replace(
        plan,
        hashes=hashes,
        write_previous="",
        event=dropped,
        event_reason=plan.event_reason or "DuplicateToken",
        warning=True,
    )


@dataclass(frozen=True)
class ExpiryNotice:
    """The TokenExpiring condition: ``expiring`` None when there is no valid token."""

    expiring: bool | None
    reason: str
    message: str


def expiry_notice(plan: TokenPlan, warn_before: timedelta, now: datetime) -> ExpiryNotice:
    """Does a token the IdP may still be using expire within ``warn_before``?

    The previous token counts while it is published: until the IdP is seen using the new
    one, the previous one is what it holds, and its end is the IdP's outage."""
    if not plan.valid or not plan.hashes:
        return ExpiryNotice(None, "NoValidToken", "No valid token: see the TokenValid condition")
    current = plan.hashes[0]
    soon = [h for h in plan.hashes if h.expires and h.not_after - now <= warn_before]
    if soon:
        first = min(soon, key=lambda h: h.not_after)
        if first is current:
            advice = (
                f"the operator replaces it before then; hand the IdP the new token before "
                f"{format_utc(first.not_after)} (or rotate now with the annotation {ROTATE_REQUEST})"
            )
        else:
            advice = (
                f"it is the previous token and the IdP has not been seen using the new one "
                f"({current.fingerprint}) yet: hand the IdP the new token"
            )
        when = format_utc(first.not_after)
        return ExpiryNotice(
            True, "TokenExpiresSoon", f"Token {first.fingerprint} expires at {when}; {advice}"
        )
    if any(h.expires for h in plan.hashes):
        return ExpiryNotice(False, "TokenNotExpiringSoon", f"No token expires within {_seconds(warn_before)}")
    return ExpiryNotice(False, "TokenNeverExpires", "The token has no lifetime: it never expires")


def expiry_times(plan: TokenPlan) -> dict[str, float]:
    """fingerprint -> expiry (Unix time) of each published token that expires."""
    if not plan.valid:
        return {}
    return {h.fingerprint: h.not_after.timestamp() for h in plan.hashes if h.expires}


def token_deadlines(plan: TokenPlan, grace: timedelta, warn_before: timedelta) -> list[datetime]:
    """When the plan's outcome changes by the clock alone: a warning starts, a scheduled
    rotation is due, a token (or the previous one's grace period) ends."""
    if not plan.valid:
        return []
    out: list[datetime] = []
    for published in plan.hashes:
        if published.expires:
            out += [published.not_after - warn_before, published.not_after]
    if plan.hashes[0].expires:
        out.append(plan.hashes[0].not_after - grace)
    return out


WorkspaceKey = tuple[str, str]  # (namespace, name)


@dataclass
class TokenClaims:
    """Which token hashes each workspace's Secret holds, as this operator last read them.

    Workspaces live in different namespaces and never see each other's Secrets; the
    operator sees them all, so it is the one place where a token held by two workspaces
    (a copied Secret, a token chosen to collide) can be noticed and refused in both."""

    held: dict[WorkspaceKey, tuple[str, frozenset[str]]] = field(default_factory=dict)

    def record(self, key: WorkspaceKey, uid: str, hashes: Collection[str]) -> None:
        if hashes:
            self.held[key] = (uid, frozenset(hashes))
        else:
            self.held.pop(key, None)

    def overlapping(
        self, key: WorkspaceKey, hashes: Collection[str]
    ) -> dict[WorkspaceKey, tuple[str, set[str]]]:
        """Other workspaces holding any of ``hashes``: their uid and the shared hashes."""
        wanted = set(hashes)
        return {
            other: (uid, wanted & theirs)
            for other, (uid, theirs) in self.held.items()
            if other != key and wanted & theirs
        }

    def forget(self, key: WorkspaceKey, uid: str) -> None:
        """The workspace is gone (or was replaced): its claims no longer count."""
        if key in self.held and self.held[key][0] == uid:
            del self.held[key]


def _fresh(token: str, now: datetime, lifetime: timedelta | None, create: bool = False) -> TokenPlan:
    not_after = now + (MAX_LIFETIME if lifetime is None else lifetime)
    published = _published(token, not_after, expires=lifetime is not None)
    return TokenPlan(
        write_token=token,
        create=create,
        annotations={ISSUED_AT: format_utc(now), NOT_AFTER: format_utc(not_after)},
        hashes=[published],
        valid=True,
        reason="TokenActive",
        message=_validity(published),
    )
