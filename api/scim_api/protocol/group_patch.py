"""PATCH (RFC 7644 §3.5.2) for Groups, applied to an indexed form of the group.

Members are held as an insertion-ordered dict keyed by member value, so adding 100
members to a 50,000-member group is 100 dict operations, not a model rebuild, and a value
filter (``members[value eq "id"]``) is one dict lookup, not a scan. Filters the index
cannot answer scan the group, within a per-request budget (``MAX_SCANNED_MEMBERS``).
All operations apply to a copy: any error leaves the stored group untouched (atomicity).

IdP quirks handled here, each pinned by a test:
- operation names in any case (Entra ``Add``/``Replace``/``Remove``);
- ``{"op":"Remove","path":"members","value":[{"value":"id"}]}`` removes only those members;
- ``members[value eq "id"]`` value-path removal (Entra aadOptscim062020, Okta);
- no-path ``replace`` whose object carries the read-only ``id`` (Okta) or ``schemas``/``meta``;
- ``add`` on the single-valued ``externalId`` (Entra) acts as replace;
- ``$ref: null`` in member values; adding an existing member or removing an absent one is a no-op;
- ``replace`` on a value filter that matches nothing is 400 ``noTarget`` (RFC 7644 §3.5.2.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scim_core.members import member_json

from ..errors import ScimError, bad_request, invalid_path, mutability, no_target
from .filters import Node, matches, normalize_attr, parse_filter
from .listing import candidates
from .patch import Operation

_IGNORED_TOP_LEVEL = {"id", "schemas", "meta"}
#: Member checks one PATCH may spend on filters the index cannot answer (e.g.
#: ``members[display co "x"]``): each such operation scans the whole group.
MAX_SCANNED_MEMBERS = 200_000
#: ``members.value`` is a User id: case-exact (as /Schemas says and list filters do).
_CASE_EXACT = frozenset({"value"})


@dataclass
class GroupState:
    """A group as the PATCH logic sees it."""

    display_name: str
    external_id: str | None = None
    members: dict[str, str | None] = field(default_factory=dict)  # value -> display

    def copy(self) -> GroupState:
        return GroupState(self.display_name, self.external_id, dict(self.members))


def too_many_members(count: int, cap: int) -> ScimError:
    return bad_request(
        f"A group may have at most {cap} members (SCIM_MAX_GROUP_MEMBERS); this request would "
        f"leave it with {count}. Nothing was changed."
    )


def check_member_cap(old: GroupState | None, new: GroupState, cap: int) -> GroupState:
    """``new`` unless it has more members than ``cap`` and more than ``old`` had: a group
    already above a lowered cap may still shrink (removals are never refused)."""
    count = len(new.members)
    if count > cap and count > (len(old.members) if old is not None else 0):
        raise too_many_members(count, cap)
    return new


# ---------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Target:
    attr: str  # "displayname" | "externalid" | "members"
    filter: Node | None = None
    sub: str | None = None  # sub-attribute after a value filter, e.g. "display"


def parse_path(path: str) -> Target:
    text = path.strip()
    lowered = normalize_attr(text)
    offset = len(text) - len(lowered)
    if "[" in lowered:
        start = lowered.index("[")
        end = lowered.rfind("]")
        if end < start:
            raise invalid_path(f"Unbalanced '[' in path {path!r}")
        attr = lowered[:start]
        inner = text[offset + start + 1 : offset + end]
        rest = lowered[end + 1 :]
        flt = parse_filter(inner) if inner.strip() else None
        if flt is None:
            raise invalid_path(f"Empty filter in path {path!r}")
        sub = rest[1:] if rest.startswith(".") else None
        if rest and sub is None:
            raise invalid_path(f"Unexpected {rest!r} after ']' in path {path!r}")
        return _check(Target(attr, flt, sub), path)
    if "." in lowered:
        attr, sub = lowered.split(".", 1)
        return _check(Target(attr, None, sub), path)
    return _check(Target(lowered), path)


def _check(target: Target, path: str) -> Target:
    if target.attr not in ("displayname", "externalid", "members"):
        raise invalid_path(f"Unknown or unsupported attribute in path {path!r}")
    if target.attr != "members" and (target.filter is not None or target.sub is not None):
        raise invalid_path(f"{path!r}: only 'members' is multi-valued")
    if target.sub is not None and target.sub not in ("value", "display", "$ref", "type"):
        raise invalid_path(f"Unknown sub-attribute in path {path!r}")
    return target


# --------------------------------------------------------------------------------- values


def require_text(value: Any, what: str, missing: str, allow_empty: bool = False) -> str:
    """``value`` when it is a string of at most 256 characters (non-blank unless
    ``allow_empty``); else 400 with ``missing`` or a length message naming ``what``."""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise bad_request(missing)
    if len(value) > 256:
        raise bad_request(f"{what} is longer than 256 characters")
    return value


def _string(value: Any, what: str, allow_empty: bool = False) -> str:
    # Entra sometimes wraps single values: [{"value": "x"}]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and "value" in value[0]:
        value = value[0]["value"]
    return require_text(value, f"'{what}'", f"'{what}' must be a non-empty string", allow_empty)


def parse_members(value: Any) -> dict[str, str | None]:
    """Member objects → ordered {value: display}. Accepts one object or a list."""
    items = value if isinstance(value, list) else [value]
    out: dict[str, str | None] = {}
    for item in items:
        if not isinstance(item, dict):
            raise bad_request("Each member must be an object with a 'value'")
        lowered = {k.lower(): v for k, v in item.items()}
        member = require_text(
            lowered.get("value"), "A member 'value'", "Each member needs a non-empty string 'value'"
        )
        display = lowered.get("display")
        if display is not None and not isinstance(display, str):
            raise bad_request("A member 'display' must be a string")
        out[member] = display[:256] if isinstance(display, str) else None
    return out


def _member_json(value: str, display: str | None) -> dict[str, Any]:
    """A member as a value filter sees it (stored form plus its SCIM ``type``)."""
    return member_json(value, display) | {"type": "User"}


@dataclass
class _Budget:
    """Member checks left for filters that need a scan (bounded work per request)."""

    left: int = MAX_SCANNED_MEMBERS

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise bad_request(
                "This PATCH filters members by something other than 'value' too often for a group "
                'this size; address members as members[value eq "<id>"]',
                "tooMany",
            )


def _select(state: GroupState, flt: Node, budget: _Budget) -> list[str]:
    """Member values the filter selects: from the member index (the dict keyed by value)
    when the filter pins ``value eq``, else by a scan charged to ``budget``."""

    def by_value(attr: str, value: str) -> set[str] | None:
        if attr != "value":
            return None
        return {value} if value in state.members else set()

    found = candidates(flt, by_value)
    if found is None:
        budget.spend(len(state.members))
    pool: Iterable[str] = state.members if found is None else sorted(found)
    members = state.members
    return [v for v in pool if matches(flt, _member_json(v, members[v]), _CASE_EXACT)]


# ------------------------------------------------------------------------------ applying


def apply_operations(state: GroupState, ops: list[Operation], resource_id: str) -> GroupState:
    """Apply every operation to a copy of ``state``; raise a ScimError on the first bad one."""
    new = state.copy()
    budget = _Budget()
    for op in ops:
        if op.path is None:
            _apply_no_path(new, op, resource_id, budget)
        else:
            _apply_path(new, op, parse_path(op.path), budget)
    return new


def _apply_no_path(state: GroupState, op: Operation, resource_id: str, budget: _Budget) -> None:
    if not isinstance(op.value, dict):
        raise bad_request(f"'{op.op}' without a path needs an object value")
    for key, value in op.value.items():
        attr = normalize_attr(key)
        if attr in _IGNORED_TOP_LEVEL:
            if attr == "id" and value != resource_id:
                raise mutability("'id' is read-only and cannot be changed")
            continue
        if attr not in ("displayname", "externalid", "members"):
            raise invalid_path(f"Unknown attribute {key!r}")
        _apply_path(state, Operation(op.op, None, value), Target(attr), budget)


def _apply_path(state: GroupState, op: Operation, target: Target, budget: _Budget) -> None:
    if target.attr == "displayname":
        if op.op == "remove":
            raise mutability("'displayName' is required and cannot be removed")
        state.display_name = _string(op.value, "displayName")
        return
    if target.attr == "externalid":
        if op.op == "remove":
            state.external_id = None
        else:
            state.external_id = _string(op.value, "externalId")
        return
    _apply_members(state, op, target, budget)


def _apply_members(state: GroupState, op: Operation, target: Target, budget: _Budget) -> None:
    if target.filter is None and target.sub is not None:
        raise invalid_path('Use a value filter to address one member, e.g. members[value eq "id"]')
    if target.filter is None:
        if op.op == "add":
            for value, display in parse_members(op.value).items():
                if value not in state.members or display is not None:
                    state.members[value] = display if display is not None else state.members.get(value)
        elif op.op == "replace":
            state.members = parse_members(op.value) if op.value not in (None, []) else {}
        elif op.value in (None, []):  # remove without value: all members
            state.members = {}
        else:  # Entra: remove these members only
            for value in parse_members(op.value):
                state.members.pop(value, None)
        return
    selected = _select(state, target.filter, budget)
    if op.op == "remove":  # removing what is not there is a no-op (IdPs rely on it)
        if target.sub is not None:
            if target.sub != "display":
                raise mutability(f"members.{target.sub} cannot be removed")
            for value in selected:
                state.members[value] = None
            return
        for value in selected:
            del state.members[value]
        return
    # add/replace on members[filter] (optionally .display)
    if target.sub is not None and target.sub != "display":
        raise mutability(f"members.{target.sub} is immutable")
    if not selected and op.op == "replace":  # RFC 7644 §3.5.2.3
        raise no_target("No member matches the filter in the path")
    if target.sub == "display":
        for value in selected:
            state.members[value] = (
                None if op.value is None else _string(op.value, "display", allow_empty=True)
            )
        return
    replacement = parse_members(op.value)
    for value in selected:
        del state.members[value]
    state.members.update(replacement)
