"""``attributes`` / ``excludedAttributes`` projection (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.protocol.attributes import parse_attribute_list, project, wants

GROUP: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "g1",
    "displayName": "Team",
    "members": [{"value": "u1", "display": "Ada", "type": "User"}],
    "meta": {"resourceType": "Group", "version": 'W/"1"'},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("displayName", ["displayname"]),
        ("members.value, displayName ,", ["members.value", "displayname"]),
        ("urn:ietf:params:scim:schemas:core:2.0:Group:displayName", ["displayname"]),
    ],
)
def test_parse_attribute_list(text: str | None, expected: list[str] | None) -> None:
    assert parse_attribute_list(text) == expected


@pytest.mark.parametrize(
    ("attributes", "excluded", "keys"),
    [
        (None, None, ["schemas", "id", "displayName", "members", "meta"]),
        (["displayname"], None, ["schemas", "id", "displayName"]),  # id and schemas always returned
        (["members.value"], None, ["schemas", "id", "members"]),
        (None, ["members"], ["schemas", "id", "displayName", "meta"]),
        (None, ["id", "schemas"], ["schemas", "id", "displayName", "members", "meta"]),  # never excluded
        (None, ["members.display"], ["schemas", "id", "displayName", "members", "meta"]),
        (["displayname"], ["displayname"], ["schemas", "id", "displayName"]),  # attributes wins
    ],
)
def test_project_keys(attributes: list[str] | None, excluded: list[str] | None, keys: list[str]) -> None:
    assert list(project(GROUP, attributes, excluded)) == keys


@pytest.mark.parametrize(
    ("attributes", "excluded", "members"),
    [
        (["members.value"], None, [{"value": "u1"}]),
        (["members.value", "members.display"], None, [{"value": "u1", "display": "Ada"}]),
        (["members", "members.value"], None, GROUP["members"]),
        (None, ["members.display", "members.type"], [{"value": "u1"}]),
    ],
)
def test_project_sub_attributes(
    attributes: list[str] | None, excluded: list[str] | None, members: list[dict[str, Any]]
) -> None:
    assert project(GROUP, attributes, excluded)["members"] == members


@pytest.mark.parametrize(
    ("attributes", "excluded", "expected"),
    [
        (None, None, True),
        (["members"], None, True),
        (["members.value"], None, True),
        (["displayname"], None, False),
        (["membersx"], None, False),
        (None, ["members"], False),
        (None, ["members.display"], True),
        (None, ["displayname"], True),
    ],
)
def test_wants(attributes: list[str] | None, excluded: list[str] | None, expected: bool) -> None:
    assert wants("members", attributes, excluded) is expected


def test_project_leaves_scalars_alone_and_does_not_mutate() -> None:
    assert project({"id": "x", "displayName": "A"}, ["displayname.sub"], None) == {
        "id": "x",
        "displayName": "A",
    }
    assert "members" in GROUP and GROUP["members"][0]["display"] == "Ada"


@pytest.mark.parametrize(
    ("excluded", "expected"),
    [
        # a sub-attribute of a single-valued string attribute: nothing to drop
        (["displayname.value"], {"displayName": "Team", "members": GROUP["members"]}),
        (["members.display"], {"displayName": "Team", "members": [{"value": "u1", "type": "User"}]}),
    ],
)
def test_excluding_a_sub_attribute_leaves_scalars_alone(
    excluded: list[str], expected: dict[str, Any]
) -> None:
    out = project(GROUP, None, excluded)
    assert {k: out[k] for k in ("displayName", "members")} == expected
    assert out["meta"] == GROUP["meta"]


def test_excluding_a_sub_attribute_of_a_list_of_scalars() -> None:
    resource = {"id": "u1", "tags": ["a", {"value": "b", "kind": "x"}]}
    assert project(resource, None, ["tags.kind"]) == {"id": "u1", "tags": ["a", {"value": "b"}]}
