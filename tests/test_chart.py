"""The Helm chart (charts/scim-kube): it lints strictly, every object it renders is accepted
by the real API server (with Pod Security "restricted" enforced on its pods), its RBAC is
exactly the tested deploy/rbac, its pods are hardened, and the commands it runs are the
project's installed entry points."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scim_core.constants import GROUP as SCIM_GROUP
from scim_devenv import binaries, processes
from scim_devenv.controlplane import ControlPlane, ControlPlaneError, free_port
from scim_devenv.crds import CRD_DIR, REPO_ROOT

from .helpers import eventually

CHART = REPO_ROOT / "charts" / "scim-kube"
RBAC_DIR = REPO_ROOT / "deploy" / "rbac"
NAMESPACE = "scim-system"
RELEASE = "scim-kube"  # fullname == release name, so objects are called scim-kube-api, ...
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
VALUE_SETS: list[Path | None] = [None, *CI_VALUES]
VALUE_IDS = ["default", *(p.stem for p in CI_VALUES)]
FIELD_MANAGER = "scim-chart-test"
POD_USER = 10001

# The Prometheus Operator's CRD is not ours to ship; the smallest stand-in lets the API
# server validate the chart's ServiceMonitor envelope (apiVersion, kind, metadata).
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }}},
        }],
    },
}  # fmt: skip


def _stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    """A Prometheus Operator CRD reduced to its envelope, like ``SERVICE_MONITOR_CRD``."""
    crd = json.loads(json.dumps(SERVICE_MONITOR_CRD))
    crd["metadata"]["name"] = f"{plural}.monitoring.coreos.com"
    crd["spec"]["names"] = {"kind": kind, "plural": plural, "singular": kind.lower()}
    return crd


PROMETHEUS_RULE_CRD = _stand_in_crd("PrometheusRule", "prometheusrules")
STAND_IN_CRDS = (SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD)


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def helm() -> Path:
    return binaries.ensure(["helm"])["helm"]


def run_helm(helm: Path, *args: str | Path) -> str:
    result = subprocess.run([str(helm), *map(str, args)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"helm {' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def values_args(values: Path | None) -> list[str | Path]:
    return [] if values is None else ["-f", values]


def render(helm: Path, values: Path | None = None, *extra: str) -> list[dict[str, Any]]:
    out = run_helm(helm, "template", RELEASE, CHART, "--namespace", NAMESPACE, *values_args(values), *extra)
    return [o for o in yaml.safe_load_all(out) if o]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, (
        f"expected one {kind}/{name}, got {[o['metadata']['name'] for o in find(objects, kind)]}"
    )
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders: Deployment templates and bare (hook) Pods."""
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            yield f"Pod/{o['metadata']['name']}", o["spec"]


