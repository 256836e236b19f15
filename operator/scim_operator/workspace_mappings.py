"""The workspace's RoleMappingsValid condition: role mappings whose pattern RE2 refuses.

A refused pattern matches no group (``rbac.mapping_matches``); this makes the refusal
visible where it was written, on the workspace, with one Warning Event per new refusal."""

from __future__ import annotations

from typing import Any

from .conditions import set_condition
from .events import EventPoster
from .rbac import pattern_problems

CONDITION = "RoleMappingsValid"


def role_mappings_condition(
    events: EventPoster, workspace: dict[str, Any], conditions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``conditions`` with RoleMappingsValid set; a Warning Event (through ``events``, the
    operator's bounded limiter) when the refusal is new."""
    problems = pattern_problems(workspace.get("spec"))
    if problems:
        message = "Refused patterns (these mappings match no group): " + "; ".join(
            f"{name}: {why}" for name, why in problems
        )
    else:
        message = "Every role-mapping pattern is a valid RE2 expression"
    reason = "InvalidPattern" if problems else "MappingsValid"
    previous = (workspace.get("status") or {}).get("conditions") or []
    before: dict[str, Any] = next((x for x in previous if x.get("type") == CONDITION), {})
    if problems and before.get("message") != message:
        events.post(workspace, "Warning", reason, message)
    generation = workspace["metadata"].get("generation")
    return set_condition(conditions, CONDITION, not problems, reason, message, generation)
