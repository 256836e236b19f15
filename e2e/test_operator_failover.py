"""The active operator Pod deleted mid-flow, gracefully then forcibly: the standby takes over
and every change the IdP made meanwhile lands. The active one is found from a
coordination.k8s.io Lease when the operator holds one, else from the Kopf peering."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.helpers import eventually
from tests.test_e2e_idp import GROUP, PATCH, Idp, _new_ns

from .cluster_access import Release, pods, ready
from .conftest import ClusterStack
from .results import Results


def _peers_by_priority(kube: client.ApiClient, release: Release) -> list[str]:
    """Kopf peer ids, highest priority first (the highest one is the active operator)."""
    try:
        peerings = client.CustomObjectsApi(kube).list_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", label_selector=release.selector("operator")
        )["items"]
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    peers: list[tuple[int, str]] = []
    for peering in peerings:
        for peer_id, info in (peering.get("status") or {}).items():
            if isinstance(info, dict) and "priority" in info:
                peers.append((int(info["priority"]), peer_id))
    return [peer_id for _, peer_id in sorted(peers, reverse=True)]


def active_operator(kube: client.ApiClient, release: Release) -> str | None:
    """The operator Pod that currently acts, or None while nobody does."""
    names = [p.metadata.name for p in pods(kube, release, "operator") if ready(p)]
    for lease in client.CoordinationV1Api(kube).list_namespaced_lease(release.namespace).items:
        holder = lease.spec.holder_identity or ""
        if match := [n for n in names if n in holder]:
            return match[0]
    for peer_id in _peers_by_priority(kube, release):
        if match := [n for n in names if n in peer_id]:
            return match[0]
    return None


def _kill_on_kind_node(pod: Any) -> None:
    """SIGKILL the container's process from the node (a crash: no SIGTERM, no clean-up at all,
    unlike any Pod deletion, which always grants a short grace period). kind nodes only."""
    node = pod.spec.node_name
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", container_id],
                   check=True, capture_output=True, timeout=30)  # fmt: skip


def _on_kind(pod: Any) -> bool:
    docker = shutil.which("docker")
    return (
        bool(docker)
        and subprocess.run(
            ["docker", "inspect", pod.spec.node_name], capture_output=True, timeout=30
        ).returncode
        == 0
    )


# A replica counts itself active for 3 workspace resyncs (chart default 10 s) after its last
# timer tick, so a replica that led recently still reconciles for up to 30 s: wait until the
# leadership has been stable that long, or a "takeover" would only measure that overlap.
SETTLE_SECONDS = 35


def settled_leader(kube: client.ApiClient, release: Release) -> str:
    leader, since = None, time.monotonic()
    deadline = since + 240
    while time.monotonic() < deadline:
        current = active_operator(kube, release)
        if current != leader:
            leader, since = current, time.monotonic()
        elif leader and time.monotonic() - since >= SETTLE_SECONDS:
            return leader
        time.sleep(1)
    raise AssertionError(f"no stable operator leadership within 240 s (last: {leader})")


def _patch(idp: Idp, gid: str, *ops: dict[str, Any]) -> None:
    status, body = idp.call("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": list(ops)})
    assert status == 204, body


def _until(idp: Idp, timeout: float, **wanted: str) -> None:
    for user, level in wanted.items():
        eventually(
            lambda u=f"{user}@example.com", lv=level: idp.access(u) == lv, timeout=timeout, interval=0.25
        )


@pytest.mark.parametrize("mode", ["graceful", "forced", "crashed"])
def test_active_operator_deleted_mid_flow(stack: ClusterStack, results: Results, mode: str) -> None:
    """graceful: a Pod deletion; forced: `--grace-period=0 --force` (the kubelet still
    sends SIGTERM first); crashed: the process SIGKILLed on the node (kind only)."""
    idp = Idp(stack, _new_ns(stack, f"failover-{mode}"))
    status, g = idp.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Failover"})
    assert status == 201
    gid = g["id"]
    _patch(idp, gid, {"op": "add", "path": "members", "value": [{"value": "usr-carol"}]})
    _until(idp, 60, carol="view")  # the operator is working before the cut
    victim = settled_leader(stack.kube, stack.release)

    core = client.CoreV1Api(stack.kube)
    victim_pod = core.read_namespaced_pod(victim, stack.release.namespace)
    if mode == "crashed" and not _on_kind(victim_pod):
        pytest.skip("killing a process on the node needs a kind node (docker exec)")
    t0 = time.monotonic()
    if mode == "crashed":
        _kill_on_kind_node(victim_pod)
    else:
        core.delete_namespaced_pod(
            victim, stack.release.namespace, grace_period_seconds=0 if mode == "forced" else None
        )
    # the IdP carries on while nobody reconciles
    _patch(
        idp, gid, {"op": "add", "path": "members", "value": [{"value": "usr-alice"}, {"value": "usr-bob"}]}
    )
    _patch(idp, gid, {"op": "replace", "value": {"id": gid, "displayName": "Failover Admins"}})
    _patch(idp, gid, {"op": "remove", "path": 'members[value eq "usr-carol"]'})
    _patch(idp, gid, {"op": "remove", "path": 'members[value eq "usr-alice"]'})
    acknowledged = time.monotonic() - t0
    _until(idp, 240, bob="edit", alice="none", carol="none")
    landed = time.monotonic() - t0
    # after a crash the same Pod restarts its container: a new process, maybe the new leader
    successor = eventually(
        lambda: (
            (a := active_operator(stack.kube, stack.release)) and (a != victim or mode == "crashed") and a
        ),
        timeout=120,
    )
    results.record(
        f"operator_failover_{mode}", changes_acknowledged_s=round(acknowledged, 2),
        all_changes_landed_s=round(landed, 1), deleted=victim, new_active=successor,
    )  # fmt: skip
    # back to two ready replicas before the next disruption
    eventually(
        lambda: len(ps := pods(stack.kube, stack.release, "operator")) == 2 and all(ready(p) for p in ps),
        timeout=180, interval=1,
    )  # fmt: skip
