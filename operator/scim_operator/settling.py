"""When a group reconcile that would only grant waits for the group's changes to settle.

An IdP sends a new group's members in a burst of requests, one after the other (Entra: a
POST without members, then PATCHes adding a few members each). Reconciled after each of
them, the group costs a RoleBinding write, a status write and an Event per request, on the
same API server that is taking the IdP's writes: at 1,000 groups the operator's writes were
about 4.7 per group against the API's 7 (docs/benchmarks.md, "Entra first sync"). A
reconcile whose only effect would be to grant (no subject loses a role) therefore waits
until its plan has stayed the same for ``quiet`` seconds, at most ``longest`` seconds in all,
and then writes once. Taking access away never waits: that decision is the caller's
(``rbac.revokes_anyone``), and a reconcile with anything to revoke does not come here.

Pure: the caller passes the clock and keeps the returned state per group."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settling:
    """What is remembered of a group whose grants wait."""

    #: the plan last seen (a hash of its bindings), to tell whether it changed since
    signature: int
    #: when that plan was first seen
    changed_at: float
    #: when the group began waiting (bounds the wait of a group that keeps changing)
    since: float


def settle(
    previous: Settling | None, signature: int, now: float, quiet: float, longest: float
) -> tuple[float, Settling | None]:
    """Seconds to wait before writing the grants of a plan with this ``signature`` (0: write
    now) and what to remember of the group until then (``None`` once it writes).

    The first sight of a pending grant counts as a change (it was queued by one just now), so
    a lone change waits ``quiet`` seconds; ``quiet`` of 0 turns the wait off."""
    if quiet <= 0:
        return 0.0, None
    if previous is None:
        current = Settling(signature, now, now)
    elif previous.signature != signature:
        current = Settling(signature, now, previous.since)
    else:
        current = previous
    wait = min(current.changed_at + quiet, current.since + longest) - now
    if wait <= 0:
        return 0.0, None
    return wait, current
