"""The PatchOp request (RFC 7644 §3.5.2), shared by the Group and User PATCH engines.

Only the envelope lives here: the body's shape, operation names in any case (Entra sends
``Add``/``Replace``/``Remove``), a top-level ``id`` and extra keys tolerated (Entra test
payloads), and the cap on operations per request. What each operation means is up to the
resource's engine (``group_patch``, ``user_patch``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import bad_request, invalid_path, invalid_syntax, no_target

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: Most operations one PATCH may carry (more: 400 ``tooMany``).
MAX_OPERATIONS = 1000
_OPS = ("add", "remove", "replace")


@dataclass(frozen=True)
class Operation:
    """One operation, its name lowercased and its path stripped."""

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
    return [_operation(i, raw) for i, raw in enumerate(ops)]


def _operation(i: int, raw: Any) -> Operation:
    if not isinstance(raw, dict):
        raise invalid_syntax(f"Operation {i} must be an object")
    op = raw.get("op")
    if not isinstance(op, str) or op.lower() not in _OPS:
        raise invalid_syntax(f"Operation {i}: 'op' must be add, remove or replace")
    path = raw.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise invalid_path(f"Operation {i}: 'path' must be a non-empty string")
    if op.lower() != "remove" and "value" not in raw:
        raise invalid_syntax(f"Operation {i}: '{op}' needs a 'value'")
    if op.lower() == "remove" and path is None:
        raise no_target(f"Operation {i}: 'remove' needs a 'path'")
    return Operation(op.lower(), path.strip() if isinstance(path, str) else None, raw.get("value"))
