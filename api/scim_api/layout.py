"""Where a group's members are stored: inline in the ScimGroup while it is small, then in
ScimMemberShard objects, so no object nears etcd's size limit. Pure planning: from the
stored objects and the wanted member set, the JSON Patch (or create) for each object.

Placement keeps writes small: a batch of added members goes into the first object with
room for all of it (one write, so a typical PATCH stays atomic); removals touch only the
objects holding those members, each guarded by ``test`` ops on the values removed. The
member lists are atomic in the schema (cheaper for the API server), so nothing there refuses
a value stored twice: every append is guarded by the object's resourceVersion instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import eq, itemgetter, methodcaller, not_
from typing import Any

from scim_core.members import member_json

Member = dict[str, Any]

INLINE_MAX_MEMBERS = 1000
INLINE_MAX_BYTES = 200_000
SHARD_MAX_MEMBERS = 5000  # the CRD's maxItems
SHARD_MAX_BYTES = 700_000  # well under etcd's 1.5 MiB request limit, with headroom
_ABSENT = object()


def member_bytes(value: str, display: str | None) -> int:
    return len(value.encode()) + len((display or "").encode()) + 32


@dataclass
class Slot:
    """One stored object's member list (``name`` None is the ScimGroup itself)."""

    name: str | None
    members: list[Member]
    resource_version: str | None = None
    exists: bool = True

    @property
    def max_members(self) -> int:
        return INLINE_MAX_MEMBERS if self.name is None else SHARD_MAX_MEMBERS

    @property
    def max_bytes(self) -> int:
        return INLINE_MAX_BYTES if self.name is None else SHARD_MAX_BYTES


@dataclass
class SlotWrite:
    name: str | None
    create: bool = False
    ops: list[dict[str, Any]] = field(default_factory=list)  # JSON Patch (existing objects)
    members: list[Member] = field(default_factory=list)  # the object's members once written
    #: the whole object to PUT instead of ``ops`` (an existing shard rewritten whole: half
    #: the API server's work of a JSON Patch that replaces most of it)
    replace: dict[str, Any] | None = None


def _version_test(slot: Slot) -> dict[str, Any]:
    return {"op": "test", "path": "/metadata/resourceVersion", "value": slot.resource_version}


_display = methodcaller("get", "display")


def members_bytes(members: list[Member]) -> int:
    """:func:`member_bytes` summed over ``members``, by C-level calls (no Python loop per member)."""
    values = sum(map(len, map(str.encode, map(itemgetter("value"), members))))
    displays = sum(map(len, map(str.encode, filter(None, map(_display, members)))))
    return values + displays + 32 * len(members)


def plan_members(slots: list[Slot], wanted: dict[str, str | None], new_shard_name: Any) -> list[SlotWrite]:
    """Writes that make the union of ``slots`` equal ``wanted`` (value -> display).

    ``new_shard_name(i)`` names the i-th new shard needed (0-based). Linear in the number of
    members (it runs on every change of a 50,000-member group); the per-member passes are
    ``map``/``compress`` calls, no Python statement per member."""
    writes: dict[str | None, SlotWrite] = {}
    stored: set[str] = set()
    kept: dict[str | None, list[Member]] = {}
    for slot in slots:
        values = list(map(itemgetter("value"), slot.members))
        # a member stays where it is when wanted with the same display
        stays = list(map(eq, map(wanted.get, values, repeat(_ABSENT)), map(_display, slot.members)))
        keep = list(compress(slot.members, stays))
        stored.update(compress(values, stays))
        kept[slot.name] = keep
        if len(keep) == len(stays):
            continue
        removals = list(compress(range(len(stays)), map(not_, stays)))
        write = writes.setdefault(slot.name, SlotWrite(slot.name))
        write.members = keep
        if len(removals) > max(64, len(slot.members) // 2):
            write.ops.append(_version_test(slot))
            write.ops.append({"op": "replace", "path": "/spec/members", "value": keep})
        else:
            for i in reversed(removals):
                write.ops.append(
                    {"op": "test", "path": f"/spec/members/{i}/value", "value": slot.members[i]["value"]}
                )
                write.ops.append({"op": "remove", "path": f"/spec/members/{i}"})
    added = [
        member_json(v, d) for v, d in compress(wanted.items(), map(not_, map(stored.__contains__, wanted)))
    ]
    if not added:
        return list(writes.values())
    batch_bytes = members_bytes(added)
    for slot in slots:
        keep = kept[slot.name]
        if len(keep) + len(added) > slot.max_members:
            continue  # counted first: sizes are summed only for objects that may take the batch
        if members_bytes(keep) + batch_bytes <= slot.max_bytes:
            write = writes.setdefault(slot.name, SlotWrite(slot.name))
            write.members = keep + added
            replaced = any(op["path"] == "/spec/members" for op in write.ops)
            if replaced:
                write.ops[-1]["value"] = write.ops[-1]["value"] + added
            else:
                # the list is atomic, so the schema no longer refuses a duplicate value: an
                # append lands only on the version it was planned on (a racing writer that
                # added the same member makes this a conflict, re-planned on fresh objects)
                write.ops.insert(0, _version_test(slot))
                write.ops.extend({"op": "add", "path": "/spec/members/-", "value": m} for m in added)
            return list(writes.values())
    # no existing object has room for the whole batch: new shards, filled in order
    index = 0
    current: list[Member] = []
    current_bytes = 0
    for m in added:
        b = member_bytes(m["value"], m.get("display"))
        if current and (len(current) >= SHARD_MAX_MEMBERS or current_bytes + b > SHARD_MAX_BYTES):
            writes[new_shard_name(index)] = SlotWrite(new_shard_name(index), create=True, members=current)
            index += 1
            current, current_bytes = [], 0
        current.append(m)
        current_bytes += b
    writes[new_shard_name(index)] = SlotWrite(new_shard_name(index), create=True, members=current)
    return list(writes.values())
