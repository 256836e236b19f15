"""Users are owned by the workspace; over SCIM only ``active`` changes.

- PUT is how Okta's custom (App Integration Wizard) apps deactivate and reactivate: the
  whole user as Okta holds it (its own ``name``, ``emails``, ``locale``, ``externalId``,
  ``groups``, sometimes ``password``). Only ``active`` is applied; every other attribute
  is accepted and not applied (RFC 7644 §3.5.1 lets a server ignore read-only attributes
  on PUT), so a profile that differs never blocks a deactivation.
- PATCH names what it changes. A PATCH that sets ``active`` applies it, and any other
  attribute it changes is accepted and not applied, as for PUT: a deactivation must never be
  lost because an IdP (Entra with extra attribute mappings) sent it together with a profile
  change. A PATCH that changes other attributes and not ``active`` is 400 ``mutability``
  (it would change nothing, and the IdP's admin learns to drop the mapping); re-sending an
  unchanged read-only value is not a change.

Entra without the aadOptscim062020 flag sends ``"False"`` as a string; with it, a real
boolean."""

from __future__ import annotations

from typing import Any

from ..errors import bad_request, invalid_syntax, mutability
from .filters import normalize_attr
from .patch import Operation

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
    """The user's ``active`` after the operations.

    ``current`` is the SCIM JSON of the user. Other attributes changing are ignored when the
    request sets ``active``, refused (``mutability``) when it does not."""
    active = bool(current.get("active", True))
    sets_active = False
    read_only: str | None = None
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
                sets_active = True
            elif (op.op == "remove" or not _same(current, attr, value)) and read_only is None:
                read_only = attr
    if read_only is not None and not sets_active:
        raise mutability(f"Only 'active' may change on a User; {read_only!r} is read-only here")
    return active


def active_after_put(current: dict[str, Any], body: Any) -> bool:
    """The user's ``active`` after a PUT of ``body``: its ``active`` if it has one, else
    unchanged. Nothing else in the body is applied or compared."""
    if not isinstance(body, dict):
        raise invalid_syntax("User body must be a JSON object")
    for key, value in body.items():
        if normalize_attr(key) == "active":
            return parse_active(value)
    return bool(current.get("active", True))
