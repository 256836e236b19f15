"""Fast unit tests of the pure cores: PATCH semantics, filters, storage layout, RBAC plan."""

from __future__ import annotations

import json

import pytest

from scim_api.errors import ScimError
from scim_api.layout import SHARD_MAX_BYTES, Slot, plan_members
from scim_api.protocol.filters import matches, parse_filter
from scim_api.protocol.group_patch import GroupState, apply_operations
from scim_api.protocol.patch import parse_patch_request
from scim_operator.rbac import MAX_SUBJECTS_PER_BINDING, label_selector_matches, plan_group, subject_for

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


def test_filter_parsing_and_matching() -> None:
    node = parse_filter('displayName eq "A \\"b\\"" or (externalId sw "x" and not (members pr))')
    assert matches(node, {"displayName": 'a "B"'})
    assert matches(node, {"externalId": "xyz"})
    assert not matches(node, {"externalId": "xyz", "members": [{"value": "1"}]})
    assert matches(parse_filter('members[value eq "u1"]'), {"members": [{"value": "u1"}]})
    assert not matches(parse_filter('id eq "ABC"'), {"id": "abc"}, frozenset({"id"}))


def test_layout_places_a_batch_in_one_object() -> None:
    slots = [Slot(None, [{"value": f"i{i}"} for i in range(1000)], "1"), Slot("g-1", [{"value": "s0"}], "2")]
    wanted = {m["value"]: None for s in slots for m in s.members} | {f"n{i}": None for i in range(100)}
    writes = plan_members(slots, wanted, lambda i: f"g-{2 + i}")
    assert [w.name for w in writes] == ["g-1"]  # inline is full: the whole batch goes to the shard
    assert sum(1 for op in writes[0].ops if op["op"] == "add") == 100


def test_layout_removal_touches_only_its_object() -> None:
    slots = [Slot(None, [{"value": "a"}, {"value": "b"}], "1"), Slot("g-1", [{"value": "c"}], "2")]
    writes = plan_members(slots, {"a": None, "b": None}, lambda i: f"g-{2 + i}")
    assert [w.name for w in writes] == ["g-1"]
    assert writes[0].ops == [
        {"op": "test", "path": "/spec/members/0/value", "value": "c"},
        {"op": "remove", "path": "/spec/members/0"},
    ]


def test_layout_new_shards_respect_size() -> None:
    wanted = {f"user-{i:06d}-" + "x" * 200: "d" * 200 for i in range(6000)}
    writes = plan_members([Slot(None, [], "1")], wanted, lambda i: f"g-{1 + i}")
    assert all(w.create for w in writes) and len(writes) >= 3
    for w in writes:
        assert len(json.dumps(w.members)) < SHARD_MAX_BYTES * 1.1


def _users(n: int) -> dict[str, dict[str, object]]:
    return {f"u{i}": {"userName": f"user{i}@example.com", "active": True} for i in range(n)}


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


def test_rate_limiter_bucket() -> None:
    from scim_api.ratelimit import RateLimiter

    rl = RateLimiter(rate=2.0, burst=3)
    assert [rl.retry_after("t", now=0.0) for _ in range(3)] == [None, None, None]
    assert rl.retry_after("t", now=0.0) == 1
    assert rl.retry_after("other", now=0.0) is None  # per token
    assert rl.retry_after("t", now=0.6) is None  # refilled


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


def test_expired_token_hashes_are_not_accepted() -> None:
    from scim_api.directory import Directory
    from scim_core import constants as c
    from scim_core.tokens import token_sha256

    d = Directory()
    ws = {
        "metadata": {"namespace": "ns", "name": "ws", "resourceVersion": "1"},
        "status": {
            "tokenHashes": [
                {"sha256": token_sha256("live"), "fingerprint": "f1", "notAfter": "2999-01-01T00:00:00Z"},
                {"sha256": token_sha256("old"), "fingerprint": "f2", "notAfter": "2000-01-01T00:00:00Z"},
            ]
        },
    }
    d.replace_all(c.WORKSPACE_PLURAL, [ws])
    assert d.workspace_for_token_hash(token_sha256("live")) is not None
    assert d.workspace_for_token_hash(token_sha256("old")) is None  # expired
    assert d.workspace_for_token_hash(token_sha256("unknown")) is None
    d.delete(c.WORKSPACE_PLURAL, ws)
    assert d.workspace_for_token_hash(token_sha256("live")) is None  # revoked with its workspace


def test_binary_lookup_follows_envtest_conventions(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from scim_devenv import binaries

    assets = Path(str(tmp_path))
    for name in ("etcd", "kube-apiserver", "kubectl"):
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    override = assets / "my-etcd"
    override.write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("TEST_ASSET_ETCD", str(override))
    found = binaries.ensure(["etcd", "kube-apiserver", "kubectl"])
    assert found == {
        "etcd": override,
        "kube-apiserver": assets / "kube-apiserver",
        "kubectl": assets / "kubectl",
    }
    assert binaries.pinned_version("kubernetes", "k8s.io/kubernetes").startswith("v1.")
    assert binaries.cache_dir(binaries.BINARIES["helm"]).name.startswith("helm-v3.")


def test_directory_ignores_late_events_after_own_delete() -> None:
    from scim_api.directory import Table

    t = Table(("displayName",))
    obj = {"metadata": {"name": "g1", "resourceVersion": "10"}, "spec": {"displayName": "A"}}
    t.put(obj)
    t.forget("g1", 12)
    t.put({"metadata": {"name": "g1", "resourceVersion": "11"}, "spec": {"displayName": "A"}})  # late
    assert "g1" not in t.by_id and t.lookup("displayName", "a") == set()
