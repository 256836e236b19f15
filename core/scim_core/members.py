"""Group members as stored: the first ones inline in the ScimGroup, the rest in
ScimMemberShards named ``<group>-<n>``. One assembly order for API and operator: inline
first, then shards by numeric suffix (``g-2`` before ``g-10``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Member = dict[str, Any]


def member_json(value: str, display: str | None = None) -> Member:
    """A stored member: ``{"value": id}`` plus ``display`` only when there is one."""
    return {"value": value, "display": display} if display is not None else {"value": value}


def shard_order(name: str) -> tuple[int, str]:
    """Sort key of a shard name: its numeric suffix, then the name (for odd names)."""
    tail = name.rsplit("-", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (0, name)


def _members(obj: Mapping[str, Any] | None) -> list[Member]:
    return list(((obj or {}).get("spec") or {}).get("members") or [])


def assemble_members(group: Mapping[str, Any] | None, shards: Iterable[Mapping[str, Any]]) -> list[Member]:
    """Every member of ``group``: inline first, then each shard's in :func:`shard_order`."""
    members = _members(group)
    for shard in sorted(shards, key=lambda s: shard_order(str(s["metadata"]["name"]))):
        members += _members(shard)
    return members
