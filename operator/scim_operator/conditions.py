"""KEP-1623 conditions: set one, keeping lastTransitionTime when the status is unchanged."""

from __future__ import annotations

from typing import Any

from scim_core.timestamps import now_utc


def set_condition(
    existing: list[dict[str, Any]] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """A new conditions list with ``type_`` set; other conditions are kept as they are."""
    value = "Unknown" if status is None else ("True" if status else "False")
    out = [dict(c) for c in existing or [] if c.get("type") != type_]
    previous = next((c for c in existing or [] if c.get("type") == type_), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == value and previous.get("lastTransitionTime")
        else now_utc()
    )
    cond: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    out.sort(key=lambda c: str(c["type"]))
    return out


def same_conditions(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None) -> bool:
    return sorted(a or [], key=lambda c: str(c.get("type"))) == sorted(
        b or [], key=lambda c: str(c.get("type"))
    )
