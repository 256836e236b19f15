"""Users are read-only here except ``active``: PATCH and PUT may change that and nothing
else (400 ``mutability``). Entra without the aadOptscim062020 flag sends ``"False"`` as a
string; with it, a real boolean. Re-sending an unchanged read-only value is not a change."""

from __future__ import annotations

from typing import Any

from ..errors import bad_request, mutability
from .filters import normalize_attr
from .group_patch import Operation

_IGNORED = {"schemas", "meta", "id"}


def parse_active(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_request("'active' must be a boolean")


def _same(current: dict[str, Any], attr: str, value: Any) -> bool:
    for key, existing in current.items():
        if key.lower() == attr:
            return bool(existing == value)
    return value is None


def active_after_patch(current: dict[str, Any], ops: list[Operation]) -> bool:
    """The user's ``active`` after the operations; anything else changing is refused.

    ``current`` is the SCIM JSON of the user."""
    active = bool(current.get("active", True))
    for op in ops:
        pairs: list[tuple[str, Any]]
        if op.path is None:
            if not isinstance(op.value, dict):
                raise bad_request(f"'{op.op}' without a path needs an object value")
            pairs = [(normalize_attr(k), v) for k, v in op.value.items()]
        else:
            pairs = [(normalize_attr(op.path), op.value)]
        for attr, value in pairs:
            if attr in _IGNORED and (attr != "id" or value == current.get("id")):
                continue
            if attr == "active":
                if op.op == "remove":
                    raise mutability("'active' cannot be removed")
                active = parse_active(value)
            elif op.op != "remove" and _same(current, attr, value):
                continue
            else:
                raise mutability(f"Only 'active' may change on a User; {attr!r} is read-only here")
    return active


def active_after_put(current: dict[str, Any], body: Any) -> bool:
    if not isinstance(body, dict):
        raise bad_request("User body must be a JSON object")
    for key, value in body.items():
        attr = normalize_attr(key)
        if attr in _IGNORED or attr == "active" or attr.startswith("urn:"):
            continue
        if not _same(current, attr, value):
            raise mutability(f"Only 'active' may change on a User; {key!r} differs")
    return parse_active(body["active"]) if "active" in body else bool(current.get("active", True))
