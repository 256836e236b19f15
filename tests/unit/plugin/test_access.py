"""``kubectl scim access``: user → groups → mappings → bindings → roles (pure part)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core import constants as c
from scim_kubectl.access import COMMON_CHECKS, Check, find_users, groups_of, owning_mapping, render, trace


def obj(name: str, spec: dict[str, Any], ns: str = "ws-ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def binding(
    ns: str, name: str, group: str, role: str, subjects: list[str], kind: str = "ClusterRole"
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "labels": {c.GROUP_LABEL: group}},
        "roleRef": {"kind": kind, "name": role},
        "subjects": [{"kind": "User", "name": s} for s in subjects] + [{"kind": "Group", "name": "ignored"}],
    }


ADA = obj("usr-ada", {"userName": "Ada@example.com"})
WS = {
    "subjects": {"prefix": "oidc:"},
    "roleMappings": [
        {"name": "devs", "groups": {"displayName": "Developers"}, "clusterRole": "edit"},
        {"name": "devs-001", "groups": {"pattern": "Dev.*"}, "role": "deployer"},
        {"name": "ops", "groups": {"displayName": "Ops"}, "clusterRole": "view"},
    ],
}
GROUPS = [
    obj("grp-ops", {"displayName": "Ops", "members": [{"value": "usr-bob"}]}),
    obj("grp-dev", {"displayName": "Developers", "members": [{"value": "usr-ada"}]}),
    obj("grp-big", {"displayName": "Big", "members": []}),
]
SHARDS = [obj("grp-big-1", {"group": "grp-big", "members": [{"value": "usr-ada"}]})]
BINDINGS = [
    binding("ws-ns", "scim-grp-dev-devs", "grp-dev", "edit", ["oidc:Ada@example.com"]),
    binding("other", "scim-grp-dev-devs-001", "grp-dev", "deployer", ["oidc:Ada@example.com"], "Role"),
    binding("ws-ns", "scim-grp-dev-old", "grp-dev", "admin", ["someone-else"]),
    binding("ws-ns", "scim-grp-ops-ops", "grp-ops", "view", ["oidc:bob"]),
]


def test_find_users_by_id_or_user_name() -> None:
    users = [ADA, obj("usr-bob", {"userName": "bob@example.com"}), obj("x", {})]
    assert find_users(users, "usr-ada") == [ADA]
    assert find_users(users, "ada@EXAMPLE.com") == [ADA]
    assert find_users(users, "nobody") == []


def test_groups_of_reads_inline_members_and_shards() -> None:
    assert [g["metadata"]["name"] for g in groups_of("usr-ada", GROUPS, SHARDS)] == ["grp-big", "grp-dev"]
    assert groups_of("usr-nobody", GROUPS, SHARDS) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scim-g-devs", "devs"),
        ("scim-g-devs-001", "devs-001"),  # an exact name wins over a bucket of "devs"
        ("scim-g-devs-002", "devs"),
        ("scim-g-devs-02", None),
        ("scim-g-devs-abc", None),
        ("scim-g-other", None),
    ],
)
def test_owning_mapping(name: str, expected: str | None) -> None:
    assert owning_mapping(name, "g", ["devs", "devs-001"]) == expected


def test_trace_follows_the_chain() -> None:
    access = trace("ws-ns", ADA, WS, GROUPS, SHARDS, BINDINGS)
    assert access.subject == "oidc:Ada@example.com" and access.active and not access.explicit_subject
    big, dev = access.groups
    assert big.display_name == "Big" and big.mappings == () and big.other_bindings == ()
    assert [(m.name, m.role) for m in dev.mappings] == [
        ("devs", "ClusterRole/edit"),
        ("devs-001", "Role/deployer"),
    ]
    assert [b.name for b in dev.mappings[0].bindings] == ["scim-grp-dev-devs"]
    assert [(b.namespace, b.holds_subject) for b in dev.mappings[1].bindings] == [("other", True)]
    assert [(b.name, b.holds_subject) for b in dev.other_bindings] == [("scim-grp-dev-old", False)]
    assert access.bound_namespaces() == ["other", "ws-ns"]
    reviews = {("ws-ns", "create pods"): True, ("other", "create pods"): False}
    out = access.as_json(reviews)
    assert out["groups"][1]["mappings"][0]["bindings"][0] == {
        "namespace": "ws-ns", "name": "scim-grp-dev-devs", "role": "ClusterRole/edit", "holdsSubject": True,
    }  # fmt: skip
    assert out["groups"][1]["otherBindings"][0]["holdsSubject"] is False
    assert out["access"] == [
        {"namespace": "other", "check": "create pods", "allowed": False},
        {"namespace": "ws-ns", "check": "create pods", "allowed": True},
    ]
    text = render(access, reviews, [Check("create", "", "pods")])
    assert "group 'Developers' (id grp-dev)" in text and "mapping devs -> ClusterRole/edit" in text
    assert "RoleBinding ws-ns/scim-grp-dev-devs -> ClusterRole/edit (lists the user)" in text
    assert "bindings of no current mapping" in text and "(does NOT list the user)" in text
    assert "matches no role mapping" in text
    assert text.splitlines()[-3:] == ["NAMESPACE  CREATE PODS", "other      no", "ws-ns      yes"]


def test_inactive_user_with_explicit_subject_and_no_groups() -> None:
    user = obj("usr-x", {"userName": "x@example.com", "active": False, "subject": "x-admin"})
    access = trace("ws-ns", user, None, GROUPS, [], [])
    assert access.subject == "x-admin" and access.explicit_subject and not access.active
    assert access.bound_namespaces() == ["ws-ns"]
    text = render(access, {}, COMMON_CHECKS)
    assert "member of no group" in text and "deactivated" in text and "explicit spec.subject" in text


def test_user_without_the_mapped_field_has_no_subject() -> None:
    user = obj("usr-y", {"userName": "y@example.com"})
    ws = {"subjects": {"userField": "email"}, "roleMappings": WS["roleMappings"]}
    groups = [obj("grp-dev", {"displayName": "Developers", "members": [{"value": "usr-y"}]})]
    access = trace("ws-ns", user, ws, groups, [], [])
    assert access.subject is None
    text = render(access, {}, COMMON_CHECKS)
    assert "(none: the user lacks the mapped field)" in text and "SubjectAccessReview" not in text
    assert text.count("no RoleBinding (refused by the allow-list, or not reconciled yet)") == 2


def test_common_checks_labels() -> None:
    assert [ch.label for ch in COMMON_CHECKS][-2:] == ["create deployments.apps", "get secrets"]
