"""The User PATCH/PUT engine: only ``active`` changes; PUT ignores what the workspace owns."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.patch import parse_patch_request
from scim_api.protocol.user_patch import active_after_patch, active_after_put, parse_active

from ...idp_bodies import PATCH, PATCH_SHAPES, USER, okta_aiw_put

STORED: dict[str, Any] = {
    "schemas": [USER],
    "id": "usr-ada",
    "userName": "ada@example.com",
    "externalId": "ext-ada",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@example.com", "primary": True}],
    "active": True,
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("False", False), ("True", True), (" true ", True), ("FALSE", False)],
)
def test_parse_active_accepts_booleans_and_entra_strings(value: Any, expected: bool) -> None:
    assert parse_active(value) is expected


@pytest.mark.parametrize("value", [None, 0, 1, "yes", "", [], {"active": False}])
def test_parse_active_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ScimError) as err:
        parse_active(value)
    assert err.value.status == 400 and err.value.scim_type == "invalidValue"


@pytest.mark.parametrize("password", [False, True])
@pytest.mark.parametrize("active", [False, True])
def test_okta_aiw_put_applies_active_only(active: bool, password: bool) -> None:
    body = okta_aiw_put("usr-ada", "ada@example.com", active, password)
    assert active_after_put(STORED, body) is active


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "someone-else@example.com", "active": False},
        {"displayName": "Not Ada", "active": False, "x-unknown": 1},
        {"id": "another-id", "active": False},
        {"urn:ietf:params:scim:schemas:core:2.0:User:active": False},
        {"Active": "False"},
    ],
)
def test_put_never_refuses_for_workspace_owned_attributes(body: dict[str, Any]) -> None:
    assert active_after_put(STORED, body) is False


@pytest.mark.parametrize("stored_active", [True, False])
def test_put_without_active_keeps_it(stored_active: bool) -> None:
    assert active_after_put(STORED | {"active": stored_active}, {"userName": "x"}) is stored_active


@pytest.mark.parametrize(
    ("body", "scim_type"), [([], "invalidSyntax"), ({"active": "maybe"}, "invalidValue")]
)
def test_put_bad_bodies(body: Any, scim_type: str) -> None:
    with pytest.raises(ScimError) as err:
        active_after_put(STORED, body)
    assert err.value.status == 400 and err.value.scim_type == scim_type


@pytest.mark.parametrize(("name", "off", "on"), PATCH_SHAPES, ids=[s[0] for s in PATCH_SHAPES])
def test_idp_patch_shapes(name: str, off: dict[str, Any], on: dict[str, Any]) -> None:
    assert active_after_patch(STORED, parse_patch_request(off)) is False
    assert active_after_patch(STORED | {"active": False}, parse_patch_request(on)) is True


def _ops(*ops: dict[str, Any]) -> Any:
    return parse_patch_request({"schemas": [PATCH], "Operations": list(ops)})


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "userName", "value": "evil@example.com"},
        {"op": "remove", "path": "active"},
        {"op": "remove", "path": "externalId"},
        {"op": "replace", "value": {"id": "another-id"}},
        {"op": "add", "path": "nickName", "value": "x"},
    ],
)
def test_patch_changing_anything_but_active_is_mutability(op: dict[str, Any]) -> None:
    with pytest.raises(ScimError) as err:
        active_after_patch(STORED, _ops(op))
    assert err.value.status == 400 and err.value.scim_type == "mutability"


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "userName", "value": "ada@example.com"},  # unchanged value
        {"op": "replace", "value": {"id": "usr-ada", "schemas": [USER], "meta": {}, "active": False}},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": False},
    ],
)
def test_patch_unchanged_read_only_values_are_fine(op: dict[str, Any]) -> None:
    assert active_after_patch(STORED, _ops(op, {"op": "replace", "path": "active", "value": False})) is False


@pytest.mark.parametrize(
    "ops",
    [
        # Entra with extra attribute mappings: the profile change rides along the deactivation
        [{"op": "replace", "value": {"active": False, "externalId": "other"}}],
        [
            {"op": "Replace", "path": "displayName", "value": "Ada L."},
            {"op": "Replace", "path": "active", "value": "False"},
        ],
        [
            {"op": "remove", "path": "externalId"},
            {"op": "add", "path": "nickName", "value": "x"},
            {"op": "replace", "path": "active", "value": False},
        ],
        [
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "userName", "value": "e@x"},
        ],
    ],
)
def test_patch_setting_active_ignores_other_attributes(ops: list[dict[str, Any]]) -> None:
    """A deactivation is never refused because of what else the request changes."""
    assert active_after_patch(STORED, _ops(*ops)) is False


def test_patch_setting_active_still_refuses_removing_it() -> None:
    with pytest.raises(ScimError) as err:
        active_after_patch(
            STORED,
            _ops({"op": "replace", "path": "active", "value": False}, {"op": "remove", "path": "active"}),
        )
    assert err.value.scim_type == "mutability"


def test_patch_no_path_needs_an_object() -> None:
    with pytest.raises(ScimError) as err:
        active_after_patch(STORED, _ops({"op": "replace", "value": False}))
    assert err.value.scim_type == "invalidValue"
