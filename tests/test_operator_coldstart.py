"""A cold start and a lapse of the lead, against the real API server (audited):

- a second operator started over what the first one reconciled writes nothing: every object
  keeps its resourceVersion, no RoleBinding is written, the audit log shows no write of ours;
- a leader whose renewal came overdue (frozen past its renew deadline, nobody else around)
  renews the same term and resumes: it does not look at every group again, and a user
  deactivated meanwhile loses access as soon as it does."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane

from .helpers import allowed, create_user, create_workspace, custom, eventually
from .test_least_privilege import OperatorProcess
from .test_operator_leader import FAST_LEASE, audited_control_plane, holder, writes_by_replica

pytestmark = pytest.mark.cluster
KINDS = (c.WORKSPACE_PLURAL, c.USER_PLURAL, c.GROUP_PLURAL, c.SHARD_PLURAL)
OTHERS = 30  # groups a lapse leaves alone


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ControlPlane, client.ApiClient, Path]]:
    # the controller manager aggregates ``view``, which the SubjectAccessReviews check
    with audited_control_plane(tmp_path_factory.mktemp("coldstart"), controller_manager=True) as planes:
        yield planes


def _namespace(kube: client.ApiClient, ns: str) -> None:
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    create_workspace(
        kube, ns, roleMappings=[{"name": "team", "groups": {"pattern": "Team .*"}, "clusterRole": "view"}]
    )


def _group(kube: client.ApiClient, ns: str, name: str, display: str, members: list[str]) -> None:
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
        "spec": {"displayName": display, "members": [{"value": m} for m in members]},
    })  # fmt: skip


def versions(kube: client.ApiClient, ns: str) -> dict[str, str]:
    """kind/name -> resourceVersion of every object of ours and every RoleBinding in ``ns``."""
    out = {}
    for plural in KINDS:
        for obj in custom(kube).list_namespaced_custom_object(c.GROUP, c.VERSION, ns, plural)["items"]:
            out[f"{plural}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    for rb in client.RbacAuthorizationV1Api(kube).list_namespaced_role_binding(ns).items:
        out[f"rolebindings/{rb.metadata.name}"] = rb.metadata.resource_version
    return out


def settled(kube: client.ApiClient, ns: str, groups: int, users: int) -> bool:
    """Every group and user status written for its generation, the mapped groups bound."""
    done = 0
    for plural in (c.GROUP_PLURAL, c.USER_PLURAL):
        for obj in custom(kube).list_namespaced_custom_object(c.GROUP, c.VERSION, ns, plural)["items"]:
            done += (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation")
    return done == groups + users


def quiet(kube: client.ApiClient, ns: str, seconds: float = 3.0) -> dict[str, str]:
    """The resourceVersions once nothing changed for ``seconds``."""
    before = versions(kube, ns)
    for _ in range(20):
        time.sleep(seconds)
        now = versions(kube, ns)
        if now == before:
            return now
        before = now
    raise AssertionError(f"{ns} still changing after {20 * seconds} s")


def test_a_cold_start_over_a_reconciled_namespace_writes_nothing(
    audited: tuple[ControlPlane, client.ApiClient, Path], tmp_path: Path
) -> None:
    cp, kube, kubeconfig = audited
    ns = "coldstart"
    _namespace(kube, ns)
    users = [f"usr-{i}" for i in range(12)]
    for uid in users:
        create_user(kube, ns, uid, f"{uid}@example.com")
    groups = 0
    for i in range(10):  # mapped and unmapped groups, shared members, one member unknown
        members = [users[(i + k) % len(users)] for k in range(4)] + (["nobody"] if i == 3 else [])
        _group(kube, ns, f"grp-{i}", f"Team {i}" if i % 2 else f"Other {i}", members)
        groups += 1
    first = OperatorProcess(
        kubeconfig, tmp_path / "first.log", allowed="view", identity="first", **FAST_LEASE
    )
    try:
        eventually(lambda: settled(kube, ns, groups, len(users)), timeout=60)
        assert allowed(kube, "usr-1@example.com", ns)
        reconciled = quiet(kube, ns)
    finally:
        first.stop()
    second = OperatorProcess(
        kubeconfig, tmp_path / "second.log", allowed="view", identity="second", **FAST_LEASE
    )
    try:
        eventually(lambda: holder(kube) == "second", timeout=60)
        assert second.exposes("scim_operator_queue_depth") and second.exposes(
            "scim_operator_user_queue_depth"
        )
        eventually(
            lambda: (
                second.metric("scim_operator_reconciles_total") >= groups
                and second.metric("scim_operator_queue_depth") == 0
                and second.metric("scim_operator_user_queue_depth") == 0
            ),
            timeout=60,
        )
        time.sleep(3)  # workspace statuses, late writes
        after = versions(kube, ns)
    finally:
        second.stop(show_log=True)
    assert after == reconciled
    ours = [w for w in writes_by_replica(cp) if w[1] == "second"]
    assert not ours, ours


def test_a_lapse_of_the_lead_resumes_without_a_second_pass_and_revokes(
    audited: tuple[ControlPlane, client.ApiClient, Path], tmp_path: Path
) -> None:
    _, kube, kubeconfig = audited
    ns = "lapse"
    _namespace(kube, ns)
    create_user(kube, ns, "stays", "stays@example.com")
    create_user(kube, ns, "leaves", "leaves@example.com")
    for i in range(OTHERS + 6):  # the last six list the user who leaves
        _group(kube, ns, f"grp-{i}", f"Team {i}", ["stays", "leaves"] if i >= OTHERS else ["stays"])
    op = OperatorProcess(kubeconfig, tmp_path / "op.log", allowed="view", identity="lapser", **FAST_LEASE)
    try:
        eventually(lambda: settled(kube, ns, OTHERS + 6, 2), timeout=60)
        eventually(lambda: allowed(kube, "leaves@example.com", ns), timeout=30)
        quiet(kube, ns, 2.0)
        passes = op.metric("scim_operator_reconciles_total")
        op.proc.send_signal(signal.SIGSTOP)  # past the renew deadline (3 s), alone: a lapse
        try:
            custom(kube).patch_namespaced_custom_object(
                c.GROUP, c.VERSION, ns, c.USER_PLURAL, "leaves", {"spec": {"active": False}}
            )
            time.sleep(5)
        finally:
            op.proc.send_signal(signal.SIGCONT)
        eventually(lambda: not allowed(kube, "leaves@example.com", ns), timeout=30)
        assert allowed(kube, "stays@example.com", ns)
        eventually(lambda: "leading resumes" in op.log.read_text(), timeout=10)
        time.sleep(2)
        log = op.log.read_text()
        assert log.count("became the leader") == 1, log
        # the deactivated user's six groups ran again (parked, then resumed), a few of them twice
        # (their bindings' events), but not every group: no second pass after a lapse
        assert op.metric("scim_operator_reconciles_total") - passes < OTHERS
    finally:
        op.proc.send_signal(signal.SIGCONT)
        op.stop(show_log=True)
