"""Group members as stored: the first ones inline in the ScimGroup, the rest in
ScimMemberShards named ``<group>-<n>``. One assembly order for API and operator: inline
first, then shards by numeric suffix (``g-2`` before ``g-10``)."""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterable, Mapping
from itertools import chain, compress
from typing import Any

import orjson

Member = dict[str, Any]
#: A member as a cache shares it and as it is packed: ``(value,)`` or ``(value, display)``.
MemberKey = tuple[str, ...]
_KEYS = ("value", "display")
#: The member shapes a key stands for (keys in this order, string values).
_SHAPES = {_KEYS[:1], _KEYS}


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


def unpack_members(text: str, shared: dict[MemberKey, Member] | None = None) -> list[Member]:
    """The members :func:`pack_members` packed. Only the API writes shards; a hand-edited one
    that does not parse, or an entry that is not ``[value]``/``[value, display]`` strings,
    counts as no member: it grants nothing (never a crash of a watch), and the group's next
    write replaces the shard whole.

    With ``shared`` (a cache's :func:`member_key` -> member dict), each member is the one
    dict ``shared`` holds for it (added when new), so equal members across objects and
    events are one object. Built from C-level ``map``/``zip`` calls, not a Python loop per
    member: a cache decodes a 5,000-member shard on every watch event, on its event loop."""
    try:
        entries = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, list):
        return []
    if not _well_formed(entries):  # hand-edited: the readable entries only (rare, slow path)
        entries = [e for e in entries if _well_formed([e])]
    keys: list[MemberKey] = list(map(tuple, entries))
    if shared is None:
        return [dict(zip(_KEYS, key, strict=False)) for key in keys]  # (value,) pairs with one
    found = list(map(shared.get, keys))
    if None in found:  # members not seen before: added once, strings interned
        for key in set(compress(keys, map(operator.not_, found))):
            shared[key] = _interned(key)
        found = list(map(shared.__getitem__, keys))
    return found  # type: ignore[return-value]  # no None left


def _interned(key: MemberKey) -> Member:
    """The member a key stands for, its strings interned (a cache holds it for good)."""
    return dict(zip(_KEYS, map(sys.intern, key), strict=False))


def _well_formed(entries: list[Any]) -> bool:
    """Every entry a ``[value]`` or ``[value, display]`` list of strings (C-level checks)."""
    return (
        set(map(type, entries)) <= {list}
        and set(map(len, entries)) <= {1, 2}
        and set(map(type, chain.from_iterable(entries))) <= {str}
    )


def member_key(member: Mapping[str, Any]) -> MemberKey | None:
    """What a cache shares equal members by, the same as their packed entry: ``(value,)``
    or ``(value, display)``; None for a member of another shape (kept as it is)."""
    key = tuple(member.values())
    if tuple(member) in _SHAPES and all(isinstance(v, str) for v in key):
        return key
    return None


def shared_members(members: list[Any], shared: dict[MemberKey, Member]) -> list[Any]:
    """``members`` as the dicts ``shared`` holds for them (added when new); members of another
    shape as they are. When every one is known already (most of a group's members on each of
    its events), by C-level lookups only, no Python loop per member."""
    if set(map(type, members)) <= {dict} and set(map(tuple, members)) <= _SHAPES:
        try:
            found = list(map(shared.get, map(tuple, map(dict.values, members))))
        except TypeError:  # an unhashable value (a hand-edited member): the slow path
            found = [None]
        if None not in found:
            return found
    return [_shared_member(m, shared) if isinstance(m, dict) else m for m in members]


def _shared_member(member: Member, shared: dict[MemberKey, Member]) -> Member:
    key = member_key(member)
    if key is None:
        return member
    found = shared.get(key)
    if found is None:
        found = shared[key] = _interned(key)
    return found


def unpacked(obj: dict[str, Any], shared: dict[MemberKey, Member] | None = None) -> dict[str, Any]:
    """``obj`` with a packed shard's members moved into ``spec.members`` (after any listed
    there: a shard written before packing), so every reader sees one shape. In place;
    ``shared`` as for :func:`unpack_members`."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(packed := spec.pop("packedMembers", None), str):
        spec["members"] = list(spec.get("members") or []) + unpack_members(packed, shared)
    return obj
