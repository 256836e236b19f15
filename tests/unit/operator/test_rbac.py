"""RBAC planning, the pure parts besides pattern matching (test_rbac_plan.py beside it keeps the
older plan tests; tests/test_token_policy.py and the RE2 work cover mapping_matches)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_operator.rbac import (
    MAX_SUBJECTS_PER_BINDING,
    DesiredBinding,
    _buckets,
    binding_differs,
    binding_name,
    label_selector_matches,
    needs_finalizer,
    resolve_members,
    subject_for,
)


@pytest.mark.parametrize(
    ("count", "buckets"),
    [
        (0, 1),
        (MAX_SUBJECTS_PER_BINDING, 1),
        (MAX_SUBJECTS_PER_BINDING + 1, 2),
        (4 * MAX_SUBJECTS_PER_BINDING + 1, 8),
    ],
)
def test_buckets_grow_by_powers_of_two(count: int, buckets: int) -> None:
    assert _buckets(count) == buckets


@pytest.mark.parametrize(
    ("bucket", "buckets", "name"), [(0, 1, "scim-g-m"), (0, 2, "scim-g-m-000"), (13, 16, "scim-g-m-013")]
)
def test_binding_name(bucket: int, buckets: int, name: str) -> None:
    assert binding_name("g", "m", bucket, buckets) == name


@pytest.mark.parametrize(
    ("user", "field", "subject"),
    [
        ({"userName": "a"}, "userName", "p:a"),
        ({"emails": [{"value": "x@y"}, {"value": "z@y", "primary": True}]}, "email", "p:z@y"),
        ({"emails": [{"value": "x@y"}]}, "email", "p:x@y"),
        ({"emails": []}, "email", None),
        ({"externalId": ""}, "externalId", None),
        ({"subject": "explicit", "userName": "a"}, "userName", "explicit"),
    ],
)
def test_subject_for(user: dict[str, Any], field: str, subject: str | None) -> None:
    assert subject_for("u1", user, "p:", field) == subject


def test_resolve_members_sorts_and_classifies() -> None:
    users = {
        "u1": {"userName": "b"},
        "u2": {"userName": "a"},
        "u3": {"userName": "c", "active": False},
        "u4": {},  # no userName: unmappable
        "u5": {"userName": "a"},  # same subject as u2: once
    }
    members = [{"value": v} for v in ("u1", "u2", "u3", "u4", "u5", "ghost")]
    res = resolve_members(members, users, "", "userName")
    assert res.subjects == ["a", "b"]
    assert (res.inactive, res.unmappable, res.unresolved) == (["u3"], ["u4"], ["ghost"])


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {}, True),
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
)
def test_label_selector_matches(
    selector: dict[str, Any] | None, labels: dict[str, str], matches: bool
) -> None:
    assert label_selector_matches(selector, labels) is matches


def _desired() -> dict[str, Any]:
    return DesiredBinding("ns", "scim-g-m", "ClusterRole", "view", ("a", "b"), "m").manifest(
        "ns", "g", "uid-1"
    )


def _mutated(path: str) -> dict[str, Any]:
    live = _desired()
    if path == "roleRef":
        live["roleRef"] = {**live["roleRef"], "name": "edit"}
    elif path == "subjects":
        live["subjects"] = live["subjects"][:1]
    elif path == "labels":
        live["metadata"]["labels"] = {}
    elif path == "owner":
        live["metadata"]["ownerReferences"] = []
    elif path == "extra-label":
        live["metadata"]["labels"]["someone-else"] = "x"  # not ours: no difference
    return live


@pytest.mark.parametrize(
    ("path", "differs"),
    [
        ("none", False),
        ("roleRef", True),
        ("subjects", True),
        ("labels", True),
        ("owner", True),
        ("extra-label", False),
    ],
)
def test_binding_differs(path: str, differs: bool) -> None:
    assert binding_differs(_mutated(path), _desired()) is differs


def test_manifest_owner_only_in_the_group_namespace() -> None:
    other = DesiredBinding("elsewhere", "scim-g-m", "Role", "r", ("a",), "m").manifest("ns", "g", "uid-1")
    assert "ownerReferences" not in other["metadata"]
    assert other["roleRef"]["kind"] == "Role"
    assert _desired()["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


@pytest.mark.parametrize(
    ("bindings", "needed"),
    [
        ([], False),
        ([("ws", "scim-g-view")], False),  # owned by the group: the garbage collector removes it
        ([("ws", "scim-g-view"), ("apps", "scim-g-view")], True),  # out of the collector's reach
        ([("apps", "scim-g-view")], True),
    ],
)
def test_finalizer_only_for_bindings_in_other_namespaces(
    bindings: list[tuple[str, str]], needed: bool
) -> None:
    assert needs_finalizer("ws", bindings) is needed
