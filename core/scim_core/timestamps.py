"""One UTC timestamp format (RFC 3339, ``Z``, whole seconds: what Kubernetes writes in
conditions and Events) and one lenient parser, so API and operator agree on both."""

from __future__ import annotations

from datetime import UTC, datetime

#: The format of ``lastTransitionTime``, Event times and token ``notAfter`` values.
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_utc(moment: datetime) -> str:
    """``moment`` (aware, any zone) as ``2026-01-02T03:04:05Z``."""
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def now_utc() -> str:
    """The current time in :data:`UTC_FORMAT`."""
    return format_utc(datetime.now(UTC))


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime; None when absent or invalid,
    so a hand-edited annotation can never crash a reconcile. A naive time is taken as UTC."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
