"""``kubectl scim preview``: gains and losses of a changed role mapping (pure part)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core import constants as c
from scim_kubectl.preview import Grant, MappingFileError, Snapshot, changed_spec, compare, preview, render

DEVS = {"name": "devs", "groups": {"displayName": "Developers"}, "clusterRole": "edit"}
OPS = {"name": "ops", "groups": {"displayName": "Ops"}, "clusterRole": "view"}
CURRENT: dict[str, Any] = {"displayName": "W", "subjects": {"prefix": "oidc:"}, "roleMappings": [DEVS, OPS]}
USERS = {
    "usr-ada": {"userName": "ada"},
    "usr-bob": {"userName": "bob"},
    "usr-off": {"userName": "off", "active": False},
}


def group(name: str, display: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"displayName": display}}


GROUPS = [
    (group("grp-dev", "Developers"), [{"value": "usr-ada"}, {"value": "usr-off"}]),
    (group("grp-ops", "Ops"), [{"value": "usr-bob"}]),
]
LABELS = {"ws": {}, "prod": {"env": "prod"}}
ALLOWED = (frozenset({"view", "edit"}), frozenset({"deployer"}))


def names(spec: dict[str, Any]) -> list[str]:
    return [m["name"] for m in spec["roleMappings"]]


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        ([{**DEVS, "clusterRole": "view"}], ["devs", "ops"]),  # replaced in place
        ([None, [{**OPS, "name": "new"}]], ["devs", "ops", "new"]),  # added
        ([{"kind": c.WORKSPACE_KIND, "spec": {"roleMappings": [OPS]}}], ["ops"]),  # replaces all
        ([{"kind": c.WORKSPACE_KIND, "spec": {}}], []),
        ([{"roleMappings": [DEVS]}], ["devs"]),
        ([{"roleMappings": None}], []),
    ],
)
def test_changed_spec(documents: list[Any], expected: list[str]) -> None:
    spec = changed_spec(CURRENT, documents)
    assert names(spec) == expected and spec["displayName"] == "W"
    assert names(CURRENT) == ["devs", "ops"]  # the input is left alone


def test_changed_spec_on_a_workspace_without_mappings() -> None:
    assert names(changed_spec({"displayName": "W"}, [DEVS])) == ["devs"]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([], "holds no role mapping"),
        ([None], "holds no role mapping"),
        (["just text"], "expected a role mapping"),
        ([{"name": "x"}], "invalid role mapping: groups"),
        ([{}], "invalid role mapping: name"),
        ([[{**DEVS, "extra": 1}]], "invalid role mapping: extra"),
        ([[DEVS, DEVS]], "names one role mapping twice"),
        ([[1]], "invalid role mapping: mapping"),
    ],
)
def test_changed_spec_refuses(documents: list[Any], message: str) -> None:
    with pytest.raises(MappingFileError, match=message):
        changed_spec(CURRENT, documents)


def test_preview_gains_and_losses() -> None:
    changed = changed_spec(CURRENT, [
        {"name": "devs", "groups": {"pattern": "(Dev|Ops).*"}, "clusterRole": "view",
         "namespaceSelector": {"matchLabels": {"env": "prod"}}, "includeWorkspaceNamespace": False},
        {"name": "root", "groups": {"displayName": "Ops"}, "clusterRole": "cluster-admin"},
        {"name": "bad", "groups": {"pattern": "(?=x)"}, "role": "deployer"},
    ])  # fmt: skip
    result = preview(Snapshot("ws", GROUPS, USERS, LABELS, *ALLOWED), CURRENT, changed)
    assert result.gained == {
        Grant("oidc:ada", "prod", "ClusterRole/view"): ["Developers/devs"],
        Grant("oidc:bob", "prod", "ClusterRole/view"): ["Ops/devs"],
    }
    assert result.lost == {Grant("oidc:ada", "ws", "ClusterRole/edit"): ["Developers/devs"]}
    assert result.refused == ["root (ClusterRole/cluster-admin is not allowed)"]
    assert len(result.invalid_patterns) == 1 and result.invalid_patterns[0].startswith("bad: ")
    out = result.as_json()
    assert out["gained"][0] == {
        "subject": "oidc:ada",
        "namespace": "prod",
        "role": "ClusterRole/view",
        "via": ["Developers/devs"],
    }
    assert out["lost"][0]["subject"] == "oidc:ada" and out["refused"] and out["invalidPatterns"]
    text = render(result, "ws").splitlines()
    assert text[0] == "Workspace ws: 2 subject(s) would gain access, 1 would lose some."
    assert text[1].split() == ["SUBJECT", "ROLE", "NAMESPACE", "VIA", "GROUP/MAPPING"]
    assert text[2].split() == ["+", "oidc:ada", "ClusterRole/view", "prod", "Developers/devs"]
    assert text[4].split() == ["-", "oidc:ada", "ClusterRole/edit", "ws", "Developers/devs"]
    assert text[5] == "refused mapping: root (ClusterRole/cluster-admin is not allowed)"
    assert text[6].startswith("invalid pattern (matches no group): bad: ")


def test_no_change() -> None:
    result = preview(Snapshot("ws", GROUPS, USERS, LABELS, *ALLOWED), CURRENT, changed_spec(CURRENT, [DEVS]))
    assert result.gained == {} and result.lost == {}
    assert render(result, "ws").splitlines()[1] == "No change in access."


def test_compare_merges_sources() -> None:
    grant = Grant("s", "ns", "ClusterRole/view")
    assert compare({}, {grant: ["b/m", "a/m", "a/m"]}).gained == {grant: ["a/m", "b/m"]}


def test_group_without_display_name_uses_its_id() -> None:
    groups = [({"metadata": {"name": "grp-x"}, "spec": {}}, [{"value": "usr-ada"}])]
    changed = changed_spec(CURRENT, [{"name": "all", "groups": {"pattern": ".*"}, "clusterRole": "view"}])
    result = preview(Snapshot("ws", groups, USERS, LABELS, *ALLOWED), CURRENT, changed)
    assert result.gained == {Grant("oidc:ada", "ws", "ClusterRole/view"): ["grp-x/all"]}
