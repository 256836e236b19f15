"""``kubectl scim``: the installed console script (and kubectl itself, finding it on PATH)
against the real control plane with the real operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from scim_core import constants as c
from scim_devenv import binaries
from scim_devenv.controlplane import ControlPlane
from scim_operator.token_policy import ROTATE_REQUEST

from .helpers import create_user, create_workspace, custom, eventually, get_workspace, read_token

pytestmark = pytest.mark.cluster
SCRIPT = Path(sys.executable).with_name("kubectl-scim")
MAPPINGS = [{"name": "devs", "groups": {"displayName": "Developers"}, "clusterRole": "edit"}]


def plugin(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the installed ``kubectl-scim`` with the control plane's kubeconfig."""
    result = subprocess.run(
        [str(SCRIPT), *args, "--kubeconfig", str(cp.kubeconfig)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr
    return result


def as_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(plugin(cp, *args, "-o", "json").stdout)


def group(kube: client.ApiClient, ns: str, name: str, display: str, members: list[str]) -> None:
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
        "spec": {"displayName": display, "members": [{"value": m} for m in members]},
    })  # fmt: skip


def binding_subjects(kube: client.ApiClient, ns: str, name: str) -> list[str]:
    try:
        rb = client.RbacAuthorizationV1Api(kube).read_namespaced_role_binding(name, ns)
    except client.ApiException:
        return []
    return sorted(s.name for s in rb.subjects or [])


@pytest.fixture
def ws(kube: client.ApiClient, namespace: str, operator_running: None) -> str:
    """A workspace with a token, users ada (in Developers) and bob (in Ops), and ada's
    binding made by the operator."""
    create_workspace(kube, namespace, subjects={"prefix": "oidc:"}, roleMappings=MAPPINGS)
    create_user(kube, namespace, "usr-ada", "ada@example.com")
    create_user(kube, namespace, "usr-bob", "bob@example.com")
    group(kube, namespace, "grp-dev", "Developers", ["usr-ada"])
    group(kube, namespace, "grp-ops", "Ops", ["usr-bob"])
    eventually(lambda: binding_subjects(kube, namespace, "scim-grp-dev-devs") == ["oidc:ada@example.com"])
    eventually(lambda: (get_workspace(kube, namespace).get("status") or {}).get("tokenFingerprint"))
    return namespace


