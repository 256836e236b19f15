"""Times as a person reads them at a glance: "5m ago", "in 89d"."""

from __future__ import annotations

from datetime import datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def span(seconds: float) -> str:
    """The largest whole unit of a duration (``90s`` is ``1m``; under a second ``0s``)."""
    seconds = abs(int(seconds))
    for unit, size in _UNITS:
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "0s"


def relative(when: datetime | None, now: datetime, missing: str = "-") -> str:
    """``5m ago`` for the past, ``in 89d`` for the future, ``missing`` for no time."""
    if when is None:
        return missing
    delta = (when - now).total_seconds()
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"
