"""Group members as stored: the first ones inline in the ScimGroup, the rest in
ScimMemberShards named ``<group>-<n>``. One assembly order for API and operator: inline
first, then shards by numeric suffix (``g-2`` before ``g-10``)."""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterable, Mapping
from itertools import compress
from operator import itemgetter
from typing import Any

import orjson

Member = dict[str, Any]
#: A member as a cache shares it: its value (no display), or ``(value, display)``.
MemberKey = str | tuple[str, str]


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
    """A ScimMemberShard's ``spec.packedMembers``: one JSON string, flat
    ``[value, display-or-null, value, display-or-null, …]``, that the API server stores without
    walking each member, about 5x cheaper per write than the same members as a list
    (docs/benchmarks.md, "Profiles"). Flat, so decoding creates one list and strings, not a
    list per member: the garbage collector has nothing per member to track."""
    return orjson.dumps([x for m in members for x in (m["value"], m.get("display"))]).decode()


def unpack_members(text: str, shared: dict[MemberKey, Member] | None = None) -> list[Member]:
    """The members :func:`pack_members` packed. Only the API writes shards; a hand-edited one
    that does not parse (or is not a flat list of pairs) counts as no member, and a pair that
    is not a string value with a string or null display is left out: it grants nothing (never
    a crash of a watch), and the group's next write replaces the shard whole.

    With ``shared`` (a cache's :func:`member_key` -> member dict), each member is the one
    dict ``shared`` holds for it (added when new), so equal members across objects and
    events are one object; when no member has a display, by C-level lookups only: a cache
    decodes a 5,000-member shard on every watch event, on its event loop."""
    try:
        entries = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, list) or len(entries) % 2:
        return []
    values, displays = entries[0::2], entries[1::2]
    if not (set(map(type, values)) <= {str} and set(map(type, displays)) <= {str, type(None)}):
        pairs = [(v, d) for v, d in zip(values, displays, strict=True) if _readable(v, d)]  # hand-edited
        values, displays = [v for v, _ in pairs], [d for _, d in pairs]
    # a member without display is keyed by its value itself: no object made per member
    plain = displays.count(None) == len(displays)
    keys: list[MemberKey] = values if plain else list(map(_key, values, displays))
    if shared is None:
        return list(map(_from_key, keys))
    found = list(map(shared.get, keys))
    if None in found:  # members not seen before: added once, strings interned
        for key in set(compress(keys, map(operator.not_, found))):
            shared[key] = _from_key(key, sys.intern)
        found = list(map(shared.__getitem__, keys))
    return found  # type: ignore[return-value]  # no None left


def _readable(value: Any, display: Any) -> bool:
    return isinstance(value, str) and (display is None or isinstance(display, str))


def _key(value: str, display: str | None) -> MemberKey:
    return value if display is None else (value, display)


def _from_key(key: MemberKey, intern: Callable[[str], str] = str) -> Member:
    """The member a key stands for (strings interned when a cache holds it for good)."""
    if isinstance(key, str):
        return {"value": intern(key)}
    return {"value": intern(key[0]), "display": intern(key[1])}


def member_key(member: Mapping[str, Any]) -> MemberKey | None:
    """What a cache shares equal members by: the value for ``{"value": …}``, the pair for
    ``{"value": …, "display": …}`` (strings, keys in that order); None for a member of another
    shape (kept as it is)."""
    keys = tuple(member)
    if keys == ("value",) and isinstance(value := member["value"], str):
        return value
    if keys == ("value", "display") and all(isinstance(v, str) for v in member.values()):
        return (member["value"], member["display"])
    return None


def shared_members(members: list[Any], shared: dict[MemberKey, Member]) -> list[Any]:
    """``members`` as the dicts ``shared`` holds for them (added when new); members of another
    shape as they are. When all are ``{"value": …}`` and known already (most of a group's
    members on each of its events), by C-level lookups only, no Python loop per member."""
    if set(map(type, members)) <= {dict} and set(map(len, members)) <= {1}:
        try:  # one key each, and it is "value" (no tuple of keys made per member)
            found = list(map(shared.get, map(itemgetter("value"), members)))
        except (KeyError, TypeError):  # another key, an unhashable value (hand-edited): the slow path
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
        found = shared[key] = _from_key(key, sys.intern)
    return found


def unpacked(obj: dict[str, Any], shared: dict[MemberKey, Member] | None = None) -> dict[str, Any]:
    """``obj`` with a packed shard's members moved into ``spec.members`` (after any listed
    there: a shard written before packing), so every reader sees one shape. In place;
    ``shared`` as for :func:`unpack_members`."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(packed := spec.pop("packedMembers", None), str):
        spec["members"] = list(spec.get("members") or []) + unpack_members(packed, shared)
    return obj
