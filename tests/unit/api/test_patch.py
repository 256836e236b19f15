"""The PatchOp envelope shared by both PATCH engines."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.patch import MAX_OPERATIONS, PATCH_OP_SCHEMA, Operation, parse_patch_request


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": []}, []),
        (
            {"Operations": [{"op": "Add", "path": " members ", "value": []}]},
            [Operation("add", "members", [])],
        ),
        ({"operations": [{"op": "REMOVE", "path": "members"}]}, [Operation("remove", "members", None)]),
        (  # Entra test payloads: a top-level id and a "name" inside the operation
            {"id": "g1", "Operations": [{"op": "Replace", "name": "addMember", "value": {"a": 1}}]},
            [Operation("replace", None, {"a": 1})],
        ),
    ],
)
def test_valid_bodies(body: dict[str, Any], expected: list[Operation]) -> None:
    assert parse_patch_request(body, "g1") == expected


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([], "invalidSyntax"),
        ({"schemas": ["urn:other"], "Operations": []}, "invalidSyntax"),
        ({"schemas": PATCH_OP_SCHEMA, "Operations": []}, "invalidSyntax"),
        ({}, "invalidSyntax"),
        ({"Operations": {}}, "invalidSyntax"),
        ({"Operations": ["add"]}, "invalidSyntax"),
        ({"Operations": [{"op": "move", "path": "x"}]}, "invalidSyntax"),
        ({"Operations": [{"op": 1}]}, "invalidSyntax"),
        ({"Operations": [{"op": "add", "path": "members"}]}, "invalidSyntax"),
        ({"Operations": [{"op": "add", "path": " ", "value": 1}]}, "invalidPath"),
        ({"Operations": [{"op": "add", "path": 3, "value": 1}]}, "invalidPath"),
        ({"Operations": [{"op": "remove"}]}, "noTarget"),
        ({"Operations": [{"op": "remove", "path": "members"}] * (MAX_OPERATIONS + 1)}, "tooMany"),
    ],
)
def test_invalid_bodies(body: Any, scim_type: str) -> None:
    with pytest.raises(ScimError) as err:
        parse_patch_request(body)
    assert err.value.status == 400 and err.value.scim_type == scim_type


def test_max_operations_is_accepted() -> None:
    assert len(
        parse_patch_request({"Operations": [{"op": "remove", "path": "members"}] * MAX_OPERATIONS})
    ) == (MAX_OPERATIONS)
