"""Which groups list a member: one index for the API's directory and the operator's cache.

A group's members live in several objects (the ScimGroup, its ScimMemberShards), and each
watch event says only what one object holds now. Their writes are concurrent, so a member
moving from one object to another is a gain in one event and a loss in another, in either
order. Counting, per group, how many of its objects list the member keeps the index exact in
both orders, and an event costs only the values that changed in its object: never the
group's other objects (a 50,000-member group is ten 5,000-member shards)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Set
from operator import itemgetter
from typing import Any

_VALUE = itemgetter("value")
NO_MEMBERS: frozenset[str] = frozenset()


def member_values(obj: Mapping[str, Any] | None) -> set[str]:
    """The distinct member values one object (a ScimGroup or a shard, unpacked) lists; a
    member without a value (hand-edited; the CRD requires one) lists none."""
    members = ((obj or {}).get("spec") or {}).get("members") or ()
    try:
        return set(map(_VALUE, members))  # in C: a shard event decodes 5,000 of them
    except (KeyError, TypeError):
        return {m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)}


class MemberIndex(dict[str, dict[str, int]]):
    """member value -> {group id: how many of that group's objects list the member}.

    A plain dict for readers (``index.get(value, ())`` iterates the member's groups); only
    :meth:`move` (or :meth:`link` and :meth:`unlink`) changes it."""

    __slots__ = ()

    def link(self, value: str, group: str) -> bool:
        """One more object of ``group`` lists ``value``; True when the group gained it."""
        groups = self.get(value)
        if groups is None:
            self[value] = {group: 1}
            return True
        held = groups.get(group, 0)
        groups[group] = held + 1
        return not held

    def unlink(self, value: str, group: str) -> bool:
        """One object of ``group`` no longer lists ``value``; True when the group lost it
        (no object of it lists the member any more). Unknown pairs are ignored."""
        groups = self.get(value)
        if groups is None or group not in groups:
            return False
        if groups[group] > 1:
            groups[group] -= 1
            return False
        del groups[group]
        if not groups:
            del self[value]
        return True

    def move(self, group: str, before: Set[str], after: Set[str]) -> tuple[list[str], list[str]]:
        """One object of ``group`` went from listing ``before`` to ``after`` (an object that
        is new or gone lists :data:`NO_MEMBERS`). Returns the members the group as a whole
        gained and lost: a member another of its objects still lists is in neither."""
        joined = [v for v in (after - before if before else after) if self.link(v, group)]
        left = [v for v in (before - after if after else before) if self.unlink(v, group)]
        return joined, left

    def groups_of(self, value: str) -> Collection[str]:
        """The groups that list ``value`` (a view: copy it before changing the index)."""
        return self.get(value, {}).keys()
