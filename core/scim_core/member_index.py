"""Which groups list a member: one index for the API's directory and the operator's cache.

A group's members live in several objects (the ScimGroup, its ScimMemberShards), and each
watch event says only what one object holds now. Their writes are concurrent, so a member
moving from one object to another is a gain in one event and a loss in another, in either
order. Counting, per group, how many of its objects list the member keeps the index exact in
both orders, and an event costs only the values that changed in its object: never the
group's other objects (a 50,000-member group is ten 5,000-member shards)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Set
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

    A plain dict for readers (``index.get(value, ())`` iterates the member's groups; its
    values hold only strings and ints, which the garbage collector does not track, unlike a
    set per member); only :meth:`move` changes it."""

    __slots__ = ()

    def move(self, group: str, before: Set[str], after: Set[str]) -> tuple[list[str], list[str]]:
        """One object of ``group`` went from listing ``before`` to ``after`` (an object that
        is new or gone lists :data:`NO_MEMBERS`). Returns the members the group as a whole
        gained and lost: a member another of its objects still lists is in neither. One
        loop per direction, no call per member: a list of 100,000 groups goes through here."""
        joined: list[str] = []
        left: list[str] = []
        get = self.get
        for value in after - before if before else after:
            groups = get(value)
            if groups is None:
                self[value] = {group: 1}
                joined.append(value)
            elif group in groups:
                groups[group] += 1  # another object of the group lists it too
            else:
                groups[group] = 1
                joined.append(value)
        for value in before - after if after else before:
            groups = get(value)
            if groups is None or group not in groups:
                continue  # never linked: nothing to undo
            if groups[group] > 1:
                groups[group] -= 1  # another object of the group still lists it
            elif len(groups) > 1:
                del groups[group]
                left.append(value)
            else:
                del self[value]
                left.append(value)
        return joined, left

    def fill(self, groups: Iterable[tuple[str, Set[str]]]) -> None:
        """Groups the index does not hold yet loaded with their members, one object per
        group: what :meth:`move` of each from :data:`NO_MEMBERS` gives, in one loop over all
        members and without the gained lists (a list of 100,000 groups of 10, a page at a
        time as it arrives, before the API is ready). Only the caller knows a group is new
        (the index is by member): a table being built from a list (``Table.load``)."""
        get = self.get
        for group, values in groups:
            for value in values:
                linked = get(value)
                if linked is None:
                    self[value] = {group: 1}
                else:
                    linked[group] = 1

    def groups_of(self, value: str) -> Collection[str]:
        """The groups that list ``value`` (a view: copy it before changing the index)."""
        return self.get(value, {}).keys()
