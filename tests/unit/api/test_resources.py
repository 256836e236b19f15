"""SCIM Group/User JSON from and to the custom resources (``protocol/resources.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.group_patch import GroupState
from scim_api.protocol.resources import (
    ADSCIM_GROUP,
    GROUP_SCHEMA,
    LAST_MODIFIED,
    USER_SCHEMA,
    etag,
    group_resource,
    group_spec,
    group_state,
    parse_group_body,
    user_resource,
)

BASE = "https://scim.example/scim/v2"


def _obj(
    name: str, spec: dict[str, Any] | None, generation: int | None = 3, modified: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z"}
    if generation is not None:
        metadata["generation"] = generation
    if modified is not None:
        metadata["annotations"] = {LAST_MODIFIED: modified}
    return {"metadata": metadata, "spec": spec}


def _shard(generation: int | None, modified: str | None = None) -> dict[str, Any]:
    return _obj("g1-1", {"members": []}, generation, modified)


@pytest.mark.parametrize(
    ("generation", "shards", "expected"),
    [
        (3, [], 'W/"3"'),
        (None, [], 'W/"1"'),
        (3, [_shard(2), _shard(None)], 'W/"3.3"'),
        (7, [_shard(5)], 'W/"7.5"'),
    ],
)
def test_etag(generation: int | None, shards: list[dict[str, Any]], expected: str) -> None:
    assert etag(_obj("g1", {}, generation), shards) == expected


def test_group_resource() -> None:
    obj = _obj("g1", {"displayName": "Team", "externalId": "ext"}, modified="2024-02-01T00:00:00Z")
    members = [{"value": "u/1", "display": "Ada"}, {"value": "u2", "display": None}]
    assert group_resource(obj, BASE, members) == {
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "externalId": "ext",
        "displayName": "Team",
        "members": [
            {"value": "u/1", "display": "Ada", "$ref": f"{BASE}/Users/u%2F1", "type": "User"},
            {"value": "u2", "$ref": f"{BASE}/Users/u2", "type": "User"},
        ],
        "meta": {
            "resourceType": "Group",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-02-01T00:00:00Z",
            "location": f"{BASE}/Groups/g1",
            "version": 'W/"3"',
        },
    }


def test_group_resource_without_members_spec_or_stamps() -> None:
    out = group_resource(_obj("g1", None), BASE, None)
    assert out == {
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "",
        "meta": {
            "resourceType": "Group",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-01-01T00:00:00Z",  # never modified: the creation time
            "location": f"{BASE}/Groups/g1",
            "version": 'W/"3"',
        },
    }


def test_group_last_modified_is_the_latest_of_group_and_shards() -> None:
    obj = _obj("g1", {"displayName": "T"}, modified="2024-02-01T00:00:00Z")
    shards = [_shard(1, "2024-03-01T00:00:00Z"), _shard(1)]
    meta = group_resource(obj, BASE, [], shards)["meta"]
    assert meta["lastModified"] == "2024-03-01T00:00:00Z"
    assert meta["version"] == 'W/"3.2"'


def test_group_state_and_spec_round_trip() -> None:
    spec = {
        "displayName": "Team",
        "externalId": "ext",
        "members": [{"value": "u1", "display": "Ada"}, {"value": "u2"}],
    }
    state = group_state(spec)
    assert state == GroupState("Team", "ext", {"u1": "Ada", "u2": None})
    assert group_spec(state) == spec


def test_group_state_and_spec_of_a_bare_group() -> None:
    state = group_state({"members": None})
    assert state == GroupState("", None, {})
    assert group_spec(state) == {"displayName": "", "members": []}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"displayName": "Team"}, GroupState("Team", None, {})),
        (
            {
                "schemas": [GROUP_SCHEMA.upper(), ADSCIM_GROUP],
                "id": "ignored",
                "meta": {"version": "ignored"},
                "DisplayName": "Team",
                "externalId": "e" * 256,
                "members": [{"value": "u1", "display": "Ada"}, {"value": "u2"}],
                ADSCIM_GROUP: {"anything": 1},
            },
            GroupState("Team", "e" * 256, {"u1": "Ada", "u2": None}),
        ),
        (
            {"schemas": [GROUP_SCHEMA], "displayName": "T", "externalId": None, "members": []},
            GroupState("T", None, {}),
        ),
    ],
)
def test_parse_group_body(body: dict[str, Any], expected: GroupState) -> None:
    assert parse_group_body(body) == expected


@pytest.mark.parametrize(
    ("body", "scim_type", "detail"),
    [
        ([], "invalidSyntax", "JSON object"),
        ({"schemas": GROUP_SCHEMA, "displayName": "T"}, "invalidSyntax", "list of URNs"),
        ({"schemas": [GROUP_SCHEMA, 1], "displayName": "T"}, "invalidSyntax", "list of URNs"),
        ({"schemas": [GROUP_SCHEMA, USER_SCHEMA], "displayName": "T"}, "invalidSyntax", "Unsupported schema"),
        ({"schemas": [ADSCIM_GROUP], "displayName": "T"}, "invalidSyntax", "must contain"),
        ({"schemas": [], "displayName": "T"}, "invalidSyntax", "must contain"),
        ({"displayName": "T", "title": "x"}, "invalidSyntax", "Unknown attribute 'title'"),
        ({}, "invalidValue", "'displayName' is required"),
        ({"displayName": "  "}, "invalidValue", "'displayName' is required"),
        ({"displayName": 5}, "invalidValue", "'displayName' is required"),
        ({"displayName": "x" * 257}, "invalidValue", "longer than 256"),
        ({"displayName": "T", "externalId": 5}, "invalidValue", "'externalId'"),
        ({"displayName": "T", "externalId": "e" * 257}, "invalidValue", "'externalId'"),
        ({"displayName": "T", "members": {"value": "u1"}}, "invalidValue", "'members' must be a list"),
        ({"displayName": "T", "members": ["u1"]}, "invalidValue", "Each member"),
    ],
)
def test_invalid_group_bodies(body: Any, scim_type: str, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        parse_group_body(body)
    assert (err.value.status, err.value.scim_type) == (400, scim_type)
    assert detail in err.value.detail


def test_user_resource() -> None:
    spec = {
        "userName": "ada",
        "externalId": "x1",
        "displayName": "Ada",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "ada@example.com"}],
        "active": False,
    }
    obj = _obj("u1", spec, modified="2024-05-01T00:00:00Z")
    assert user_resource(obj, BASE, [("g1", "Team")]) == {
        "schemas": [USER_SCHEMA],
        "id": "u1",
        "externalId": "x1",
        "userName": "ada",
        "displayName": "Ada",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "ada@example.com"}],
        "active": False,
        "groups": [{"value": "g1", "display": "Team", "$ref": f"{BASE}/Groups/g1"}],
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-05-01T00:00:00Z",
            "location": f"{BASE}/Users/u1",
            "version": 'W/"3"',
        },
    }


@pytest.mark.parametrize("spec", [None, {}, {"displayName": None, "name": None, "emails": None}])
def test_a_bare_user(spec: dict[str, Any] | None) -> None:
    out = user_resource(_obj("u1", spec), BASE)
    assert {k: v for k, v in out.items() if k != "meta"} == {
        "schemas": [USER_SCHEMA],
        "id": "u1",
        "userName": "",
        "active": True,
    }
    assert out["meta"]["lastModified"] == "2024-01-01T00:00:00Z"


def test_user_groups_listed_when_asked_even_if_none() -> None:
    assert user_resource(_obj("u1", {"userName": "a"}), BASE, [])["groups"] == []