def container(objects: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    containers = one(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def load_values(values: Path | None) -> dict[str, Any]:
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

    def merge(into: dict[str, Any], new: dict[str, Any]) -> None:
        for k, v in new.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    if values is not None:
        merge(merged, yaml.safe_load(values.read_text()))
    return merged


def rule_key(rule: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(sorted(rule.get(field) or []))
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
    )


def rules_of(role: dict[str, Any]) -> list[tuple[tuple[str, ...], ...]]:
    return sorted(rule_key(r) for r in role.get("rules") or [])


def deploy_rbac(file: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((RBAC_DIR / file).read_text()) if o]


# ------------------------------------------------------------------------------ (a) lint


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_helm_lint_strict(helm: Path, values: Path | None) -> None:
    out = run_helm(helm, "lint", "--strict", CHART, *values_args(values))
    assert "0 chart(s) failed" in out, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_ci_values_exist() -> None:
    assert len(CI_VALUES) >= 2, "charts/scim-kube/ci/ needs at least two values files"


def test_schema_covers_every_value() -> None:
    """values.schema.json declares every key of values.yaml and of the ci values files."""
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = schema
            for part in ref[2:].split("/"):
                node = node[part]
        return node

    def walk(value: Any, node: dict[str, Any], where: str) -> None:
        node = resolve(node)
        if not isinstance(value, dict) or not value:
            return
        props = node.get("properties")
        if props is None:  # a free-form map (labels, annotations, affinity, ...)
            assert node.get("type") == "object", f"{where}: not declared as an object"
            return
        for key, sub in value.items():
            assert key in props, f"{where}.{key} is not in values.schema.json"
            walk(sub, props[key], f"{where}.{key}")

    assert schema.get("additionalProperties") is False
    for values in VALUE_SETS:
        walk(load_values(values), schema, "values")


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("allowedClusterRoles[0]=*", "allowedClusterRoles"),
        ("allowedRoles[0]=*", "allowedRoles"),
        ("api.replicas=3", "replicas"),  # a typo of replicaCount
        ("operator.metricsPort=0", "metricsPort"),
        ("ingress.enabled=true", "host"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("api.metricsPort=0", "metricsPort"),
        ("monitoring.prometheusRule.for=soon", "for"),
        ("monitoring.serviceMonitor.enable=true", "enable"),  # a typo of enabled
        ("operator.groupWorkers=0", "groupWorkers"),  # would start no group reconcile at all
        ("operator.userWorkers=65", "userWorkers"),
        ("operator.groupWorkers=2.5", "groupWorkers"),
        ("operator.workspaceResyncSeconds=0", "workspaceResyncSeconds"),
        ("operator.idpSilenceSeconds=-1", "idpSilenceSeconds"),
        ("api.statusIntervalSeconds=0", "statusIntervalSeconds"),
        ("api.ratePerSecond=soon", "ratePerSecond"),
        ("api.maxBodyBytes=1023", "maxBodyBytes"),
        ("api.port=65536", "port"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, override: str, complaint: str) -> None:
    result = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--set", override],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


# ------------------------------------------------------------------------------ (b) real API server


def _install_service_monitor_crd(cp: ControlPlane) -> None:
    """The scim and Kopf peering CRDs are installed by conftest (from the models, like
    deploy/crds); the chart's copies are only dry-run here, so a stale copy can never change
    the session's CRDs under other tests. The ServiceMonitor and PrometheusRule stand-ins are
    really installed."""
    cp.apply(list(STAND_IN_CRDS))
    for crd in STAND_IN_CRDS:
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}")


def _restricted_namespace(cp: ControlPlane) -> None:
    """scim-system with Pod Security "restricted" enforced (own field manager, so other
    tests applying the same namespace neither conflict with nor drop these labels)."""
    namespace = {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }},
    }  # fmt: skip
    cp.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        input=yaml.safe_dump(namespace),
    )


def _as_pod(deployment: dict[str, Any]) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-pss",
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


