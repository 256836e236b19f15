"""The API and the operator under their own ServiceAccounts (deploy/rbac), with the RBAC
authorizer on: everything they need works, and what they must not do is refused by the
API server itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from starlette.testclient import TestClient

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane, free_port
from scim_devenv.crds import REPO_ROOT, install_crds

from .helpers import condition, create_user, create_workspace, eventually, get_workspace, workspace_with_token

pytestmark = pytest.mark.cluster
RBAC_DIR = REPO_ROOT / "deploy" / "rbac"
BASE = c.SCIM_BASE_PATH
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def install_rbac(cp: ControlPlane) -> None:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scim-system"}}
    ]
    for path in sorted(RBAC_DIR.glob("*.yaml")):
        objects += [o for o in yaml.safe_load_all(path.read_text()) if o]
    cp.apply(objects)


def sa_kubeconfig(cp: ControlPlane, name: str, tmp: Path) -> Path:
    return cp.token_kubeconfig(cp.service_account_token("scim-system", name), tmp / f"{name}.kubeconfig")


def _forbidden(call: Any) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False


# ------------------------------------------------------------------------------ the API


def test_api_service_account(control_plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch, operator_running: None) -> None:  # fmt: skip
    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    install_rbac(control_plane)
    kubeconfig = sa_kubeconfig(control_plane, "scim-api", tmp_path)
    token = workspace_with_token(kube, namespace)
    create_user(kube, namespace, "usr-sa", "sa@example.com")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with TestClient(create_app(ApiSettings(rate_per_second=1e6, rate_burst=10**6))) as tc:
        eventually(lambda: tc.get("/readyz").status_code == 200)
        h = {"Authorization": f"Bearer {token}"}
        eventually(lambda: tc.get(f"{BASE}/Users/usr-sa", headers=h).status_code == 200)
        r = tc.post(
            f"{BASE}/Groups", headers=h, json={"displayName": "SA group", "members": [{"value": "usr-sa"}]}
        )
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        many = [{"value": f"m{i}"} for i in range(1500)]  # spills into a ScimMemberShard
        ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": many}]}
        assert tc.patch(f"{BASE}/Groups/{gid}", headers=h, json=ops).status_code == 204
        assert (
            tc.put(f"{BASE}/Groups/{gid}", headers=h, json={"displayName": "SA group 2"}).status_code == 200
        )
        active = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
        assert tc.patch(f"{BASE}/Users/usr-sa", headers=h, json=active).status_code == 204
        assert tc.get(f"{BASE}/Groups", headers=h).status_code == 200
        assert tc.delete(f"{BASE}/Groups/{gid}", headers=h).status_code == 204
        # the IdP trace reaches the workspace status under the API's own identity
        traced = eventually(lambda: get_workspace(kube, namespace).get("status", {}).get("tokenUsage"))
        assert traced[0]["fingerprint"] == get_workspace(kube, namespace)["status"]["tokenFingerprint"]
        errors = tc.app.state.metrics.registry.get_sample_value(
            "scim_api_workspace_status_writes_total", {"result": "error"}
        )
        assert not errors
    api_sa = config.new_client_from_config(config_file=str(kubeconfig))
    core, rbac = client.CoreV1Api(api_sa), client.RbacAuthorizationV1Api(api_sa)
    assert _forbidden(lambda: core.list_namespaced_secret(namespace))
    assert _forbidden(lambda: core.read_namespaced_secret("scim-token", namespace))
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="sneaky"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
        subjects=[client.RbacV1Subject(kind="User", name="x", api_group="rbac.authorization.k8s.io")],
    )
    assert _forbidden(lambda: rbac.create_namespaced_role_binding(namespace, binding))
    # the workspace status, never the workspace itself
    assert _forbidden(lambda: client.CustomObjectsApi(api_sa).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws", {"metadata": {"labels": {"x": "y"}}},
    ))  # fmt: skip
    assert _forbidden(lambda: client.CustomObjectsApi(api_sa).create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.USER_KIND, "metadata": {"name": "u-new"}, "spec": {"userName": "n"}},
    ))  # fmt: skip


# ------------------------------------------------------------------------------ the operator


class OperatorProcess:
    """``scim-operator`` as a child process with its own kubeconfig, metrics and liveness."""

    def __init__(
        self, kubeconfig: Path, log: Path, allowed: str, identity: str = "scim-operator-test", **env: str
    ) -> None:
        self.metrics = free_port()
        self.liveness = free_port()
        self.identity = identity
        self.log = log
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "SCIM_METRICS_PORT": str(self.metrics),
            "SCIM_ALLOWED_CLUSTER_ROLES": allowed,
            "SCIM_WORKSPACE_RESYNC_SECONDS": "2",
            "SCIM_LEASE_NAMESPACE": "scim-system",
            **env,
        }  # fmt: skip (``env`` may override)
        args = [
            str(Path(sys.executable).parent / "scim-operator"),
            "--liveness",
            f"http://127.0.0.1:{self.liveness}/healthz",
            "--identity",
            identity,
            "--log-format",
            "plain",
        ]
        self.proc = subprocess.Popen(
            args,
            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def _exposition(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=2) as r:
                text: str = r.read().decode()
                return text
        except OSError:
            return None  # not serving yet

    def metric(self, name: str) -> float:
        """Summed over its labels (0 for a labelled metric with no series yet); -1 while the
        endpoint does not answer."""
        text = self._exposition()
        if text is None:
            return -1.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def exposes(self, name: str) -> bool:
        """Whether a sample of ``name`` is served: a check that it is 0 means something only then."""
        text = self._exposition() or ""
        return any(line.startswith((name + " ", name + "{")) for line in text.splitlines())

    def live(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness}/healthz", timeout=2) as r:
            return bool(r.status == 200)

    def stop(self, show_log: bool = False) -> None:
        """Stop it; with ``show_log``, print its log's tail (pytest shows it on a failure)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if show_log and self.log.exists():
            print(self.log.name, self.log.read_text()[-3000:])


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[tuple[ControlPlane, client.ApiClient]]:
    """A control plane of its own: no other operator watches it."""
    with ControlPlane() as cp:
        install_crds(cp)
        install_rbac(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        yield cp, kube


def _rv(kube: client.ApiClient, ns: str) -> dict[str, str]:
    out = {f"rb/{rb.metadata.name}": rb.metadata.resource_version
           for rb in client.RbacAuthorizationV1Api(kube).list_namespaced_role_binding(ns).items}  # fmt: skip
    api = client.CustomObjectsApi(kube)
    for plural in (c.GROUP_PLURAL, c.WORKSPACE_PLURAL):
        for o in api.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, plural)["items"]:
            out[f"{plural}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
    return out


def _as_operator_in_new_namespace(cp: ControlPlane, kube: client.ApiClient, ns: str, tmp_path: Path) -> Path:
    """The operator ServiceAccount's kubeconfig, and a fresh workspace namespace for it."""
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    return sa_kubeconfig(cp, "scim-operator", tmp_path)


def test_operator_service_account_binds_only_allowed_roles(
    private_cluster: tuple[ControlPlane, client.ApiClient], tmp_path: Path
) -> None:
    cp, kube = private_cluster
    ns = "acme"
    kubeconfig = _as_operator_in_new_namespace(cp, kube, ns, tmp_path)
    create_workspace(kube, ns, roleMappings=[
        {"name": "viewers", "groups": {"displayName": "Viewers"}, "clusterRole": "view"},
        {"name": "root", "groups": {"displayName": "Root"}, "clusterRole": "cluster-admin"},
    ])  # fmt: skip
    create_user(kube, ns, "usr-1", "one@example.com")
    api = client.CustomObjectsApi(kube)
    for name, display in (("grp-viewers", "Viewers"), ("grp-root", "Root")):
        api.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
            "spec": {"displayName": display, "members": [{"value": "usr-1"}]},
        })  # fmt: skip
    # the operator's own allow-list lets cluster-admin through: the API server must stop it
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", allowed="view,edit,cluster-admin")
    rbac = client.RbacAuthorizationV1Api(kube)
    try:
        eventually(lambda: rbac.read_namespaced_role_binding("scim-grp-viewers-viewers", ns), timeout=40)

        def rejected() -> dict[str, Any] | None:
            g = api.get_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, "grp-root")
            cond = condition(g, "Synced")
            return cond if cond and cond["reason"] == "BindingRejected" else None

        assert "cluster-admin" in eventually(rejected, timeout=40)["message"]
        with pytest.raises(ApiException) as err:
            rbac.read_namespaced_role_binding("scim-grp-root-root", ns)
        assert err.value.status == 404
        assert op.live()
        # the operator also generated the token Secret under its own identity
        eventually(lambda: client.CoreV1Api(kube).read_namespaced_secret("scim-token", ns))
        # and wrote the user's status (Ready, groups)
        eventually(
            lambda: (
                api.get_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.USER_PLURAL, "usr-1")
                .get("status", {})
                .get("groups")
                == 2
            )
        )
        # and rotates it on request under its own identity (patching the Secret)
        from scim_operator.token_policy import ROTATE_REQUEST

        from .helpers import read_token

        old = read_token(kube, ns)
        api.patch_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            ns,
            c.WORKSPACE_PLURAL,
            "ws",
            {"metadata": {"annotations": {ROTATE_REQUEST: "sa"}}},
        )
        eventually(lambda: (t := read_token(kube, ns)) is not None and t != old, timeout=30)
    finally:
        op.stop()
    print(Path(tmp_path / "operator.log").read_text()[-3000:])


