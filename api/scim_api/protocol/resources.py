"""SCIM Group/User JSON ↔ the ScimGroup/ScimUser custom resources (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from scim_core import constants as c
from scim_core.members import member_json

from ..errors import bad_request, invalid_syntax
from .group_patch import GroupState, parse_members, require_text

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Entra ID sends this extension on Groups; it carries nothing we store.
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
GROUP_SCHEMAS_ACCEPTED = {GROUP_SCHEMA.lower(), ADSCIM_GROUP.lower()}
LAST_MODIFIED = f"{c.GROUP}/last-modified"
_GROUP_KEYS = {"schemas", "id", "meta", "externalid", "displayname", "members"}


def etag(obj: dict[str, Any], shards: Sequence[dict[str, Any]] = ()) -> str:
    """Weak ETag from the generations: it changes with the SCIM-visible spec only (a
    large group's member shards count too; shards are never removed while it lives)."""
    generation = obj["metadata"].get("generation", 1)
    if not shards:
        return f'W/"{generation}"'
    return f'W/"{generation}.{sum(s["metadata"].get("generation", 1) for s in shards)}"'


def _meta(
    obj: dict[str, Any], resource_type: str, location: str, shards: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    md = obj["metadata"]
    created = md.get("creationTimestamp")
    stamps = [(o["metadata"].get("annotations") or {}).get(LAST_MODIFIED) for o in (obj, *shards)]
    return {
        "resourceType": resource_type,
        "created": created,
        "lastModified": max((s for s in stamps if s), default=created),
        "location": location,
        "version": etag(obj, shards),
    }


def group_state(spec: dict[str, Any]) -> GroupState:
    return GroupState(
        display_name=spec.get("displayName", ""),
        external_id=spec.get("externalId"),
        members={m["value"]: m.get("display") for m in spec.get("members") or []},
    )


def group_spec(state: GroupState) -> dict[str, Any]:
    spec: dict[str, Any] = {"displayName": state.display_name}
    if state.external_id is not None:
        spec["externalId"] = state.external_id
    spec["members"] = [member_json(v, d) for v, d in state.members.items()]
    return spec


def _head(schema: str, rid: str, spec: dict[str, Any]) -> dict[str, Any]:
    """What every resource starts with: its schema, id and (when set) externalId."""
    out: dict[str, Any] = {"schemas": [schema], "id": rid}
    if spec.get("externalId") is not None:
        out["externalId"] = spec["externalId"]
    return out


def group_resource(
    obj: dict[str, Any],
    base_url: str,
    members: list[dict[str, Any]] | None,
    shards: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """SCIM JSON of a group; ``members`` (inline + shards) or None to leave them out."""
    spec = obj.get("spec") or {}
    gid = obj["metadata"]["name"]
    out = _head(GROUP_SCHEMA, gid, spec)
    out["displayName"] = spec.get("displayName", "")
    if members is not None:
        out["members"] = [
            {
                "value": m["value"],
                **({"display": m["display"]} if m.get("display") is not None else {}),
                "$ref": f"{base_url}/Users/{quote(m['value'], safe='')}",
                "type": "User",
            }
            for m in members
        ]
    out["meta"] = _meta(obj, "Group", f"{base_url}/Groups/{gid}", shards)
    return out


def parse_group_body(body: Any) -> GroupState:
    """Validate a POST/PUT Group body; read-only ``id``/``meta`` are ignored."""
    if not isinstance(body, dict):
        raise invalid_syntax("Group body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None:
        if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
            raise invalid_syntax("'schemas' must be a list of URNs")
        unknown = [s for s in schemas if s.lower() not in GROUP_SCHEMAS_ACCEPTED]
        if unknown:
            raise invalid_syntax(f"Unsupported schema {unknown[0]!r} for a Group")
        if GROUP_SCHEMA.lower() not in {s.lower() for s in schemas}:
            raise invalid_syntax(f"'schemas' must contain {GROUP_SCHEMA}")
    for key in body:
        if key.lower() not in _GROUP_KEYS and key.lower() not in GROUP_SCHEMAS_ACCEPTED:
            raise invalid_syntax(f"Unknown attribute {key!r} for a Group")
    lowered = {k.lower(): v for k, v in body.items()}
    display = require_text(
        lowered.get("displayname"),
        "'displayName'",
        "'displayName' is required and must be a non-empty string",
    )
    external = lowered.get("externalid")
    if external is not None and (not isinstance(external, str) or len(external) > 256):
        raise bad_request("'externalId' must be a string of at most 256 characters")
    members = lowered.get("members")
    if members is not None and not isinstance(members, list):
        raise bad_request("'members' must be a list")
    return GroupState(display, external, parse_members(members) if members else {})


def user_resource(
    obj: dict[str, Any], base_url: str, groups: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    uid = obj["metadata"]["name"]
    out = _head(USER_SCHEMA, uid, spec)
    out["userName"] = spec.get("userName", "")
    for key in ("displayName", "name", "emails"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    out["active"] = bool(spec.get("active", True))
    if groups is not None:
        out["groups"] = [
            {"value": gid, "display": name, "$ref": f"{base_url}/Groups/{gid}"} for gid, name in groups
        ]
    out["meta"] = _meta(obj, "User", f"{base_url}/Users/{uid}")
    return out