@pytest.mark.cluster
@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_rendered_objects_accepted_by_api_server(
    control_plane: ControlPlane, helm: Path, values: Path | None
) -> None:
    rendered = render(helm, values, "--include-crds")
    crds = find(rendered, "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == sorted(p.stem for p in CRD_DIR.glob("*.yaml"))
    _install_service_monitor_crd(control_plane)
    # Pod Security "restricted" is enforced on Pods (Deployments only get warnings), so each
    # pod template is also sent as a bare Pod below.
    _restricted_namespace(control_plane)
    objects = [o for o in rendered if o["kind"] != "CustomResourceDefinition"]
    # --force-conflicts: the CRDs already exist (conftest's field manager); forcing changes
    # nothing in a dry run, and an empty `categories: []` would otherwise count as a conflict.
    out = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}", "-n", NAMESPACE, "-f", "-",
        input=yaml.safe_dump_all(crds + objects),
    )  # fmt: skip
    accepted = [line for line in out.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(crds) + len(objects), out
    pods = [_as_pod(d) for d in find(objects, "Deployment")]
    out = control_plane.kubectl(
        "create", "--dry-run=server", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(pods)
    )
    assert out.count("(server dry run)") == len(pods), out
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    assert {"Role", "RoleBinding"} <= kinds  # the operator's leader-election Lease


@pytest.mark.cluster
def test_restricted_namespace_refuses_an_unhardened_pod(control_plane: ControlPlane, helm: Path) -> None:
    """The check above has teeth: the same dry-run refuses a pod that drops its hardening."""
    deployment = one(render(helm), "Deployment", f"{RELEASE}-api")
    pod = _as_pod(deployment)
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    _restricted_namespace(control_plane)
    with pytest.raises(
        ControlPlaneError, match=r"violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation"
    ):
        control_plane.kubectl(
            "create", "--dry-run=server", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(pod)
        )


def _command_env(deployment: dict[str, Any], **overrides: str) -> tuple[list[str], dict[str, str]]:
    """A Deployment's command (entry point resolved in this venv) and env, for a local process."""
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    command = [str(Path(sys.executable).parent / c["command"][0]), *c["command"][1:]]
    return command, {**os.environ, **env_of(c), **overrides}


def heredocs(text: str) -> list[str]:
    """The YAML of every `<<'YAML'` here-document in a text (NOTES output, Markdown)."""
    blocks = re.findall(r"<<'YAML'\n(.*?)\n\s*YAML\n", text, re.S)
    return [textwrap.dedent(b) for b in blocks]


def _http(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.cluster
def test_helm_install_then_components_run_as_the_chart_says(helm: Path, tmp_path: Path) -> None:
    """`helm install` into a fresh API server (CRDs from crds/, the peering object, RBAC), then
    the operator and the API run with the chart's commands, env and ServiceAccounts: a
    workspace gets a token, the API serves it, a group becomes a RoleBinding, and the
    `helm test` script passes. Pods cannot run here (no kubelet), so the processes stand in.
    `helm uninstall` keeps the CRDs (Helm never deletes crds/)."""
    with ControlPlane() as cp:
        kubeconfig = ["--kubeconfig", str(cp.kubeconfig)]
        notes = run_helm(helm, "install", RELEASE, CHART, "-n", NAMESPACE, "--create-namespace", *kubeconfig)
        rendered = render(helm)
        tokens = {
            c: cp.token_kubeconfig(
                cp.service_account_token(NAMESPACE, f"{RELEASE}-{c}"), tmp_path / f"{c}.kc"
            )
            for c in ("api", "operator")
        }
        metrics, liveness, api_port, api_metrics = free_port(), free_port(), free_port(), free_port()
        op_cmd, op_env = _command_env(
            one(rendered, "Deployment", f"{RELEASE}-operator"),
            KUBECONFIG=str(tokens["operator"]), SCIM_METRICS_PORT=str(metrics), SCIM_LOG_FORMAT="plain",
        )  # fmt: skip
        op_cmd[op_cmd.index("--liveness") + 1] = f"http://127.0.0.1:{liveness}/healthz"
        api_cmd, api_env = _command_env(
            one(rendered, "Deployment", f"{RELEASE}-api"),
            KUBECONFIG=str(tokens["api"]), SCIM_HOST="127.0.0.1", SCIM_PORT=str(api_port), SCIM_LOG_FORMAT="plain",
            SCIM_API_METRICS_PORT=str(api_metrics),
        )  # fmt: skip
        procs = [
            processes.spawn(op_cmd, tmp_path / "operator.log", env=op_env),
            processes.spawn(api_cmd, tmp_path / "api.log", env=api_env),
        ]
        base = f"http://127.0.0.1:{api_port}"
        try:
            # the workspace and user exactly as NOTES.txt tells the reader to create them
            cp.kubectl("create", "namespace", "acme")
            documented = [o for block in heredocs(notes) for o in yaml.safe_load_all(block) if o]
            assert [o["kind"] for o in documented] == ["ScimWorkspace", "ScimUser"]
            cp.apply([{**o, "metadata": {"namespace": "acme", **o["metadata"]}} for o in documented])
            # the README quickstart's and the OneLogin guide's manifests are valid too
            for doc in ("README.md", "docs/idp/onelogin.md"):
                for block in heredocs((REPO_ROOT / doc).read_text()):
                    cp.kubectl("apply", "--dry-run=server", "-n", "acme", "-f", "-", input=block)
            cp.kubectl("-n", "acme", "wait", "scimworkspace/acme", "--for=condition=Ready", "--timeout=60s")
            token = base64.b64decode(
                cp.kubectl("-n", "acme", "get", "secret", "scim-token", "-o", "jsonpath={.data.token}")
            ).decode()
            spc = f"{base}/api/auth/scim/v2/ServiceProviderConfig"
            eventually(lambda: _http(spc, token) == 200, timeout=30)
            assert _http(f"{base}/healthz") == 200 and _http(f"{base}/readyz") == 200
            assert _http(f"http://127.0.0.1:{liveness}/healthz") == 200
            assert _http(f"http://127.0.0.1:{api_metrics}/metrics") == 200
            assert _http(f"http://127.0.0.1:{metrics}/metrics") == 200
            # a group pushed over SCIM becomes a RoleBinding through the chart's `bind` rule
            body = json.dumps({"displayName": "Developers", "members": [{"value": "alice"}]}).encode()
            req = urllib.request.Request(
                f"{base}/api/auth/scim/v2/Groups", data=body, method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
            )  # fmt: skip
            with urllib.request.urlopen(req, timeout=10) as r:
                gid = json.loads(r.read())["id"]
            binding = eventually(
                lambda: cp.kubectl("-n", "acme", "get", "rolebinding", f"scim-{gid}-developers", "-o", "json", check=False),
                timeout=30,
            )  # fmt: skip
            assert json.loads(binding)["roleRef"]["name"] == "view"  # NOTES: the first allowed role
            assert json.loads(binding)["subjects"][0]["name"] == "oidc:alice@example.com"
            # the `helm test` hook's script, against the same API
            script = one(rendered, "Pod", f"{RELEASE}-test")["spec"]["containers"][0]["args"][0]

            def hook(**env: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([sys.executable, "-c", script], env={**os.environ, "SCIM_SERVICE_URL": base, **env},
                                      capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

            assert hook(SCIM_TOKEN=token).returncode == 0
            assert hook().returncode == 0  # no token: readiness and the 401 check only
            assert hook(SCIM_TOKEN="scim_" + "x" * 43).returncode == 1
        finally:
            for proc in procs:
                processes.stop(proc)
            print(processes.log_tail(tmp_path / "operator.log"), processes.log_tail(tmp_path / "api.log"))
        run_helm(helm, "uninstall", RELEASE, "-n", NAMESPACE, *kubeconfig)
        crds = cp.kubectl("get", "crd", "-o", "name").split()
        assert f"customresourcedefinition.apiextensions.k8s.io/scimworkspaces.{SCIM_GROUP}" in crds
        assert cp.kubectl("get", "clusterrole", f"{RELEASE}-operator", check=False) == ""


# ------------------------------------------------------------------------------ (c) RBAC


def test_chart_crds_are_copies_of_deploy_crds() -> None:
    """crds/ holds exactly deploy/crds (regenerate with `make crds`, then copy)."""
    chart_crds = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    deploy_crds = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert sorted(chart_crds) == sorted(deploy_crds)
    for name, text in deploy_crds.items():
        assert chart_crds[name] == text, (
            f"charts/scim-kube/crds/{name} differs from deploy/crds: copy it again"
        )
    # leadership is a coordination.k8s.io Lease: no Kopf peering CRD is shipped
    assert not any("kopf.dev" in name for name in chart_crds)


def test_chart_user_provisioning_rbac_is_opt_in(helm: Path) -> None:
    """``api.userProvisioning.enabled`` adds exactly deploy/rbac/optional/api-user-provisioning.yaml
    (``create`` on ScimUsers); by default nothing lets the API create a user."""
    name = f"{RELEASE}-api-user-provisioning"
    assert not find(render(helm), "ClusterRole", name)
    rendered = render(helm, None, "--set", "api.userProvisioning.enabled=true")
    expected = deploy_rbac("optional/api-user-provisioning.yaml")
    want = next(o for o in expected if o["kind"] == "ClusterRole")
    assert rules_of(one(rendered, "ClusterRole", name)) == rules_of(want)
    binding = one(rendered, "ClusterRoleBinding", name)
    assert binding["roleRef"]["name"] == name
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-api", "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize(("component", "file"), [("api", "api.yaml"), ("operator", "operator.yaml")])
def test_chart_rbac_equals_deploy_rbac(helm: Path, component: str, file: str) -> None:
    """With default values the chart grants exactly what tests/test_least_privilege.py tests."""
    rendered = render(helm)
    name = f"{RELEASE}-{component}"
    expected = deploy_rbac(file)
    want = next(o for o in expected if o["kind"] == "ClusterRole")
    got = one(rendered, "ClusterRole", name)
    assert rules_of(got) == rules_of(want)
    assert len(got["rules"]) == len(want["rules"])
    binding = one(rendered, "ClusterRoleBinding", name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": name,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]
    want_binding = next(o for o in expected if o["kind"] == "ClusterRoleBinding")
    assert len(want_binding["subjects"]) == 1 and want_binding["subjects"][0]["kind"] == "ServiceAccount"
    one(rendered, "ServiceAccount", name)
    deployment = one(rendered, "Deployment", name)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
    # the operator's only namespaced grant: its leader-election Lease, as in deploy/rbac
    want_roles = [o for o in expected if o["kind"] == "Role"]
    got_roles = [o for o in find(rendered, "Role") if o["metadata"]["name"].startswith(name)]
    assert len(got_roles) == len(want_roles) == (1 if component == "operator" else 0)
    for got_role, want_role in zip(got_roles, want_roles, strict=True):
        assert got_role["metadata"]["namespace"] == NAMESPACE
        lease = f"{RELEASE}-operator"
        assert rules_of(got_role) == rules_of(
            {"rules": [{**r, **({"resourceNames": [lease]} if r.get("resourceNames") else {})}
                       for r in want_role["rules"]]}
        )  # fmt: skip
        got_rb = one(rendered, "RoleBinding", got_role["metadata"]["name"])
        assert got_rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                     "name": got_role["metadata"]["name"]}  # fmt: skip
        assert got_rb["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]
    # nothing else in the chart grants anything
    assert {o["metadata"]["name"] for o in find(rendered, "ClusterRole")} == {
        f"{RELEASE}-api",
        f"{RELEASE}-operator",
    }
    assert {o["metadata"]["name"] for o in find(rendered, "Role")} == {f"{RELEASE}-operator-leader-election"}
    assert {o["metadata"]["name"] for o in find(rendered, "RoleBinding")} == {
        f"{RELEASE}-operator-leader-election"
    }


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_rbac_never_wildcards_or_escalates(helm: Path, values: Path | None) -> None:
    rendered = render(helm, values)
    for role in find(rendered, "ClusterRole") + find(rendered, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in v for v in rule.get(field) or []), (role["metadata"]["name"], rule)
            assert not {"escalate", "impersonate"} & set(rule["verbs"]), (role["metadata"]["name"], rule)
            if "bind" in rule["verbs"]:
                assert rule["verbs"] == ["bind"] and rule.get("resourceNames"), rule


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_bind_permission_matches_the_allow_list(helm: Path, values: Path | None) -> None:
    """The operator's allow-list (env) and what the API server lets it bind (RBAC) agree."""
    rendered = render(helm, values)
    settings = load_values(values)
    role = one(rendered, "ClusterRole", f"{RELEASE}-operator")
    binds = {r["resources"][0]: r["resourceNames"] for r in role["rules"] if "bind" in r["verbs"]}
    expected = {"clusterroles": settings["allowedClusterRoles"], "roles": settings["allowedRoles"]}
    assert binds == {k: v for k, v in expected.items() if v}
    env = env_of(container(rendered, f"{RELEASE}-operator"))
    assert env["SCIM_ALLOWED_CLUSTER_ROLES"] == ",".join(settings["allowedClusterRoles"])
    assert env["SCIM_ALLOWED_ROLES"] == ",".join(settings["allowedRoles"])


def test_empty_allow_list_grants_no_bind_at_all(helm: Path, tmp_path: Path) -> None:
    """`bind` with no resourceNames would allow every role: an empty list renders no rule."""
    values = tmp_path / "none.yaml"
    values.write_text("allowedClusterRoles: []\nallowedRoles: []\n")
    role = one(render(helm, values), "ClusterRole", f"{RELEASE}-operator")
    assert not [r for r in role["rules"] if "bind" in r["verbs"]]


# ------------------------------------------------------------------------------ (d) hardening


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_every_pod_is_hardened(helm: Path, values: Path | None) -> None:
    specs = list(pod_specs(render(helm, values)))
    assert {name for name, _ in specs} >= {f"Deployment/{RELEASE}-api", f"Deployment/{RELEASE}-operator"}
    for name, spec in specs:
        pod_sc = spec.get("securityContext") or {}
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("runAsUser") == POD_USER, name
        assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), (name, key)
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext") or {}
            where = f"{name}/{c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser") == POD_USER, where
            assert sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert not sc.get("privileged"), where
            assert c["resources"].get("requests") and c["resources"].get("limits"), where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: no emptyDir at /tmp"


def test_api_and_operator_settings_come_from_values(helm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The env the chart sets is what ApiSettings / OperatorSettings read."""
    from scim_api.config import ApiSettings
    from scim_operator.settings import OperatorSettings

    values = CHART / "ci" / "full-values.yaml"
    settings = load_values(values)
    rendered = render(helm, values)
    api = container(rendered, f"{RELEASE}-api")
    for k, v in env_of(api).items():
        monkeypatch.setenv(k, v)
    got = ApiSettings.from_env()
    a = settings["api"]
    assert (got.host, got.port, got.max_results, got.rate_per_second, got.rate_burst, got.max_body_bytes) == (
        "0.0.0.0",  # noqa: S104  (the pod listens on all its interfaces)
        a["port"], a["maxResults"], a["ratePerSecond"], a["rateBurst"], a["maxBodyBytes"],
    )  # fmt: skip
    assert got.max_group_members == a["maxGroupMembers"]
    assert got.metrics_port == a["metricsPort"] and got.status_interval == a["statusIntervalSeconds"]
    assert got.plain_json_user_agents == tuple(a["plainJsonUserAgents"])
    assert api["ports"] == [
        {"name": "http", "containerPort": a["port"], "protocol": "TCP"},
        {"name": "metrics", "containerPort": a["metricsPort"], "protocol": "TCP"},
    ]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    op = container(rendered, f"{RELEASE}-operator")
    assert env_of(api)["SCIM_LOG_FORMAT"] == env_of(op)["SCIM_LOG_FORMAT"] == settings["logFormat"]
    for k, v in env_of(op).items():
        monkeypatch.setenv(k, v)
    o = settings["operator"]
    got_op = OperatorSettings.from_env()
    assert got_op.allowed_cluster_roles == frozenset(settings["allowedClusterRoles"])
    assert got_op.allowed_roles == frozenset(settings["allowedRoles"])
    assert got_op.metrics_port == o["metricsPort"]
    assert got_op.workspace_resync_seconds == o["workspaceResyncSeconds"]
    assert got_op.idp_silence_seconds == o["idpSilenceSeconds"]
    assert (got_op.group_workers, got_op.user_workers) == (o["groupWorkers"], o["userWorkers"])


def test_worker_counts_default_and_bound_as_the_operator_does(helm: Path) -> None:
    """The chart sets the operator's defaults, and its schema refuses what the operator would."""
    from scim_operator.settings import MAX_WORKERS, OperatorSettings

    env = env_of(container(render(helm), f"{RELEASE}-operator"))
    assert (env["SCIM_GROUP_WORKERS"], env["SCIM_USER_WORKERS"]) == (
        str(OperatorSettings.group_workers), str(OperatorSettings.user_workers)
    )  # fmt: skip
    operator = yaml.safe_load((CHART / "values.schema.json").read_text())["properties"]["operator"]
    for key in ("groupWorkers", "userWorkers"):
        bound = operator["properties"][key]
        assert (bound["type"], bound["minimum"], bound["maximum"]) == ("integer", 1, MAX_WORKERS), key


def _value_schema(component: str, key: str) -> dict[str, Any]:
    """The schema of ``<component>.<key>``, its ``$ref`` resolved (``description`` kept)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    node: dict[str, Any] = schema["properties"][component]["properties"][key]
    if "$ref" in node:
        target = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _numeric_settings() -> dict[tuple[str, str], str]:
    """Each api/operator number of the values schema whose description names the variable it
    feeds (``SCIM_...``), with that variable."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    found = {}
    for component in ("api", "operator"):
        for key in schema["properties"][component]["properties"]:
            node = _value_schema(component, key)
            if node.get("type") in ("integer", "number") and node.get("description", "").startswith("SCIM_"):
                found[component, key] = node["description"].split(":")[0]
    return found


NUMERIC_SETTINGS = _numeric_settings()


def test_every_number_the_chart_sets_is_named_in_the_schema(helm: Path) -> None:
    """The variables the schema descriptions name are exactly the numbers the chart renders
    into the containers' environment, each from that value: the bound test below covers them
    all."""
    rendered = render(helm)
    values = load_values(None)
    numbers = {}
    for component in ("api", "operator"):
        env = env_of(container(rendered, f"{RELEASE}-{component}"))
        numbers |= {var: v for var, v in env.items() if re.fullmatch(r"[0-9]+(\.[0-9]+)?(e\+[0-9]+)?", v)}
        for (c, key), var in NUMERIC_SETTINGS.items():
            if c == component:
                assert float(env[var]) == values[component][key], (var, key)
    assert set(numbers) == set(NUMERIC_SETTINGS.values())


@pytest.mark.parametrize(("component", "key", "var"), [(*k, v) for k, v in NUMERIC_SETTINGS.items()])
def test_numeric_values_bounded_as_the_process_does(component: str, key: str, var: str) -> None:
    """The schema's bound is the process's: the process takes the schema's extremes and
    refuses what is just past them, so a value is refused by ``helm install`` exactly when
    the process would stop at start on it (seconds above 0, or 0 or more for a wait 0 turns
    off). One exception: a metrics port may be 0 (off) for
    the process, while the chart always declares the port, so it wants 1 or more."""
    from scim_api.config import ApiSettings
    from scim_core.settings import SettingsError
    from scim_operator.settings import OperatorSettings

    read = ApiSettings.from_env if component == "api" else OperatorSettings.from_env
    bound = _value_schema(component, key)
    if bound["type"] == "number" and "minimum" in bound:  # a wait that 0 turns off: finite, 0 or more
        assert (bound["minimum"], bound.keys() & {"exclusiveMinimum", "maximum"}) == (0, set()), bound
        accepted, refused = ["0", "1e+06"], ["-1e-3"]
    elif bound["type"] == "number":  # seconds, a rate: finite and above 0
        assert (bound["exclusiveMinimum"], bound.keys() & {"minimum", "maximum"}) == (0, set()), bound
        accepted, refused = ["1e-3", "1e+06"], ["0"]
    else:
        low, high = bound["minimum"], bound.get("maximum")
        accepted = [str(low), str(10**12 if high is None else high)]
        refused = ([] if key == "metricsPort" else [str(low - 1)]) + ([] if high is None else [str(high + 1)])
    for raw in accepted:
        read({var: raw})
    for raw in refused:
        with pytest.raises(SettingsError, match=f"^{var}="):
            read({var: raw})


def test_operator_lease_and_replicas(helm: Path) -> None:
    rendered = render(helm)
    op = container(rendered, f"{RELEASE}-operator")
    assert op["command"][:5] == [
        "scim-operator",
        "--lease",
        f"{RELEASE}-operator",
        "--lease-namespace",
        NAMESPACE,
    ]
    assert not find(rendered, "ClusterKopfPeering")
    assert "--liveness" in op["command"]
    assert op["command"][op["command"].index("--liveness") + 1] == "http://0.0.0.0:8081/healthz"
    assert op["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert one(rendered, "Deployment", f"{RELEASE}-api")["spec"]["replicas"] == 2
    assert one(rendered, "Deployment", f"{RELEASE}-operator")["spec"]["replicas"] == 2


def test_network_policy_opens_only_the_api_and_metrics_ports(helm: Path) -> None:
    rendered = render(helm, CHART / "ci" / "full-values.yaml")
    api = one(rendered, "NetworkPolicy", f"{RELEASE}-api")["spec"]
    assert api["policyTypes"] == ["Ingress"]
    assert [r["ports"] for r in api["ingress"]] == [
        [{"port": "http", "protocol": "TCP"}],
        [{"port": "metrics", "protocol": "TCP"}],
    ]
    assert api["ingress"][1]["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }]  # fmt: skip
    test_peer = {"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "scim-kube", "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "test"}}}  # fmt: skip
    assert test_peer in api["ingress"][0]["from"]
    op = one(rendered, "NetworkPolicy", f"{RELEASE}-operator")["spec"]
    assert [r["ports"] for r in op["ingress"]] == [[{"port": "metrics", "protocol": "TCP"}]]
    assert op["ingress"][0]["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }


def test_helm_test_hook_uses_the_configured_token(helm: Path) -> None:
    full = find(render(helm, CHART / "ci" / "full-values.yaml"), "Pod")
    assert len(full) == 1 and full[0]["metadata"]["annotations"]["helm.sh/hook"] == "test"
    env = {e["name"]: e for e in full[0]["spec"]["containers"][0]["env"]}
    assert env["SCIM_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "scim-test-token", "key": "token"}
    assert env["SCIM_SERVICE_URL"]["value"] == f"http://{RELEASE}-api.{NAMESPACE}.svc:8443"
    assert "/api/auth/scim/v2/ServiceProviderConfig" in full[0]["spec"]["containers"][0]["args"][0]
    minimal = render(helm, CHART / "ci" / "minimal-values.yaml")
    secret = one(minimal, "Secret", f"{RELEASE}-test")
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "test"
    pod = one(minimal, "Pod", f"{RELEASE}-test")
    ref = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}["SCIM_TOKEN"]["valueFrom"]
    assert ref["secretKeyRef"] == {"name": f"{RELEASE}-test", "key": "token"}
    assert "SCIM_TOKEN" not in {
        e["name"] for e in one(render(helm), "Pod", f"{RELEASE}-test")["spec"]["containers"][0]["env"]
    }


def test_helm_test_script_compiles(helm: Path) -> None:
    pod = one(render(helm), "Pod", f"{RELEASE}-test")
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["python", "-c"]
    compile(c["args"][0], "helm-test", "exec")


# ------------------------------------------------------------------------------ (e) entry points


def test_chart_commands_are_installed_entry_points(helm: Path) -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    rendered = render(helm)
    commands = {container(rendered, f"{RELEASE}-{c}")["command"][0] for c in ("api", "operator")}
    assert commands == {"scim-api", "scim-operator"}
    bin_dir = Path(sys.executable).parent
    for command in commands:
        assert command in scripts, f"{command} is not in [project.scripts]"
        module, _, func = scripts[command].partition(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func))
        exe = bin_dir / command
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} is not installed (pip install -e .)"


def test_dockerfile_matches_the_chart() -> None:
    """Docker cannot run here; check statically what the chart relies on."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    assert len(stages) >= 2, "multi-stage build expected"
    assert all("python:3.11-slim" in image or image.startswith("${") for image, _ in stages)
    final = text[text.rfind("\nFROM") :]
    assert re.search(rf"^USER\s+{POD_USER}(:{POD_USER})?\s*$", final, re.M), "final stage must run as 10001"
    assert re.search(r'^CMD\s+\["scim-api"\]', final, re.M)
    assert "pip install" in text and not re.search(r"apt-get install|gcc|build-essential", final)
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "run"} <= {line.strip("/") for line in ignore}


# ------------------------------------------------------------------------------ (f) monitoring

METRICS_MODULES = (
    REPO_ROOT / "api" / "scim_api" / "metrics.py",
    REPO_ROOT / "operator" / "scim_operator" / "metrics.py",
)
FULL = CHART / "ci" / "full-values.yaml"


def code_metric_names() -> set[str]:
    """Every metric name spelled in the metrics modules, with a histogram's series."""
    names: set[str] = set()
    for path in METRICS_MODULES:
        for name in re.findall(r'"(scim_(?:api|operator)_[a-z0-9_]+)"', path.read_text()):
            names |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def promql_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(scim_[a-z0-9_]+)", expr))


def test_monitoring_is_off_by_default(helm: Path) -> None:
    rendered = render(helm)
    assert not find(rendered, "ServiceMonitor") and not find(rendered, "PrometheusRule")
    assert not find(rendered, "ConfigMap")
    # the metrics Services exist anyway (a Prometheus without the operator scrapes them too)
    for name in (f"{RELEASE}-api-metrics", f"{RELEASE}-operator-metrics"):
        assert one(rendered, "Service", name)["spec"]["ports"][0]["name"] == "metrics"


def test_service_monitor_scrapes_both_components(helm: Path) -> None:
    rendered = render(helm, FULL)
    values = load_values(FULL)
    monitors = find(rendered, "ServiceMonitor")
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["endpoints"][0]["interval"] == values["monitoring"]["serviceMonitor"]["interval"]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in find(rendered, "Service") if wanted.items() <= s["metadata"]["labels"].items()]
    assert sorted(s["metadata"]["name"] for s in selected) == [
        f"{RELEASE}-api-metrics",
        f"{RELEASE}-operator-metrics",
    ]
    for service in selected:
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "metrics" and port["targetPort"] == "metrics"
        # the Service reaches a container port named metrics of that component's pods
        deployment = one(rendered, "Deployment", f"{RELEASE}-{component}")
        assert (
            service["spec"]["selector"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        ports = {
            p["name"]: p["containerPort"] for p in container(rendered, f"{RELEASE}-{component}")["ports"]
        }
        assert ports["metrics"] == port["port"]
    api_env = env_of(container(rendered, f"{RELEASE}-api"))
    assert api_env["SCIM_API_METRICS_PORT"] == str(values["api"]["metricsPort"])


def test_prometheus_rule_alerts_on_metrics_that_exist(helm: Path) -> None:
    rendered = render(helm, FULL)
    rule = one(rendered, "PrometheusRule", RELEASE)
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    alerts = {r["alert"]: r for r in rules}
    assert len(alerts) == len(rules)
    assert {"ScimTokenExpiring", "ScimIdpSilent", "ScimReconcileErrors", "ScimBindingRejected",
            "ScimUnresolvedMembers"} <= set(alerts)  # fmt: skip
    known = code_metric_names()
    for name, r in alerts.items():
        used = promql_names(r["expr"])
        assert used and used <= known, (name, used - known)
        assert r["expr"].count("(") == r["expr"].count(")"), name
        assert r["labels"]["severity"] in ("info", "warning", "critical"), name
        assert r["annotations"]["summary"] and r["annotations"]["description"], name
        if "for" in r:
            assert re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", r["for"]), name
    assert alerts["ScimIdpSilent"]["for"] == "10m"  # from the values
    assert 'type="TokenExpiring"' in alerts["ScimTokenExpiring"]["expr"]
    assert 'type="Synced"' in alerts["ScimIdpSilent"]["expr"]
    assert 'result="error"' in alerts["ScimReconcileErrors"]["expr"]


def test_grafana_dashboard_configmap(helm: Path) -> None:
    rendered = render(helm, FULL)
    cm = one(rendered, "ConfigMap", f"{RELEASE}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's usual label
    assert cm["metadata"]["annotations"] == {"grafana_folder": "SCIM"}
    assert cm["metadata"]["namespace"] == NAMESPACE
    dashboard = json.loads(cm["data"]["scim-kube.json"])
    assert dashboard["uid"] == "scim-kube" and dashboard["panels"]
    known = code_metric_names()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for expr in exprs:
        used = promql_names(expr)
        assert used and used <= known, (expr, used - known)
    # every API metric is on the dashboard
    api_metrics = set(re.findall(r'"(scim_api_[a-z0-9_]+)"', METRICS_MODULES[0].read_text()))
    shown = set().union(*(promql_names(e) for e in exprs))
    assert all(any(s.startswith(m) for s in shown) for m in api_metrics), api_metrics - shown
    # the dashboard file is the one in the chart, byte for byte
    assert cm["data"]["scim-kube.json"] == (CHART / "dashboards" / "scim-kube.json").read_text().rstrip("\n")