def test_restart_without_churn(
    private_cluster: tuple[ControlPlane, client.ApiClient], tmp_path: Path
) -> None:
    cp, kube = private_cluster
    ns = "calm"
    kubeconfig = _as_operator_in_new_namespace(cp, kube, ns, tmp_path)
    create_workspace(
        kube, ns, roleMappings=[{"name": "all", "groups": {"pattern": ".*"}, "clusterRole": "view"}]
    )
    api = client.CustomObjectsApi(kube)
    for i in range(20):
        create_user(kube, ns, f"usr-{i}", f"u{i}@example.com")
    for i in range(10):
        api.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i}"},
            "spec": {"displayName": f"G{i}", "members": [{"value": f"usr-{j}"} for j in range(i, i + 5)]},
        })  # fmt: skip
    op = OperatorProcess(kubeconfig, tmp_path / "op1.log", allowed="view,edit")
    try:
        eventually(
            lambda: len(client.RbacAuthorizationV1Api(kube).list_namespaced_role_binding(ns).items) == 10,
            timeout=40,
        )
        eventually(lambda: all(
            condition(g, "Ready") for g in api.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL)["items"]
        ))  # fmt: skip
        time.sleep(3)  # let the workspace status settle too
    finally:
        op.stop()
    before = _rv(kube, ns)
    op = OperatorProcess(kubeconfig, tmp_path / "op2.log", allowed="view,edit")
    try:
        eventually(lambda: op.metric("scim_operator_reconciles_total") >= 10, timeout=40)
        time.sleep(3)
        assert op.metric("scim_operator_binding_writes_total") == 0
        assert op.metric("scim_operator_managed_rolebindings") == 10
        assert _rv(kube, ns) == before
    finally:
        op.stop()
