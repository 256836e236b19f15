"""MemberIndex: the per-group counting the API's directory and the operator's cache share.

Each event says what one object (a group's own, or one of its shards) lists now, and events
of different objects come in any order; after every event the index must be exactly what the
objects then list together."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest

from scim_core.member_index import NO_MEMBERS, MemberIndex, member_values

State = dict[tuple[str, str], frozenset[str]]  # (group, object) -> values it lists
Event = tuple[tuple[str, str], frozenset[str]]  # the object, what it lists now (empty: gone)


def _expected(state: State) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (group, _), values in state.items():
        for v in values:
            out.setdefault(v, {}).setdefault(group, 0)
            out[v][group] += 1
    return out


def _s(*values: str) -> frozenset[str]:
    return frozenset(values)


G, S1, S2, H = ("g", "g"), ("g", "g-1"), ("g", "g-2"), ("h", "h")
SCENARIOS: dict[str, tuple[State, list[Event]]] = {
    # a member moving from the group object into a shard (a spill), and back (a compaction)
    "into-shard": ({G: _s("u1", "u3"), S1: _s("u2")}, [(S1, _s("u2", "u1")), (G, _s("u3"))]),
    "out-of-shard": ({G: _s("u3"), S1: _s("u1", "u2")}, [(G, _s("u3", "u1")), (S1, _s("u2"))]),
    # between two shards, with a third object changing meanwhile
    "shard-to-shard": (
        {G: _s("a"), S1: _s("u1", "b"), S2: _s("c")},
        [(S1, _s("b")), (S2, _s("c", "u1")), (G, _s("a", "d"))],
    ),
    # a shard emptied into the group object, then gone
    "shard-deleted": ({G: _s("a"), S1: _s("u1", "u2")}, [(G, _s("a", "u1", "u2")), (S1, NO_MEMBERS)]),
    # one member in two groups: one of them dropping it leaves the other
    "two-groups": ({G: _s("u1"), H: _s("u1")}, [(G, NO_MEMBERS), (S1, _s("u1")), (H, _s("x"))]),
    # a member leaving every object of the group leaves the index
    "leaves": ({G: _s("u1"), S1: _s("u1", "u2")}, [(G, NO_MEMBERS), (S1, _s("u2"))]),
}


@pytest.mark.parametrize(
    ("scenario", "order"),
    [(name, order) for name, (_, events) in SCENARIOS.items() for order in permutations(range(len(events)))],
)
def test_every_event_order_keeps_the_index_exact(scenario: str, order: tuple[int, ...]) -> None:
    initial, events = SCENARIOS[scenario]
    index = MemberIndex()
    state: State = {}
    for key, values in initial.items():
        index.move(key[0], NO_MEMBERS, values)
        state[key] = values
    assert index == _expected(state)
    for i in order:
        key, values = events[i]
        group = key[0]
        before = state.get(key, NO_MEMBERS)
        listed_before = {v for (g, _), vs in state.items() if g == group for v in vs}
        joined, left = index.move(group, before, values)
        state[key] = values
        listed_after = {v for (g, _), vs in state.items() if g == group for v in vs}
        assert index == _expected(state)
        # what the group as a whole gained and lost: a member another object lists is neither
        assert sorted(joined) == sorted(listed_after - listed_before)
        assert sorted(left) == sorted(listed_before - listed_after)
    assert {v: set(index.groups_of(v)) for v in index} == {
        v: set(groups) for v, groups in _expected(state).items()
    }


def test_one_object_at_a_time() -> None:
    index = MemberIndex()
    assert index.move("g", NO_MEMBERS, {"u"}) == (["u"], [])
    assert index.move("g", NO_MEMBERS, {"u"}) == ([], [])  # a second object of g lists u
    assert index.move("h", NO_MEMBERS, {"u"}) == (["u"], [])
    assert index == {"u": {"g": 2, "h": 1}}
    assert index.move("g", {"u"}, NO_MEMBERS) == ([], [])  # one object of g still lists u
    assert index.move("g", {"u"}, NO_MEMBERS) == ([], ["u"])
    assert index.move("g", {"u", "nobody"}, NO_MEMBERS) == ([], [])  # unknown pairs are ignored
    assert list(index.groups_of("u")) == ["h"]
    assert index.move("h", {"u"}, {"v"}) == (["v"], ["u"])
    assert index == {"v": {"h": 1}} and list(index.groups_of("u")) == []


@pytest.mark.parametrize(
    ("obj", "values"),
    [
        (None, set()),
        ({}, set()),
        ({"spec": None}, set()),
        ({"spec": {"members": None}}, set()),
        ({"spec": {"members": [{"value": "a"}, {"value": "b", "display": "B"}, {"value": "a"}]}}, {"a", "b"}),
        # hand-edited members (the CRD requires a string value): they list nothing
        ({"spec": {"members": [{"value": "a"}, {"display": "no value"}]}}, {"a"}),
        ({"spec": {"members": [{"value": "a"}, "just a string", {"value": ["x"]}]}}, {"a"}),
    ],
)
def test_member_values(obj: dict[str, Any] | None, values: set[str]) -> None:
    assert member_values(obj) == values


@pytest.mark.parametrize(
    "groups",
    [
        [],
        [("g", set())],
        [("g", {"u", "v"}), ("h", {"u"}), ("i", set()), ("j", {"w", "u"})],
        [(f"g{i}", {f"u{(i * 3 + k) % 7}" for k in range(3)}) for i in range(20)],
    ],
)
def test_fill_is_a_move_of_each_group_from_no_members(groups: list[tuple[str, set[str]]]) -> None:
    moved, filled = MemberIndex(), MemberIndex()
    for group, values in groups:
        moved.move(group, NO_MEMBERS, values)
    filled.fill(groups)
    assert filled == moved
    assert filled.move("g", {"u"}, NO_MEMBERS) == moved.move("g", {"u"}, NO_MEMBERS)  # and it moves on alike


def test_fill_adds_new_groups_to_an_index_that_holds_others() -> None:
    """A table built page by page fills its index once per page: each page's groups are new
    to it, the earlier pages' are not touched."""
    moved, filled = MemberIndex(), MemberIndex()
    pages = [[("g", {"u", "v"}), ("h", set())], [("i", {"u"})], [("j", {"w", "v"}), ("k", {"u"})]]
    for page in pages:
        for group, values in page:
            moved.move(group, NO_MEMBERS, values)
        filled.fill(page)
        assert filled == moved
