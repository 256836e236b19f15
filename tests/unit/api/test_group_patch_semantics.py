"""PATCH member semantics as IdPs send them (the engine in ``protocol/group_patch.py``)."""

from __future__ import annotations

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.group_patch import GroupState, apply_operations
from scim_api.protocol.patch import parse_patch_request

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _apply(state: GroupState, *ops: dict[str, object]) -> GroupState:
    return apply_operations(state, parse_patch_request({"schemas": [PATCH], "Operations": list(ops)}), "g1")


def test_patch_member_semantics() -> None:
    s = GroupState("G", None, {"a": None, "b": "B"})
    assert list(
        _apply(s, {"op": "Add", "path": "members", "value": [{"value": "c", "$ref": None}]}).members
    ) == ["a", "b", "c"]
    assert list(_apply(s, {"op": "Remove", "path": "members", "value": [{"value": "a"}]}).members) == ["b"]
    assert _apply(s, {"op": "remove", "path": "members"}).members == {}
    assert list(_apply(s, {"op": "remove", "path": 'members[value eq "b"]'}).members) == ["a"]
    assert (
        _apply(s, {"op": "replace", "path": 'members[value eq "b"].display', "value": "Bee"}).members["b"]
        == "Bee"
    )
    assert _apply(s, {"op": "replace", "value": {"id": "g1", "displayName": "H"}}).display_name == "H"
    assert _apply(s, {"op": "add", "path": "externalId", "value": "x"}).external_id == "x"
    assert s.members == {"a": None, "b": "B"}  # the input is never mutated
    with pytest.raises(ScimError) as err:
        _apply(s, {"op": "replace", "value": {"id": "other"}})
    assert err.value.scim_type == "mutability"
