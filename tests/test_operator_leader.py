"""Two operator replicas under their ServiceAccount against an API server that audits every
write they make: the Lease elects one writer, a frozen or killed leader is replaced, and at
no moment do both write. The same audit log shows that token Secrets are listed and watched
with a server-side ``labelSelector`` only (issue 8: an unlabelled Secret never reaches the
operator)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds
from scim_operator.workspace_tokens import TOKEN_SECRET_LABEL

from .helpers import create_user, create_workspace, eventually, workspace_with_token
from .test_least_privilege import OperatorProcess, install_rbac, sa_kubeconfig

pytestmark = pytest.mark.cluster
OPERATOR_SA = "system:serviceaccount:scim-system:scim-operator"
LEASE = ("scim-system", "scim-operator")  # deploy/rbac grants get/update on this one only
FAST_LEASE = {  # seconds; client-go's rule: duration > deadline > 1.2 x retry
    "SCIM_LEASE_DURATION_SECONDS": "4",
    "SCIM_LEASE_RENEW_DEADLINE_SECONDS": "3",
    "SCIM_LEASE_RETRY_PERIOD_SECONDS": "0.5",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "resources": [
                {"group": "", "resources": ["secrets", "events"]},
                {"group": "rbac.authorization.k8s.io", "resources": ["rolebindings"]},
                {"group": "coordination.k8s.io", "resources": ["leases"]},
                {"group": c.GROUP},
            ],
        },
        {"level": "None"},
    ],
}


@contextlib.contextmanager
def audited_control_plane(
    tmp: Path, controller_manager: bool = False
) -> Iterator[tuple[ControlPlane, client.ApiClient, Path]]:
    """A control plane that audits our writes, with our CRDs and RBAC installed: the admin's
    client and the operator ServiceAccount's kubeconfig."""
    policy = tmp / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    with ControlPlane(audit_policy=policy, controller_manager=controller_manager) as cp:
        install_crds(cp)
        install_rbac(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        yield cp, kube, sa_kubeconfig(cp, "scim-operator", tmp)


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ControlPlane, client.ApiClient, Path]]:
    with audited_control_plane(tmp_path_factory.mktemp("audited")) as planes:
        yield planes


def audit_events(cp: ControlPlane) -> list[dict[str, Any]]:
    lines = cp.audit_log.read_text().splitlines() if cp.audit_log.exists() else []
    return [e for e in map(json.loads, lines) if e.get("stage") == "ResponseComplete"]


def holder(kube: client.ApiClient) -> str | None:
    try:
        lease = client.CoordinationV1Api(kube).read_namespaced_lease(LEASE[1], LEASE[0])
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str(lease.spec.holder_identity or "") or None


def create_groups(kube: client.ApiClient, ns: str, names: list[str]) -> None:
    api = client.CustomObjectsApi(kube)
    for name in names:
        api.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
            "spec": {"displayName": name, "members": [{"value": "usr-1"}]},
        })  # fmt: skip


def bound(kube: client.ApiClient, ns: str, names: list[str]) -> bool:
    have = {
        rb.metadata.name for rb in client.RbacAuthorizationV1Api(kube).list_namespaced_role_binding(ns).items
    }
    return all(f"scim-{n}-all" in have for n in names)


def writes_by_replica(cp: ControlPlane) -> list[tuple[str, str, str]]:
    """(time, replica identity, what) of every write the operator made, in order."""
    out = []
    for e in audit_events(cp):
        agent = e.get("userAgent", "")
        if (
            e["verb"] in WRITE_VERBS
            and agent.startswith("scim-operator/")
            and e["objectRef"]["resource"] != "leases"
        ):
            ref = e["objectRef"]
            what = f"{e['verb']} {ref['resource']}{'/' + ref['subresource'] if ref.get('subresource') else ''} {ref.get('name')}"
            out.append((e["requestReceivedTimestamp"], agent.split("/", 1)[1], what))
    return sorted(out)


def runs(identities: list[str]) -> list[str]:
    """Consecutive runs: ``a a b b a`` -> ``a b a``."""
    return [x for i, x in enumerate(identities) if i == 0 or identities[i - 1] != x]


