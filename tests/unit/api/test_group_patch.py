"""The Group PATCH engine: RFC 7644 §3.5.2 semantics, IdP quirks, bounded work, member cap."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol import group_patch
from scim_api.protocol.group_patch import (
    MAX_SCANNED_MEMBERS,
    GroupState,
    apply_operations,
    check_member_cap,
    parse_path,
)
from scim_api.protocol.patch import parse_patch_request

from ...idp_bodies import PATCH

START = GroupState("Team", "ext-1", {"a": None, "b": "Bee", "c": None})


def _apply(state: GroupState, *ops: dict[str, Any]) -> GroupState:
    return apply_operations(state, parse_patch_request({"schemas": [PATCH], "Operations": list(ops)}), "g1")


def _error(state: GroupState, *ops: dict[str, Any]) -> ScimError:
    with pytest.raises(ScimError) as err:
        _apply(state, *ops)
    return err.value


@pytest.mark.parametrize(
    ("op", "members"),
    [
        (
            {"op": "add", "path": "members", "value": [{"value": "d", "$ref": None}]},
            {"a": None, "b": "Bee", "c": None, "d": None},
        ),
        (
            {"op": "add", "path": "members", "value": {"value": "a", "display": "Ay"}},
            {"a": "Ay", "b": "Bee", "c": None},
        ),
        ({"op": "add", "path": "members", "value": [{"value": "b"}]}, {"a": None, "b": "Bee", "c": None}),
        (
            {"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "zz"}]},
            {"b": "Bee", "c": None},
        ),
        ({"op": "remove", "path": "members"}, {}),
        ({"op": "remove", "path": 'members[value eq "b"]'}, {"a": None, "c": None}),
        ({"op": "remove", "path": 'members[value eq "a" or value eq "c"]'}, {"b": "Bee"}),
        (
            {"op": "remove", "path": 'members[display eq "bee"]'},
            {"a": None, "c": None},
        ),  # display: caseExact false
        ({"op": "remove", "path": 'members[value eq "b"].display'}, {"a": None, "b": None, "c": None}),
        (
            {"op": "replace", "path": 'members[value eq "b"].display', "value": "B2"},
            {"a": None, "b": "B2", "c": None},
        ),
        (
            {"op": "replace", "path": 'members[value eq "c"]', "value": {"value": "e"}},
            {"a": None, "b": "Bee", "e": None},
        ),
        ({"op": "replace", "path": "members", "value": [{"value": "x"}]}, {"x": None}),
        ({"op": "replace", "path": "members", "value": []}, {}),
        (
            {"op": "add", "path": 'members[value eq "zz"]', "value": {"value": "zz"}},
            {"a": None, "b": "Bee", "c": None, "zz": None},
        ),
    ],
)
def test_member_operations(op: dict[str, Any], members: dict[str, str | None]) -> None:
    assert _apply(START, op).members == members
    assert START.members == {"a": None, "b": "Bee", "c": None}  # the input is never mutated


@pytest.mark.parametrize(
    "path",
    [
        'members[value eq "nobody"]',
        'members[value eq "nobody"].display',
        'members[value eq "A"]',  # member values are case-exact (they are User ids)
        'members[display eq "nobody"].display',
    ],
)
def test_replace_on_a_filter_that_matches_nothing_is_no_target(path: str) -> None:
    """RFC 7644 §3.5.2.3: no match for a value-path filter in a replace is 400 noTarget."""
    err = _error(START, {"op": "add", "path": "members", "value": [{"value": "d"}]},
                 {"op": "replace", "path": path, "value": {"value": "x"} if path.endswith("]") else "D"})  # fmt: skip
    assert (err.status, err.scim_type) == (400, "noTarget")


@pytest.mark.parametrize(
    "op",
    [
        {"op": "remove", "path": 'members[value eq "nobody"]'},
        {"op": "remove", "path": 'members[value eq "nobody"].display'},
        {"op": "remove", "path": "members", "value": [{"value": "nobody"}]},
    ],
)
def test_removing_an_absent_member_is_a_no_op(op: dict[str, Any]) -> None:
    assert _apply(START, op) == START


@pytest.mark.parametrize(
    ("op", "scim_type"),
    [
        ({"op": "replace", "path": 'members[value eq "a"].value', "value": "z"}, "mutability"),
        ({"op": "remove", "path": 'members[value eq "a"].value'}, "mutability"),
        ({"op": "replace", "path": "members.display", "value": "z"}, "invalidPath"),
        ({"op": "remove", "path": "displayName"}, "mutability"),
        ({"op": "replace", "path": "displayName", "value": " "}, "invalidValue"),
        ({"op": "add", "path": "nickName", "value": "x"}, "invalidPath"),
        ({"op": "add", "path": 'displayName[value eq "x"]', "value": "x"}, "invalidPath"),
        ({"op": "add", "path": "members[]", "value": "x"}, "invalidPath"),
        ({"op": "add", "path": 'members[value eq "a"]x', "value": "x"}, "invalidPath"),
        ({"op": "add", "path": "members", "value": [{"display": "no value"}]}, "invalidValue"),
        ({"op": "add", "path": "members", "value": ["a"]}, "invalidValue"),
        ({"op": "replace", "value": {"id": "other"}}, "mutability"),
        ({"op": "replace", "value": {"nickName": "x"}}, "invalidPath"),
        ({"op": "replace", "value": "x"}, "invalidValue"),
        ({"op": "remove", "path": "members[value eq]"}, "invalidFilter"),
    ],
)
def test_errors(op: dict[str, Any], scim_type: str) -> None:
    assert _error(START, op).scim_type == scim_type


@pytest.mark.parametrize(
    ("op", "check"),
    [
        (
            {"op": "replace", "value": {"id": "g1", "displayName": "New", "schemas": [], "meta": {}}},
            ("display_name", "New"),
        ),
        ({"op": "add", "path": "externalId", "value": "x"}, ("external_id", "x")),
        ({"op": "add", "path": "externalId", "value": [{"value": "wrapped"}]}, ("external_id", "wrapped")),
        ({"op": "remove", "path": "externalId"}, ("external_id", None)),
        (
            {
                "op": "Replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
                "value": "U",
            },
            ("display_name", "U"),
        ),
    ],
)
def test_single_valued_attributes(op: dict[str, Any], check: tuple[str, Any]) -> None:
    assert getattr(_apply(START, op), check[0]) == check[1]


def test_value_filters_are_answered_from_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """``members[value eq "…"]`` looks one member up: the filter is evaluated only on it."""
    calls: list[dict[str, Any]] = []
    real = group_patch.matches

    def counting(node: Any, resource: dict[str, Any], case_exact: frozenset[str] = frozenset()) -> bool:
        calls.append(resource)
        return real(node, resource, case_exact)

    monkeypatch.setattr(group_patch, "matches", counting)
    big = GroupState("Big", None, {f"u{i}": None for i in range(10_000)})
    ops = [{"op": "remove", "path": f'members[value eq "u{i}"]'} for i in range(0, 10_000, 10)]
    new = _apply(big, *ops)
    assert len(new.members) == 9_000 and len(calls) == 1_000


@pytest.mark.parametrize(("members", "ops_allowed"), [(1_000, MAX_SCANNED_MEMBERS // 1_000), (50_000, 4)])
def test_scans_are_bounded_per_request(members: int, ops_allowed: int) -> None:
    """Filters the index cannot answer scan the group; a request may scan only so much."""
    big = GroupState("Big", None, {f"u{i}": f"d{i}" for i in range(members)})
    op = {"op": "remove", "path": 'members[display eq "d1"]'}
    assert len(_apply(big, *[op] * ops_allowed).members) == members - 1
    err = _error(big, *[op] * (ops_allowed + 1))
    assert (err.status, err.scim_type) == (400, "tooMany") and 'members[value eq "<id>"]' in err.detail


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (None, 10, False),
        (None, 11, True),
        (5, 10, False),
        (10, 11, True),
        (20, 15, False),  # above a lowered cap: may still shrink
        (20, 20, False),
        (20, 21, True),
    ],
)
def test_member_cap(old: int | None, new: int, refused: bool) -> None:
    def state(n: int) -> GroupState:
        return GroupState("G", None, {f"u{i}": None for i in range(n)})

    before = None if old is None else state(old)
    after = state(new)
    if refused:
        with pytest.raises(ScimError) as err:
            check_member_cap(before, after, 10)
        assert (err.value.status, err.value.scim_type) == (400, "invalidValue")
        assert "at most 10 members" in err.value.detail and "Nothing was changed" in err.value.detail
    else:
        assert check_member_cap(before, after, 10) is after


@pytest.mark.parametrize(
    ("path", "attr", "sub"),
    [
        ("members", "members", None),
        ("Members.Display", "members", "display"),
        ('members[value eq "X"].display', "members", "display"),
        ("urn:ietf:params:scim:schemas:core:2.0:Group:members", "members", None),
        ("externalId", "externalid", None),
    ],
)
def test_parse_path(path: str, attr: str, sub: str | None) -> None:
    target = parse_path(path)
    assert (target.attr, target.sub) == (attr, sub)


@pytest.mark.parametrize(
    ("path", "scim_type", "detail"),
    [
        ('members]value eq "x"[', "invalidPath", "Unbalanced '['"),
        ('members[value eq "x"', "invalidPath", "Unbalanced '['"),
        ("members[ ]", "invalidPath", "Empty filter"),
        ('members[value eq "x"]display', "invalidPath", "Unexpected 'display'"),
        ("title", "invalidPath", "Unknown or unsupported attribute"),
        ("displayName.value", "invalidPath", "only 'members' is multi-valued"),
        ('externalId[value eq "x"]', "invalidPath", "only 'members' is multi-valued"),
        ("members.primary", "invalidPath", "Unknown sub-attribute"),
        ('members[value eq "x"].primary', "invalidPath", "Unknown sub-attribute"),
        ("members[value xx 1]", "invalidFilter", "Invalid filter"),
    ],
)
def test_invalid_paths(path: str, scim_type: str, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        parse_path(path)
    assert (err.value.status, err.value.scim_type) == (400, scim_type)
    assert detail in err.value.detail


@pytest.mark.parametrize(
    ("value", "allow_empty", "expected"),
    [("Team", False, "Team"), ("x" * 256, False, "x" * 256), ("", True, ""), ("  ", True, "  ")],
)
def test_require_text(value: str, allow_empty: bool, expected: str) -> None:
    assert group_patch.require_text(value, "'displayName'", "missing", allow_empty) == expected


@pytest.mark.parametrize(
    ("value", "allow_empty", "detail"),
    [
        (None, False, "missing"),
        (5, True, "missing"),
        ("  ", False, "missing"),
        ("x" * 257, False, "'displayName' is longer than 256 characters"),
        ("x" * 257, True, "'displayName' is longer than 256 characters"),
    ],
)
def test_require_text_refuses(value: object, allow_empty: bool, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        group_patch.require_text(value, "'displayName'", "missing", allow_empty)
    assert (err.value.status, err.value.scim_type, err.value.detail) == (400, "invalidValue", detail)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"value": "u1"}, {"u1": None}),
        ([{"Value": "u1", "Display": "Ada"}, {"value": "u2", "display": None}], {"u1": "Ada", "u2": None}),
        ([{"value": "u1", "display": "d" * 300}], {"u1": "d" * 256}),  # display is trimmed
        ([{"value": "u1"}, {"value": "u1", "display": "Ada"}], {"u1": "Ada"}),  # the last one wins
    ],
)
def test_parse_members(value: object, expected: dict[str, str | None]) -> None:
    assert group_patch.parse_members(value) == expected


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (["u1"], "Each member must be an object with a 'value'"),
        ([{"display": "Ada"}], "Each member needs a non-empty string 'value'"),
        ([{"value": ""}], "Each member needs a non-empty string 'value'"),
        ([{"value": "u" * 257}], "A member 'value' is longer than 256 characters"),
        ([{"value": "u1", "display": 5}], "A member 'display' must be a string"),
        ([{"value": "u1", "display": ["Ada"]}], "A member 'display' must be a string"),
    ],
)
def test_parse_members_refuses(value: object, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        group_patch.parse_members(value)
    assert (err.value.status, err.value.scim_type, err.value.detail) == (400, "invalidValue", detail)
