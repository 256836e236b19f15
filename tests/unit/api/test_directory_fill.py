"""A list loaded into the directory at once (``Table.fill``, ``Directory.replace_all``) or
page by page as it arrives (``Table.load``, ``Directory.listing``) ends exactly as putting
each object in turn would: the API's start takes the bulk path."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scim_api.directory import Directory, Table
from scim_core import constants as c


def _group(name: str, display: str | None, *members: str, rv: int = 1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"members": [{"value": m} for m in members]}
    if display is not None:
        spec["displayName"] = display
    metadata = {"namespace": "ns", "name": name, "resourceVersion": str(rv), **extra.pop("metadata", {})}
    return {"metadata": metadata, "spec": spec, **extra}


LISTS = {
    "empty": [],
    "one": [_group("g1", "Ops", "u1")],
    "unsorted, shared and case-folded names": [
        _group("g3", "ops", "u1", "u2"),
        _group("g1", "Ops", "u2"),
        _group("g2", "Dev"),
        _group("g4", "OPS", "u3"),
    ],
    "status dropped, no displayName, being deleted": [
        _group("g1", "Ops", "u1", status={"conditions": []}),
        _group("g2", None, "u1"),
        _group("g3", "Gone", "u4", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}),
    ],
    "a name twice: the newest wins": [
        _group("g1", "Old", "u1", rv=5),
        _group("g1", "New", "u2", rv=7),
        _group("g2", "Two", rv=3),
        _group("g2", "Older", "u9", rv=2),
    ],
    "many": [
        _group(f"g{i:03d}", f"Team {i % 7}", *{f"u{(i * 3 + k) % 50}" for k in range(4)})
        for i in random.Random(12).sample(range(300), 300)
    ],
}


def _state(t: Table) -> tuple[Any, ...]:
    return t.by_id, t.ids, t.index, {v: dict(g) for v, g in t.member_of.items()}


@pytest.mark.parametrize("objects", LISTS.values(), ids=LISTS.keys())
def test_fill_ends_as_putting_each_object_in_turn(objects: list[dict[str, Any]]) -> None:
    one_by_one = Table(Directory.GROUP_INDEXES, track_members=True)
    for obj in objects:
        one_by_one.put(obj)
    filled = Table(Directory.GROUP_INDEXES, track_members=True)
    filled.fill(objects)
    assert _state(filled) == _state(one_by_one)
    assert filled.ids == sorted(filled.by_id)
    assert all("status" not in o for o in filled.by_id.values())


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
@pytest.mark.parametrize("objects", LISTS.values(), ids=LISTS.keys())
def test_a_table_loaded_page_by_page_ends_as_putting_each_object_in_turn(
    objects: list[dict[str, Any]], page: int
) -> None:
    one_by_one = Table(Directory.GROUP_INDEXES, track_members=True)
    for obj in objects:
        one_by_one.put(obj)
    loaded = Table(Directory.GROUP_INDEXES, track_members=True)
    for start in range(0, len(objects), page):
        loaded.load(objects[start : start + page])
    assert _state(loaded.loaded()) == _state(one_by_one)


def test_a_listing_is_seen_only_when_done_and_one_never_done_changes_nothing() -> None:
    d = Directory()
    d.replace_all(c.GROUP_PLURAL, [_group("g0", "Old", "u0")])
    listing = d.listing(c.GROUP_PLURAL)
    listing.add([_group("g1", "Ops", "u1")])
    listing.add([_group("g2", "Dev", "u1"), {**_group("g3", "Other", "u2"), "metadata": {
        "namespace": "other", "name": "g3", "resourceVersion": "1"}}])  # fmt: skip
    assert d.group_table("ns").ids == ["g0"] and d.group_table("other").ids == []
    listing.done()
    assert d.group_table("ns").ids == ["g1", "g2"] and d.group_table("other").ids == ["g3"]
    assert set(d.group_table("ns").member_of["u1"]) == {"g1", "g2"}
    abandoned = d.listing(c.GROUP_PLURAL)  # a list that failed half-way
    abandoned.add([_group("g9", "Half")])
    assert d.group_table("ns").ids == ["g1", "g2"]


@pytest.mark.parametrize("plural", [c.SHARD_PLURAL, c.WORKSPACE_PLURAL])
def test_the_few_shards_and_workspaces_are_replaced_at_once_when_the_listing_is_done(plural: str) -> None:
    d = Directory()
    obj = {"metadata": {"namespace": "a", "name": "x-1", "resourceVersion": "3"},
           "spec": {"group": "x", "members": [{"value": "s1"}]}}  # fmt: skip
    listing = d.listing(plural)
    listing.add([obj])
    assert d.kept(plural, obj) is None
    listing.done()
    assert d.kept(plural, obj) is obj


def test_a_filled_table_takes_events_like_any_other() -> None:
    t = Table(Directory.GROUP_INDEXES, track_members=True)
    t.fill(LISTS["unsorted, shared and case-folded names"])
    t.put(_group("g0", "Ops", "u1", rv=9))
    t.remove("g3")
    assert t.ids == ["g0", "g1", "g2", "g4"]
    assert t.lookup("displayName", "ops") == {"g0", "g1", "g4"}
    assert set(t.member_of["u1"]) == {"g0"} and "u2" in t.member_of


def test_fill_is_for_a_new_table_only() -> None:
    t = Table(Directory.GROUP_INDEXES)
    t.put(_group("g1", "Ops"))
    with pytest.raises(ValueError, match="empty table"):
        t.fill([_group("g2", "Dev")])


def test_replace_all_builds_one_table_per_namespace_and_keeps_shard_members() -> None:
    d = Directory()
    shard = {"metadata": {"namespace": "a", "name": "g1-1", "resourceVersion": "3"},
             "spec": {"group": "g1", "members": [{"value": "s1"}]}}  # fmt: skip
    d.replace_all(c.SHARD_PLURAL, [shard])
    groups = [{**_group("g1", "One", "u1"), "metadata": {"namespace": "a", "name": "g1", "resourceVersion": "1"}},
              {**_group("g2", "Two", "u1"), "metadata": {"namespace": "b", "name": "g2", "resourceVersion": "2"}}]  # fmt: skip
    d.replace_all(c.GROUP_PLURAL, groups)
    assert d.group_table("a").ids == ["g1"] and d.group_table("b").ids == ["g2"]
    assert set(d.group_table("a").member_of) == {"u1", "s1"}  # the shard's members survive the relist
    users = [
        {"metadata": {"namespace": "a", "name": "u1", "resourceVersion": "4"}, "spec": {"userName": "U@x"}}
    ]
    d.replace_all(c.USER_PLURAL, users)
    assert d.user_table("a").lookup("userName", "u@X") == {"u1"} and d.user_table("b").ids == []
    d.replace_all(c.GROUP_PLURAL, [])
    assert d.group_table("a").ids == [] and set(d.group_table("a").member_of) == {"s1"}


@pytest.mark.parametrize("seed", range(5))
def test_the_listing_order_stays_sorted_through_any_events(seed: int) -> None:
    """A page is a slice of ``ids`` (no sort per request: O(page) at 100,000 groups), so
    ``ids`` must stay the sorted ids through any mix of list, puts and removes."""
    rng = random.Random(seed)
    t = Table(Directory.GROUP_INDEXES, track_members=True)
    t.fill([_group(f"g{i:03d}", f"T{i}") for i in rng.sample(range(100), 40)])
    for rv in range(2, 400):
        name = f"g{rng.randrange(100):03d}"
        if rng.random() < 0.4:
            t.remove(name)
        else:
            t.put(_group(name, f"T{rv}", rv=rv))
        assert t.ids == sorted(t.by_id)
