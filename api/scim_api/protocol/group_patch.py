"""PATCH (RFC 7644 §3.5.2) for Groups, applied to an indexed form of the group.

Members are held as an insertion-ordered dict keyed by member value, so adding 100
members to a 50,000-member group is 100 dict operations, not a model rebuild. All
operations apply to a copy: any error leaves the stored group untouched (atomicity).

IdP quirks handled here, each pinned by a test:
- operation names in any case (Entra ``Add``/``Replace``/``Remove``);
- ``{"op":"Remove","path":"members","value":[{"value":"id"}]}`` removes only those members;
- ``members[value eq "id"]`` value-path removal (Entra aadOptscim062020, Okta);
- no-path ``replace`` whose object carries the read-only ``id`` (Okta) or ``schemas``/``meta``;
- ``add`` on the single-valued ``externalId`` (Entra) acts as replace;
- ``$ref: null`` in member values; adding an existing member or removing an absent one is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import bad_request, invalid_path, invalid_syntax, mutability, no_target
from .filters import Node, matches, normalize_attr, parse_filter

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000
_IGNORED_TOP_LEVEL = {"id", "schemas", "meta"}


@dataclass
class GroupState:
    """A group as the PATCH logic sees it."""

    display_name: str
    external_id: str | None = None
    members: dict[str, str | None] = field(default_factory=dict)  # value -> display

    def copy(self) -> GroupState:
        return GroupState(self.display_name, self.external_id, dict(self.members))


@dataclass(frozen=True)
class Operation:
    op: str  # "add" | "remove" | "replace"
    path: str | None
    value: Any


def parse_patch_request(body: Any, resource_id: str | None = None) -> list[Operation]:
    """Validate a PatchOp body; tolerate a top-level ``id`` (Entra) and extra op keys."""
    if not isinstance(body, dict):
        raise invalid_syntax("PATCH body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas):
        raise invalid_syntax(f"PATCH body 'schemas' must contain {PATCH_OP_SCHEMA}")
    ops = body.get("Operations", body.get("operations"))
    if ops is None:
        raise invalid_syntax("PATCH body needs an 'Operations' list")
    if not isinstance(ops, list):
        raise invalid_syntax("'Operations' must be a list")
    if len(ops) > MAX_OPERATIONS:
        raise bad_request(f"At most {MAX_OPERATIONS} operations per PATCH", "tooMany")
    out: list[Operation] = []
    for i, raw in enumerate(ops):
        if not isinstance(raw, dict):
            raise invalid_syntax(f"Operation {i} must be an object")
        op = raw.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "remove", "replace"):
            raise invalid_syntax(f"Operation {i}: 'op' must be add, remove or replace")
        path = raw.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise invalid_path(f"Operation {i}: 'path' must be a non-empty string")
        if op.lower() != "remove" and "value" not in raw:
            raise invalid_syntax(f"Operation {i}: '{op}' needs a 'value'")
        if op.lower() == "remove" and path is None:
            raise no_target(f"Operation {i}: 'remove' needs a 'path'")
        out.append(Operation(op.lower(), path.strip() if isinstance(path, str) else None, raw.get("value")))
    return out


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


def _string(value: Any, what: str, allow_empty: bool = False) -> str:
    # Entra sometimes wraps single values: [{"value": "x"}]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and "value" in value[0]:
        value = value[0]["value"]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise bad_request(f"'{what}' must be a non-empty string")
    if len(value) > 256:
        raise bad_request(f"'{what}' is longer than 256 characters")
    return value


def parse_members(value: Any) -> dict[str, str | None]:
    """Member objects → ordered {value: display}. Accepts one object or a list."""
    items = value if isinstance(value, list) else [value]
    out: dict[str, str | None] = {}
    for item in items:
        if not isinstance(item, dict):
            raise bad_request("Each member must be an object with a 'value'")
        lowered = {k.lower(): v for k, v in item.items()}
        member = lowered.get("value")
        if not isinstance(member, str) or not member.strip():
            raise bad_request("Each member needs a non-empty string 'value'")
        if len(member) > 256:
            raise bad_request("A member 'value' is longer than 256 characters")
        display = lowered.get("display")
        if display is not None and not isinstance(display, str):
            raise bad_request("A member 'display' must be a string")
        out[member] = display[:256] if isinstance(display, str) else None
    return out


def _member_json(value: str, display: str | None) -> dict[str, Any]:
    return {"value": value, "display": display} if display is not None else {"value": value}


def _select(state: GroupState, flt: Node) -> list[str]:
    return [v for v, d in state.members.items() if matches(flt, _member_json(v, d) | {"type": "User"})]


# ------------------------------------------------------------------------------ applying


def apply_operations(state: GroupState, ops: list[Operation], resource_id: str) -> GroupState:
    """Apply every operation to a copy of ``state``; raise a ScimError on the first bad one."""
    new = state.copy()
    for op in ops:
        if op.path is None:
            _apply_no_path(new, op, resource_id)
        else:
            _apply_path(new, op, parse_path(op.path))
    return new


def _apply_no_path(state: GroupState, op: Operation, resource_id: str) -> None:
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
        _apply_path(state, Operation(op.op, None, value), Target(attr))


def _apply_path(state: GroupState, op: Operation, target: Target) -> None:
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
    _apply_members(state, op, target)


def _apply_members(state: GroupState, op: Operation, target: Target) -> None:
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
    selected = _select(state, target.filter)
    if op.op == "remove":
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
    if target.sub == "display":
        for value in selected:
            state.members[value] = (
                None if op.value is None else _string(op.value, "display", allow_empty=True)
            )
        return
    if target.sub is not None:
        raise mutability(f"members.{target.sub} is immutable")
    replacement = parse_members(op.value)
    if not selected and op.op == "replace":
        raise no_target("No member matches the filter in the path")
    for value in selected:
        del state.members[value]
    state.members.update(replacement)
