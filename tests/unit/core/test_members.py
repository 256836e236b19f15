"""Member assembly shared by API and operator: inline first, shards by numeric suffix."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core.members import assemble_members, member_json, shard_order


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