def test_one_writer_across_a_frozen_and_a_killed_leader(
    audited: tuple[ControlPlane, client.ApiClient, Path], tmp_path: Path
) -> None:
    cp, kube, kubeconfig = audited
    ns = "leader"
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    create_workspace(
        kube, ns, roleMappings=[{"name": "all", "groups": {"pattern": ".*"}, "clusterRole": "view"}]
    )
    create_user(kube, ns, "usr-1", "one@example.com")
    a = OperatorProcess(kubeconfig, tmp_path / "a.log", allowed="view", identity="replica-a", **FAST_LEASE)
    b: OperatorProcess | None = None
    try:
        eventually(lambda: holder(kube) == "replica-a", timeout=40)
        b = OperatorProcess(
            kubeconfig, tmp_path / "b.log", allowed="view", identity="replica-b", **FAST_LEASE
        )
        eventually(lambda: b.metric("scim_operator_leader") == 0, timeout=40)  # up, standing by
        create_groups(kube, ns, ["g1", "g2", "g3"])
        eventually(lambda: bound(kube, ns, ["g1", "g2", "g3"]), timeout=30)
        assert b.metric("scim_operator_reconciles_total") == 0  # a standby reconciles nothing
        time.sleep(2)  # status writes settle

        # 1. freeze the leader (no release): the standby takes over after the lease duration
        a.proc.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        create_groups(kube, ns, ["g4", "g5"])
        eventually(lambda: holder(kube) == "replica-b", timeout=30)
        assert time.monotonic() - frozen >= 4 - 0.5  # not before the lease ran out
        eventually(lambda: bound(kube, ns, ["g4", "g5"]), timeout=30)

        # 2. thaw it: it must notice by the clock that it lost the lease, and write nothing
        a.proc.send_signal(signal.SIGCONT)
        create_groups(kube, ns, ["g6"])
        eventually(lambda: bound(kube, ns, ["g6"]), timeout=30)
        eventually(lambda: a.metric("scim_operator_leader") == 0, timeout=10)
        time.sleep(3)
        assert holder(kube) == "replica-b"

        # 3. kill the new leader outright: the old one takes over and catches up once
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=10)
        create_groups(kube, ns, ["g7"])
        eventually(lambda: holder(kube) == "replica-a", timeout=30)
        eventually(lambda: bound(kube, ns, ["g7"]), timeout=30)
        time.sleep(2)
    finally:
        a.proc.send_signal(signal.SIGCONT)
        a.stop(show_log=True)
        if b is not None:
            b.stop(show_log=True)
    writes = writes_by_replica(cp)
    assert writes, "the audit log shows no operator write"
    order = runs([who for _, who, _ in writes])
    assert order == ["replica-a", "replica-b", "replica-a"], "\n".join(map(str, writes))
    # the standby (b) wrote only after it held the Lease; the leases' own updates show the handover
    lease_writes = [(e["requestReceivedTimestamp"], e["userAgent"].split("/", 1)[1]) for e in audit_events(cp)
                    if e["objectRef"]["resource"] == "leases" and e["verb"] in ("create", "update")
                    and e["responseStatus"]["code"] < 300]  # fmt: skip
    first_b_lease = min(t for t, who in lease_writes if who == "replica-b")
    assert min(t for t, who, _ in writes if who == "replica-b") >= first_b_lease


def test_token_secrets_are_listed_and_watched_by_label_only(
    audited: tuple[ControlPlane, client.ApiClient, Path], tmp_path: Path
) -> None:
    cp, kube, kubeconfig = audited
    ns = "secrets"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="unlabelled"),
                                                      string_data={"password": "hunter2"}))  # fmt: skip
    op = OperatorProcess(kubeconfig, tmp_path / "op.log", allowed="view", identity="replica-s", **FAST_LEASE)
    try:
        eventually(lambda: holder(kube) == "replica-s", timeout=60)  # start-up is slow on a loaded machine
        workspace_with_token(kube, ns)
        core.patch_namespaced_secret("unlabelled", ns, {"stringData": {"password": "hunter3"}})
        # revocation still works through the label-selected watch: delete the token, a new one comes
        old = core.read_namespaced_secret("scim-token", ns).data[c.TOKEN_SECRET_KEY]
        core.delete_namespaced_secret("scim-token", ns)
        eventually(
            lambda: core.read_namespaced_secret("scim-token", ns).data[c.TOKEN_SECRET_KEY] != old, timeout=30
        )
    finally:
        op.stop()
    reads = [e for e in audit_events(cp)
             if e["user"]["username"] == OPERATOR_SA and e["objectRef"]["resource"] == "secrets"
             and e["verb"] in ("list", "watch", "get")]  # fmt: skip
    listed = [e for e in reads if e["verb"] in ("list", "watch")]
    assert {e["verb"] for e in listed} == {"list", "watch"}, reads
    for e in listed:
        assert e["objectRef"].get("namespace") is None  # one cluster-wide informer ...
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(e["requestURI"]).query)
        assert query.get("labelSelector") == [TOKEN_SECRET_LABEL], e["requestURI"]  # ... narrowed server-side
    assert {e["objectRef"]["name"] for e in reads if e["verb"] == "get"} <= {"scim-token"}
    assert not [e for e in audit_events(cp) if e["objectRef"].get("name") == "unlabelled"
                and e["user"]["username"] == OPERATOR_SA]  # fmt: skip
    assert os.path.getsize(cp.audit_log) > 0
