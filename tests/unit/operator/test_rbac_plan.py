"""Groups into RoleBindings: splitting, allow-list, subjects, selectors (``rbac.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim_operator.rbac import (
    MAX_SUBJECTS_PER_BINDING,
    _bucket_of,
    label_selector_matches,
    mapping_matches,
    plan_group,
    split_subjects,
    subject_for,
)


def _users(n: int) -> dict[str, dict[str, object]]:
    return {f"u{i}": {"userName": f"user{i}@example.com", "active": True} for i in range(n)}


@pytest.mark.parametrize("buckets", [1, 2, 8])
def test_split_subjects_puts_each_subject_in_its_hash_bucket(buckets: int) -> None:
    subjects = [f"user{i}@example.com" for i in range(100)]
    split = split_subjects(subjects, buckets)
    assert len(split) == buckets and sorted(s for part in split for s in part) == sorted(subjects)
    for bucket, part in enumerate(split):
        assert all(_bucket_of(s, buckets) == bucket for s in part)  # one bucket: no hash needed, same answer


def test_a_group_no_mapping_picks_is_resolved_but_not_split() -> None:
    ws = {"roleMappings": [{"name": "m", "groups": {"pattern": "Team .*"}, "clusterRole": "view"}]}
    users = _users(3)
    spec = {"displayName": "Other", "members": [{"value": u} for u in [*users, "nobody"]]}
    plan = plan_group("ns", "g", spec, ws, users, {}, frozenset({"view"}), frozenset())
    assert plan.bindings == [] and plan.refusals == []
    assert plan.resolution.subjects == sorted(u["userName"] for u in users.values())  # type: ignore[type-var]
    assert plan.resolution.unresolved == ["nobody"]


def test_two_mappings_picking_a_group_bind_the_same_subjects() -> None:
    ws = {
        "roleMappings": [
            {"name": "a", "groups": {"pattern": ".*"}, "clusterRole": "view"},
            {"name": "b", "groups": {"displayName": "Team"}, "clusterRole": "edit"},
        ]
    }
    users = _users(2)
    spec = {"displayName": "Team", "members": [{"value": u} for u in users]}
    plan = plan_group("ns", "g", spec, ws, users, {}, frozenset({"view", "edit"}), frozenset())
    assert [(b.name, b.role_name) for b in plan.bindings] == [("scim-g-a", "view"), ("scim-g-b", "edit")]
    assert plan.bindings[0].subjects == plan.bindings[1].subjects == tuple(sorted(plan.resolution.subjects))


def test_plan_group_splits_large_groups_stably() -> None:
    ws = {
        "subjects": {"prefix": "oidc:"},
        "roleMappings": [{"name": "m", "groups": {"pattern": ".*"}, "clusterRole": "view"}],
    }
    users = _users(50_000)
    spec = {"displayName": "All", "members": [{"value": u} for u in users]}
    plan = plan_group("ns", "grp-all", spec, ws, users, {}, frozenset({"view"}), frozenset())
    assert len(plan.bindings) >= 50_000 // MAX_SUBJECTS_PER_BINDING
    assert sum(len(b.subjects) for b in plan.bindings) == 50_000
    for b in plan.bindings:
        assert len(json.dumps(b.manifest("ns", "grp-all", "uid"))) < 1024 * 1024
    spec2 = {"displayName": "All", "members": [{"value": u} for u in users if u != "u123"]}
    plan2 = plan_group("ns", "grp-all", spec2, ws, users, {}, frozenset({"view"}), frozenset())
    changed = [a.name for a, b in zip(plan.bindings, plan2.bindings, strict=True) if a.subjects != b.subjects]
    assert len(changed) == 1  # one member out: one binding rewritten


def test_plan_group_refuses_roles_outside_allow_list() -> None:
    ws = {"roleMappings": [{"name": "root", "groups": {"displayName": "G"}, "clusterRole": "cluster-admin"}]}
    plan = plan_group(
        "ns",
        "g",
        {"displayName": "G", "members": [{"value": "u0"}]},
        ws,
        _users(1),
        {},
        frozenset({"view"}),
        frozenset(),
    )
    assert plan.bindings == [] and plan.refusals[0].role_name == "cluster-admin"


def test_subjects_and_selectors() -> None:
    assert subject_for("u1", {"userName": "a", "subject": "explicit"}, "p:", "userName") == "explicit"
    assert subject_for("u1", {"emails": [{"value": "x@y", "primary": True}]}, "", "email") == "x@y"
    assert subject_for("u1", {}, "oidc:", "id") == "oidc:u1"
    assert subject_for("u1", {}, "", "externalId") is None
    sel = {
        "matchLabels": {"a": "1"},
        "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["2"]}],
    }
    assert label_selector_matches(sel, {"a": "1"}) and not label_selector_matches(sel, {"a": "1", "b": "2"})


def test_mappings_by_external_id_and_namespaced_role() -> None:
    ws = {
        "roleMappings": [
            {
                "name": "ext",
                "groups": {"externalId": "E-1"},
                "role": "deployer",
                "namespaceSelector": {"matchLabels": {"env": "dev"}},
            },
            {"name": "other", "groups": {"externalId": "E-2"}, "clusterRole": "view"},
        ]
    }
    spec = {"displayName": "G", "externalId": "E-1", "members": [{"value": "u0"}]}
    labels = {"ns": {}, "dev-a": {"env": "dev"}, "prod": {"env": "prod"}}
    plan = plan_group("ns", "g", spec, ws, _users(1), labels, frozenset({"view"}), frozenset({"deployer"}))
    assert [(b.namespace, b.role_kind, b.role_name) for b in plan.bindings] == [
        ("dev-a", "Role", "deployer"),
        ("ns", "Role", "deployer"),
    ]
    refused = plan_group("ns", "g", spec, ws, _users(1), labels, frozenset({"view"}), frozenset())
    assert refused.bindings == [] and refused.refusals[0].role_kind == "Role"


@pytest.mark.parametrize(
    ("selector", "spec", "matches"),
    [
        ({}, {"displayName": "G", "externalId": "e"}, False),  # selects nothing
        ({"displayName": None, "externalId": None, "pattern": None}, {"displayName": "G"}, False),
        ({"displayName": "dev OPS"}, {"displayName": "Dev Ops"}, True),  # case-insensitive
        ({"displayName": "Dev"}, {"displayName": "Dev Ops"}, False),
        ({"displayName": "G"}, {}, False),
        ({"externalId": "e-1"}, {"externalId": "e-1"}, True),
        ({"externalId": "e-1"}, {"externalId": "E-1"}, False),  # exact
        ({"externalId": "e-1"}, {}, False),
        ({"pattern": "dev-.*"}, {"displayName": "dev-ops"}, True),
        ({"pattern": "dev"}, {"displayName": "dev-ops"}, False),  # full match only
        # displayName wins over the other keys when set
        ({"displayName": "A", "externalId": "e"}, {"displayName": "B", "externalId": "e"}, False),
    ],
)
def test_mapping_matches(selector: dict[str, Any], spec: dict[str, Any], matches: bool) -> None:
    assert mapping_matches(selector, spec) is matches


def test_plan_group_without_a_workspace_resolves_members_but_binds_nothing() -> None:
    spec = {"displayName": "G", "members": [{"value": "u0"}, {"value": "ghost"}]}
    plan = plan_group("ns", "g", spec, None, _users(1), {}, frozenset({"view"}), frozenset())
    assert plan.bindings == [] and plan.refusals == []
    assert plan.resolution.subjects == ["user0@example.com"]
    assert plan.resolution.unresolved == ["ghost"]


@pytest.mark.parametrize(
    ("mapping", "namespaces"),
    [
        ({}, ["ns"]),
        ({"includeWorkspaceNamespace": False}, []),
        (
            {"includeWorkspaceNamespace": False, "namespaceSelector": {"matchLabels": {"t": "a"}}},
            ["a1", "a2"],
        ),
        ({"namespaceSelector": {"matchLabels": {"t": "a"}}}, ["a1", "a2", "ns"]),
    ],
)
def test_plan_group_binding_namespaces(mapping: dict[str, Any], namespaces: list[str]) -> None:
    ws = {"roleMappings": [{"name": "m", "groups": {"displayName": "G"}, "clusterRole": "view", **mapping}]}
    labels = {"a1": {"t": "a"}, "a2": {"t": "a"}, "b": {"t": "b"}}
    spec = {"displayName": "G", "members": [{"value": "u0"}]}
    plan = plan_group("ns", "g", spec, ws, _users(1), labels, frozenset({"view"}), frozenset())
    assert [b.namespace for b in plan.bindings] == namespaces
    assert all(b.subjects == ("user0@example.com",) and b.name == "scim-g-m" for b in plan.bindings)


def test_plan_group_with_no_subjects_writes_no_empty_binding() -> None:
    ws = {"roleMappings": [{"name": "m", "groups": {"displayName": "G"}, "clusterRole": "view"}]}
    spec = {"displayName": "G", "members": [{"value": "ghost"}]}
    plan = plan_group("ns", "g", spec, ws, _users(1), {}, frozenset({"view"}), frozenset())
    assert plan.bindings == [] and plan.refusals == []
    assert plan.resolution.unresolved == ["ghost"]