def test_kubectl_finds_the_plugin(control_plane: ControlPlane, ws: str) -> None:
    kubectl = binaries.ensure(["kubectl"])["kubectl"]
    env = {**os.environ, "PATH": f"{SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        [str(kubectl), "plugin", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert str(SCRIPT) in listed.stdout, listed.stdout + listed.stderr
    out = subprocess.run(
        [str(kubectl), "scim", "status", "-n", ws, "--kubeconfig", str(control_plane.kubeconfig)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:3] == ["NAMESPACE", "WORKSPACE", "TOKEN"]


def test_status(control_plane: ControlPlane, kube: client.ApiClient, ws: str) -> None:
    def counted() -> Any:
        [view] = as_json(control_plane, "status", "-n", ws)
        return view if view["groups"] == 2 and view["users"] == 2 else None

    view = eventually(counted)
    status = get_workspace(kube, ws)["status"]
    assert view["namespace"] == ws and view["name"] == "ws"
    assert view["token"]["fingerprint"] == status["tokenFingerprint"] and view["token"]["published"] is True
    assert any(cond["type"] == "Ready" and cond["status"] == "True" for cond in view["conditions"])
    assert view["idp"]["lastRequestTime"] is None or isinstance(view["idp"]["lastRequestTime"], str)
    text = plugin(control_plane, "status", "-n", ws).stdout.splitlines()
    assert len(text) == 2 and text[1].split()[:2] == [ws, "ws"] and "Ready" in text[1]
    everywhere = [v["namespace"] for v in as_json(control_plane, "status")]
    assert ws in everywhere


def test_access_follows_groups_mappings_bindings_roles(control_plane: ControlPlane, ws: str) -> None:
    [ada] = as_json(control_plane, "access", "ada@example.com", "-n", ws)
    assert ada["id"] == "usr-ada" and ada["subject"] == "oidc:ada@example.com" and ada["active"] is True
    [dev] = ada["groups"]
    assert dev["displayName"] == "Developers"
    [mapping] = dev["mappings"]
    assert mapping["name"] == "devs" and mapping["role"] == "ClusterRole/edit"
    assert mapping["bindings"] == [
        {"namespace": ws, "name": "scim-grp-dev-devs", "role": "ClusterRole/edit", "holdsSubject": True}
    ]
    allowed = {(a["namespace"], a["check"]): a["allowed"] for a in ada["access"]}
    assert allowed[(ws, "create pods")] is True and allowed[(ws, "create deployments.apps")] is True
    # bob's group matches no mapping: no binding, and the API server agrees he may do nothing
    [bob] = as_json(control_plane, "access", "usr-bob", "-n", ws)
    assert [g["mappings"] for g in bob["groups"]] == [[]]
    assert not any(a["allowed"] for a in bob["access"] if a["check"] in ("create pods", "delete pods"))
    text = plugin(control_plane, "access", "ada@example.com", "-n", ws).stdout
    assert "mapping devs -> ClusterRole/edit" in text and f"RoleBinding {ws}/scim-grp-dev-devs" in text
    missing = plugin(control_plane, "access", "nobody@example.com", "-n", ws, check=False)
    assert missing.returncode == 1 and "no ScimUser" in missing.stderr


def test_preview_shows_gains_and_losses_without_applying(
    control_plane: ControlPlane, kube: client.ApiClient, ws: str, tmp_path: Path
) -> None:
    stored = get_workspace(kube, ws)["spec"]
    changed = tmp_path / "mapping.yaml"
    changed.write_text(
        yaml.safe_dump_all([{"name": "devs", "groups": {"displayName": "Ops"}, "clusterRole": "view"}])
    )
    result = as_json(control_plane, "preview", ws, "-f", str(changed))
    assert result["gained"] == [
        {"subject": "oidc:bob@example.com", "namespace": ws, "role": "ClusterRole/view", "via": ["Ops/devs"]}
    ]
    assert result["lost"] == [
        {
            "subject": "oidc:ada@example.com",
            "namespace": ws,
            "role": "ClusterRole/edit",
            "via": ["Developers/devs"],
        }
    ]
    assert get_workspace(kube, ws)["spec"] == stored  # nothing applied
    # a mapping the operator would refuse is named; an invalid file is an error, not a trace
    refused = tmp_path / "admin.yaml"
    refused.write_text(
        yaml.safe_dump({"name": "root", "groups": {"pattern": ".*"}, "clusterRole": "cluster-admin"})
    )
    result = as_json(control_plane, "preview", ws, "-f", str(refused))
    assert result["gained"] == [] and result["refused"] == ["root (ClusterRole/cluster-admin is not allowed)"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngroups: {}\n")
    out = plugin(control_plane, "preview", ws, "-f", str(bad), check=False)
    assert out.returncode == 1 and "the API server would refuse these mappings" in out.stderr
    assert "set exactly one of displayName, externalId, pattern" in out.stderr  # the CRD's CEL rule
    bad.write_text("name: x\ngroups: {displayName: X}\nclusterRole: 7\n")
    out = plugin(control_plane, "preview", ws, "-f", str(bad), check=False)
    assert out.returncode == 1 and "invalid role mapping: clusterRole" in out.stderr
    text = subprocess.run(
        [str(SCRIPT), "preview", ws, "-f", "-", "--kubeconfig", str(control_plane.kubeconfig)],
        input=changed.read_text(), capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "1 subject(s) would gain access, 1 would lose some" in text


def test_token_prints_once_with_a_warning(
    control_plane: ControlPlane, kube: client.ApiClient, ws: str
) -> None:
    out = plugin(control_plane, "token", ws)
    assert out.stdout == f"{read_token(kube, ws)}\n"
    assert out.stderr.startswith("warning:") and "bearer token" in out.stderr
    missing = plugin(control_plane, "token", "no-such-namespace", check=False)
    assert missing.returncode == 1 and "no ScimWorkspace" in missing.stderr and not missing.stdout


def test_rotate_token_waits_for_the_new_fingerprint(
    control_plane: ControlPlane, kube: client.ApiClient, ws: str
) -> None:
    before = get_workspace(kube, ws)
    old = before["status"]["tokenFingerprint"]
    old_token = read_token(kube, ws)
    out = plugin(control_plane, "rotate-token", ws)
    after = get_workspace(kube, ws)
    new = after["status"]["tokenFingerprint"]
    assert new != old and f"token rotated: {old} -> {new}" in out.stdout
    assert after["metadata"]["annotations"][ROTATE_REQUEST]
    assert "previous token stays valid until" in out.stdout
    assert read_token(kube, ws) != old_token
