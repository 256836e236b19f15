"""Member assembly shared by API and operator: inline first, shards by numeric suffix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scim_core.members import (
    assemble_members,
    member_json,
    member_key,
    pack_members,
    shard_order,
    shared_members,
    unpack_members,
    unpacked,
)


def _obj(name: str, *values: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"members": [{"value": v} for v in values]}}


@pytest.mark.parametrize(
    ("value", "display", "expected"),
    [
        ("u1", None, {"value": "u1"}),
        ("u1", "Ada", {"value": "u1", "display": "Ada"}),
        ("u1", "", {"value": "u1", "display": ""}),
    ],
)
def test_member_json(value: str, display: str | None, expected: dict[str, str]) -> None:
    assert member_json(value, display) == expected


@pytest.mark.parametrize(
    ("names", "ordered"),
    [
        (["g-10", "g-2", "g-1"], ["g-1", "g-2", "g-10"]),
        (["g-x", "g-1"], ["g-x", "g-1"]),  # no numeric suffix sorts first, by name
        (["a-b-3", "a-b-12"], ["a-b-3", "a-b-12"]),
    ],
)
def test_shard_order(names: list[str], ordered: list[str]) -> None:
    assert sorted(names, key=shard_order) == ordered


def test_assemble_inline_first_then_shards_by_suffix() -> None:
    group = _obj("g", "a", "b")
    shards = [_obj("g-10", "z"), _obj("g-2", "c"), _obj("g-1", "y")]
    assert [m["value"] for m in assemble_members(group, shards)] == ["a", "b", "y", "c", "z"]


@pytest.mark.parametrize(
    ("group", "shards", "values"),
    [
        (None, [], []),
        ({"metadata": {"name": "g"}}, [], []),  # no spec
        ({"metadata": {"name": "g"}, "spec": {"members": None}}, [_obj("g-1", "s")], ["s"]),  # only shards
        (None, [_obj("g-1", "s")], ["s"]),  # group not seen yet
    ],
)
def test_assemble_tolerates_missing_parts(
    group: dict[str, Any] | None, shards: list[dict[str, Any]], values: list[str]
) -> None:
    assert [m["value"] for m in assemble_members(group, shards)] == values


def test_assemble_never_mutates_its_input() -> None:
    group = _obj("g", "a")
    assemble_members(group, [_obj("g-1", "b")])
    assert group["spec"]["members"] == [{"value": "a"}]


@pytest.mark.parametrize(
    "members",
    [
        [],
        [{"value": "u1"}],
        [{"value": "u1", "display": "Ann"}, {"value": "u2"}, {"value": "u3", "display": ""}],
        [{"value": 'a"b\\c\t\n,[]{}', "display": "é 日本 \U0001f600 \x00\x7f"}],
        [{"value": '["u"]', "display": "null"}],
    ],
)
def test_pack_round_trip(members: list[dict[str, str]]) -> None:
    packed = pack_members(members)
    assert isinstance(packed, str)
    assert unpack_members(packed) == members


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", []),
        ('{"value": "u"}', []),
        ("null", []),
        ('["u", null, "v"]', []),  # not pairs: nothing can be trusted
        ('[["u"], null]', []),  # the nested shape of an earlier draft: no member
        (
            '["u", null, 1, null, ["x"], "X", "v", 5, "w", "W", "e", "", null, null]',
            [{"value": "u"}, {"value": "w", "display": "W"}, {"value": "e", "display": ""}],
        ),
    ],
)
def test_unpack_of_a_hand_edited_shard_grants_nothing_it_cannot_read(
    text: str, expected: list[dict[str, str]]
) -> None:
    assert unpack_members(text) == expected


def test_unpacked_moves_packed_members_after_listed_ones() -> None:
    shard = {
        "spec": {
            "group": "g",
            "members": [{"value": "old"}],
            "packedMembers": pack_members([{"value": "new"}]),
        }
    }
    assert unpacked(shard) is shard
    assert shard == {"spec": {"group": "g", "members": [{"value": "old"}, {"value": "new"}]}}


@pytest.mark.parametrize("obj", [{}, {"spec": None}, {"spec": {"members": [{"value": "u"}]}}])
def test_unpacked_leaves_unpacked_objects_alone(obj: dict[str, object]) -> None:
    before = copy.deepcopy(obj)
    assert unpacked(obj) == before


def test_assemble_reads_packed_and_listed_shards() -> None:
    shards = [
        {
            "metadata": {"name": "g-2"},
            "spec": {"members": [], "packedMembers": pack_members([{"value": "c"}])},
        },
        {"metadata": {"name": "g-1"}, "spec": {"members": [{"value": "b"}]}},
    ]
    assert assemble_members({"spec": {"members": [{"value": "a"}]}}, shards) == [
        {"value": "a"},
        {"value": "b"},
        {"value": "c"},
    ]


def test_pack_is_flat_value_display_pairs() -> None:
    assert pack_members([{"value": "a"}, {"value": "b", "display": "B"}]) == '["a",null,"b","B"]'


def test_unpack_into_a_shared_cache_reuses_one_dict_per_member() -> None:
    shared: dict[Any, dict[str, Any]] = {}
    first = unpack_members(pack_members([{"value": "a"}, {"value": "b", "display": "B"}]), shared)
    again = unpack_members(pack_members([{"value": "b", "display": "B"}, {"value": "c"}]), shared)
    assert first == [{"value": "a"}, {"value": "b", "display": "B"}]
    assert again == [{"value": "b", "display": "B"}, {"value": "c"}]
    assert again[0] is first[1]  # known: the cached dict, not a copy
    assert unpack_members(pack_members([{"value": "c"}]), shared)[0] is again[1]
    assert shared == {"a": {"value": "a"}, ("b", "B"): {"value": "b", "display": "B"}, "c": {"value": "c"}}
    plain = unpack_members(pack_members([{"value": "a"}, {"value": "c"}]), shared)  # no display at all
    assert plain[0] is first[0] and plain[1] is again[1]


def test_unpack_into_a_shared_cache_drops_what_it_cannot_read() -> None:
    shared: dict[Any, dict[str, Any]] = {}
    got = unpack_members('["u", null, {"value": "x"}, null, "x", 1, "u", null]', shared)
    assert got == [{"value": "u"}, {"value": "u"}] and got[0] is got[1]
    assert list(shared) == ["u"]


@pytest.mark.parametrize(
    ("member", "key"),
    [
        ({"value": "u"}, "u"),
        ({"value": "u", "display": "U"}, ("u", "U")),
        ({"display": "U", "value": "u"}, None),  # another key order: kept as it is
        ({"value": "u", "n": "1"}, None),
        ({"value": "u", "display": None}, None),
        ({"value": 1}, None),
    ],
)
def test_member_key_for_the_usual_shapes(member: dict[str, Any], key: str | tuple[str, str] | None) -> None:
    assert member_key(member) == key


def test_shared_members_known_new_and_odd() -> None:
    shared: dict[Any, dict[str, Any]] = {}
    a = shared_members([{"value": "u1"}, {"value": "u2", "display": "Two"}], shared)
    b = shared_members([{"value": "u1"}, {"value": "u2", "display": "Two"}], shared)  # all known
    assert a == b == [{"value": "u1"}, {"value": "u2", "display": "Two"}]
    assert a[0] is b[0] and a[1] is b[1]
    assert shared_members([{"value": "u1"}], shared)[0] is a[0]  # values only, all known: lookups
    odd = [{"value": "u1"}, "odd", {"value": ["x"]}, {"value": "u3", "n": 1}, {"value": "u4"}]
    got = shared_members([dict(m) if isinstance(m, dict) else m for m in odd], shared)
    assert got == odd and got[0] is a[0] and got[4] is shared["u4"]
    unhashable = [{"value": "u1"}, {"value": ["x"]}]  # the usual keys, a value not hashable
    assert shared_members(unhashable, shared) == unhashable
