"""Uninstall without strandings (issue 11), on a control plane of its own (with the garbage
collector and the namespace controller) so the operator can really be gone: no other
operator watches it. The operator runs as a child process under its ServiceAccount."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds

from .helpers import condition, create_user, create_workspace, custom, eventually, get_workspace
from .test_least_privilege import OperatorProcess, install_rbac, sa_kubeconfig
from .test_operator_rbac import _binding, _group, _subjects

pytestmark = pytest.mark.cluster
#: A namespace with nothing holding it goes within this bound (namespace controller, seconds).
NAMESPACE_GONE_WITHIN = 60.0

Cluster = tuple[ControlPlane, client.ApiClient, Path, Path]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("uninstall")
    with ControlPlane(controller_manager=True) as cp:
        install_crds(cp)
        install_rbac(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        yield cp, kube, sa_kubeconfig(cp, "scim-operator", tmp), tmp
        kube.close()


def _operator(cluster: Cluster, **env: str) -> OperatorProcess:
    _, _, kubeconfig, tmp = cluster
    operator = OperatorProcess(kubeconfig, tmp / "operator.log", allowed="view", **env)
    eventually(lambda: _live(operator), timeout=30)
    return operator


def _live(operator: OperatorProcess) -> bool:
    try:
        return operator.live()
    except OSError:  # not serving yet
        return False


def _namespace(kube: client.ApiClient, name: str, labels: dict[str, str] | None = None) -> None:
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )


def _exists(kube: client.ApiClient, name: str) -> bool:
    try:
        client.CoreV1Api(kube).read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _granted_by(kube: client.ApiClient, workspace_namespace: str) -> list[str]:
    """Every RoleBinding, anywhere, that a workspace namespace's groups granted."""
    selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.WORKSPACE_LABEL}={workspace_namespace}"
    items = (
        client.RbacAuthorizationV1Api(kube)
        .list_role_binding_for_all_namespaces(label_selector=selector)
        .items
    )
    return sorted(f"{rb.metadata.namespace}/{rb.metadata.name}" for rb in items)


def _workspace(kube: client.ApiClient, ns: str, **mapping: Any) -> None:
    view = {"name": "view", "groups": {"displayName": "Devs"}, "clusterRole": "view", **mapping}
    create_workspace(kube, ns, roleMappings=[view])
    for uid, name in (("usr-ada", "ada@example.com"), ("usr-bob", "bob@example.com")):
        create_user(kube, ns, uid, name)
    _group(kube, ns, "grp-devs", "Devs", ["usr-ada", "usr-bob"])
    _group(kube, ns, "grp-ops", "Ops", ["usr-bob"])  # matches no mapping: no binding


def test_workspace_namespace_deleted_with_the_operator_gone(cluster: Cluster) -> None:
    """Helm uninstall, then delete the workspace namespaces: one whose bindings all live in it
    goes at once; one with a binding elsewhere waits for the operator (its group's finalizer)
    and goes, its binding elsewhere with it, as soon as the operator is back."""
    _, kube, _, _ = cluster
    _namespace(kube, "team-a")
    _workspace(kube, "team-a")
    _namespace(kube, "team-b")
    _namespace(kube, "team-b-apps", {"team": "b"})
    _workspace(kube, "team-b", namespaceSelector={"matchLabels": {"team": "b"}})
    operator = _operator(cluster)
    try:
        eventually(
            lambda: _subjects(kube, "team-a", "scim-grp-devs-view") == ["ada@example.com", "bob@example.com"]
        )
        eventually(lambda: _subjects(kube, "team-b-apps", "scim-grp-devs-view") is not None)
        eventually(lambda: _subjects(kube, "team-b", "scim-grp-devs-view") is not None)
        group_b = custom(kube).get_namespaced_custom_object(
            c.GROUP, c.VERSION, "team-b", c.GROUP_PLURAL, "grp-devs"
        )
        assert c.FINALIZER in group_b["metadata"]["finalizers"]
        for ns in ("team-a", "team-b"):
            ws = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.WORKSPACE_PLURAL, "ws")
            assert not ws["metadata"].get("finalizers")
            for name in ("grp-devs", "grp-ops"):
                group = custom(kube).get_namespaced_custom_object(
                    c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, name
                )
                assert (c.FINALIZER in (group["metadata"].get("finalizers") or [])) is (
                    ns == "team-b" and name == "grp-devs"
                )
    finally:
        operator.stop()
    assert operator.proc.poll() is not None  # gone

    for ns in ("team-a", "team-b"):
        client.CoreV1Api(kube).delete_namespace(ns)
    started = time.monotonic()
    eventually(lambda: not _exists(kube, "team-a"), timeout=NAMESPACE_GONE_WITHIN)
    print(f"team-a gone in {time.monotonic() - started:.1f}s without the operator")
    assert _granted_by(kube, "team-a") == []  # nothing stranded anywhere
    # the binding elsewhere needs the operator: its group (and so its namespace) waits
    time.sleep(3)
    assert _exists(kube, "team-b")
    assert _granted_by(kube, "team-b") == ["team-b-apps/scim-grp-devs-view"]

    operator = _operator(cluster)
    try:
        started = time.monotonic()
        eventually(lambda: not _exists(kube, "team-b"), timeout=NAMESPACE_GONE_WITHIN)
        print(f"team-b gone in {time.monotonic() - started:.1f}s once the operator was back")
        assert _granted_by(kube, "team-b") == []
        assert _binding(kube, "team-b-apps", "scim-grp-devs-view") is None
    finally:
        operator.stop()


def test_idp_silence_is_noticed_by_its_deadline_not_by_a_resync(cluster: Cluster) -> None:
    """With the periodic resync out of the way (an hour), the workspace turns Synced=False
    when its own deadline passes: the reconcile schedules the next look itself."""
    _, kube, _, _ = cluster
    _namespace(kube, "quiet")
    create_workspace(kube, "quiet", idpSilenceAfter="3s")
    operator = _operator(cluster, SCIM_WORKSPACE_RESYNC_SECONDS="3600")
    try:

        def synced(reason: str) -> dict[str, Any] | None:
            cond = condition(get_workspace(kube, "quiet"), "Synced")
            return cond if cond and cond["reason"] == reason else None

        eventually(lambda: synced("NeverSeen"), timeout=30)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        custom(kube).patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            "quiet",
            c.WORKSPACE_PLURAL,
            "ws",
            {"status": {"idp": {"lastRequestTime": now}}},
        )
        eventually(lambda: synced("IdPActive"))
        silent = eventually(lambda: synced("IdPSilent"), timeout=15)
        assert silent["status"] == "False"
    finally:
        operator.stop()
        client.CoreV1Api(kube).delete_namespace("quiet")
