"""Group members as stored: the first ones inline in the ScimGroup, the rest in
ScimMemberShards named ``<group>-<n>``. One assembly order for API and operator: inline
first, then shards by numeric suffix (``g-2`` before ``g-10``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

Member = dict[str, Any]


def member_json(value: str, display: str | None = None) -> Member:
    """A stored member: ``{"value": id}`` plus ``display`` only when there is one."""
    return {"value": value, "display": display} if display is not None else {"value": value}


def shard_order(name: str) -> tuple[int, str]:
    """Sort key of a shard name: its numeric suffix, then the name (for odd names)."""
    tail = name.rsplit("-", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (0, name)


def _members(obj: Mapping[str, Any] | None) -> list[Member]:
    spec = (obj or {}).get("spec") or {}
    packed = spec.get("packedMembers")
    return list(spec.get("members") or []) + (unpack_members(packed) if isinstance(packed, str) else [])


def assemble_members(group: Mapping[str, Any] | None, shards: Iterable[Mapping[str, Any]]) -> list[Member]:
    """Every member of ``group``: inline first, then each shard's in :func:`shard_order`."""
    members = _members(group)
    for shard in sorted(shards, key=lambda s: shard_order(str(s["metadata"]["name"]))):
        members += _members(shard)
    return members


def pack_members(members: Iterable[Mapping[str, Any]]) -> str:
    """A ScimMemberShard's ``spec.packedMembers``: one JSON string (``[[value, display?], …]``)
    the API server stores without walking each member, about 5x cheaper per write than the
    same members as a list (docs/benchmarks.md, "Profiles")."""
    return orjson.dumps(
        [[m["value"]] if m.get("display") is None else [m["value"], m["display"]] for m in members]
    ).decode()


def unpack_members(text: str) -> list[Member]:
    """The members :func:`pack_members` packed. Only the API writes shards; a hand-edited one
    that does not parse, or an entry that is not ``[value]``/``[value, display]`` strings,
    counts as no member: it grants nothing (never a crash of a watch), and the group's next
    write replaces the shard whole."""
    try:
        entries = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        member_json(*entry)
        for entry in entries
        if isinstance(entry, list) and 1 <= len(entry) <= 2 and all(isinstance(x, str) for x in entry)
    ]


def unpacked(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with a packed shard's members moved into ``spec.members`` (after any listed
    there: a shard written before packing), so every reader sees one shape. In place."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(packed := spec.pop("packedMembers", None), str):
        spec["members"] = list(spec.get("members") or []) + unpack_members(packed)
    return obj
