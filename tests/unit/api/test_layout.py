"""Member placement across the ScimGroup and its shards (pure planning)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.layout import (
    INLINE_MAX_BYTES,
    INLINE_MAX_MEMBERS,
    SHARD_MAX_MEMBERS,
    Slot,
    SlotWrite,
    member_bytes,
    plan_members,
)
from scim_core.members import member_json


def _slots(inline: int, *shards: int) -> list[Slot]:
    out = [Slot(None, [{"value": f"i{k}"} for k in range(inline)], "1")]
    for n, size in enumerate(shards, start=1):
        out.append(Slot(f"g-{n}", [{"value": f"s{n}-{k}"} for k in range(size)], str(n + 1)))
    return out


def _wanted(slots: list[Slot]) -> dict[str, str | None]:
    return {m["value"]: m.get("display") for s in slots for m in s.members}


def _apply(slots: list[Slot], writes: list[SlotWrite]) -> dict[str, list[dict[str, Any]]]:
    """What the API server would store after the writes (JSON Patch subset used here)."""
    stored = {s.name or "": [dict(m) for m in s.members] for s in slots}
    for w in writes:
        key = w.name or ""
        if w.create:
            stored[key] = list(w.members)
            continue
        for op in w.ops:
            if op["op"] == "test":
                if op["path"].startswith("/spec/members/"):
                    assert stored[key][int(op["path"].split("/")[3])]["value"] == op["value"]
            elif op["op"] == "remove":
                del stored[key][int(op["path"].rsplit("/", 1)[1])]
            elif op["path"] == "/spec/members/-":
                stored[key].append(op["value"])
            else:
                stored[key] = list(op["value"])
    return stored


def _values(stored: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {m["value"] for ms in stored.values() for m in ms}


@pytest.mark.parametrize(
    ("inline", "shards", "added", "target"),
    [
        (0, (), 10, None),  # room inline
        (INLINE_MAX_MEMBERS - 5, (), 5, None),
        (INLINE_MAX_MEMBERS - 5, (), 6, "g-1"),  # no room anywhere: a new shard
        (INLINE_MAX_MEMBERS, (10,), 100, "g-1"),  # first object with room for the whole batch
        (INLINE_MAX_MEMBERS, (SHARD_MAX_MEMBERS, 0), 1, "g-2"),
    ],
)
def test_a_batch_of_additions_goes_into_one_object(
    inline: int, shards: tuple[int, ...], added: int, target: str | None
) -> None:
    slots = _slots(inline, *shards)
    wanted = _wanted(slots) | {f"n{k}": None for k in range(added)}
    writes = plan_members(slots, wanted, lambda i: f"g-{len(shards) + 1 + i}")
    assert [w.name for w in writes] == [target]
    assert _values(_apply(slots, writes)) == set(wanted)


@pytest.mark.parametrize("removed", [1, 64, 500, 501])
def test_removals_touch_only_their_object(removed: int) -> None:
    slots = _slots(10, 1000)
    gone = {f"s1-{k}" for k in range(removed)}
    wanted = {v: d for v, d in _wanted(slots).items() if v not in gone}
    writes = plan_members(slots, wanted, lambda i: "unused")
    assert [w.name for w in writes] == ["g-1"]
    guarded = writes[0].ops[0]
    # few removals: each guarded by a test on its value; over half: one replace guarded by version
    expected = "/metadata/resourceVersion" if removed > 500 else f"/spec/members/{removed - 1}/value"
    assert guarded["op"] == "test" and guarded["path"] == expected
    assert _values(_apply(slots, writes)) == set(wanted)


def test_removal_and_addition_in_one_object_keep_the_replace() -> None:
    slots = _slots(500)
    wanted = {f"i{k}": None for k in range(100)} | {"new": "New"}
    writes = plan_members(slots, wanted, lambda i: "unused")
    assert [w.name for w in writes] == [None]
    assert _apply(slots, writes)[""][-1] == {"value": "new", "display": "New"}
    assert _values(_apply(slots, writes)) == set(wanted)


def test_a_changed_display_is_rewritten() -> None:
    slots = [Slot(None, [{"value": "a", "display": "Old"}], "1")]
    writes = plan_members(slots, {"a": "New"}, lambda i: "unused")
    assert _apply(slots, writes)[""] == [{"value": "a", "display": "New"}]


def test_nothing_to_do_is_no_write() -> None:
    slots = _slots(100, 200)
    assert plan_members(slots, _wanted(slots), lambda i: "unused") == []


def test_fifty_thousand_members_spill_into_full_shards() -> None:
    wanted: dict[str, str | None] = {f"user-{k:06d}": None for k in range(50_000)}
    writes = plan_members([Slot(None, [], "1")], wanted, lambda i: f"g-{i + 1}")
    assert all(w.create for w in writes)
    assert [len(w.members) for w in writes] == [SHARD_MAX_MEMBERS] * 10
    stored = _apply([Slot(None, [], "1")], writes)
    assert _values(stored) == set(wanted)


def test_removing_thousands_from_a_large_group() -> None:
    """The removal pass is one walk per object (it once rebuilt a set per member)."""
    slots = _slots(INLINE_MAX_MEMBERS, *[SHARD_MAX_MEMBERS] * 10)
    wanted = {v: d for k, (v, d) in enumerate(_wanted(slots).items()) if k % 10}
    writes = plan_members(slots, wanted, lambda i: "unused")
    assert len(writes) == 11 and _values(_apply(slots, writes)) == set(wanted)


@pytest.mark.parametrize(("display", "size"), [(None, 33), ("", 33), ("é", 35)])
def test_member_bytes_and_json(display: str | None, size: int) -> None:
    assert member_bytes("a", display) == size
    assert member_json("a", display) == (
        {"value": "a"} if display is None else {"value": "a", "display": display}
    )


@pytest.mark.parametrize(("shards", "target"), [((0,), "g-1"), ((), "g-1"), ((SHARD_MAX_MEMBERS, 10), "g-2")])
def test_a_batch_too_large_in_bytes_for_the_group_goes_to_a_shard(
    shards: tuple[int, ...], target: str
) -> None:
    """Room by count is not enough: the inline list also has a byte budget."""
    slots = _slots(0, *shards)
    display = "d" * 250
    added = {f"n{k}": display for k in range(INLINE_MAX_MEMBERS)}  # fits by count, not by bytes
    assert sum(member_bytes(v, d) for v, d in added.items()) > INLINE_MAX_BYTES
    wanted = _wanted(slots) | added
    writes = plan_members(slots, wanted, lambda i: f"g-{len(shards) + 1 + i}")
    assert [w.name for w in writes] == [target]
    assert [w.create for w in writes] == [not shards]
    stored = _apply(slots, writes)
    assert stored[""] == []
    assert _values(stored) == set(wanted)


@pytest.mark.parametrize(("inline", "shards"), [(10, ()), (INLINE_MAX_MEMBERS, (10,))])
def test_appends_are_guarded_by_the_version_planned_on(inline: int, shards: tuple[int, ...]) -> None:
    """The member lists are atomic (no list-map key refuses a duplicate value), so an append
    must land only on the version it was planned on: a racing writer that added the same
    member turns it into a conflict that is re-planned, never a duplicate."""
    slots = _slots(inline, *shards)
    for i, slot in enumerate(slots):
        slot.resource_version = str(100 + i)
    writes = plan_members(slots, _wanted(slots) | {"new": None}, lambda i: "unused")
    [write] = writes
    target = next(s for s in slots if s.name == write.name)
    assert write.ops[0] == {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": target.resource_version,
    }
    assert [op["op"] for op in write.ops[1:]] == ["add"]
