"""Disruption under steady IdP traffic through the Service: an API Pod deleted, then a
`helm upgrade` that rolls every Pod. The promise: only success or retriable answers (503/429
with Retry-After), and nothing acknowledged is lost."""

from __future__ import annotations

import time

from kubernetes import client
from tests.helpers import eventually

from .cluster_access import pods, ready
from .conftest import ClusterStack
from .idp_traffic import SteadyIdp, check_landed, steady_group
from .results import Results


def _all_ready(stack: ClusterStack, component: str, replicas: int = 2) -> bool:
    current = pods(stack.kube, stack.release, component)
    return len(current) == replicas and all(ready(p) for p in current)


def test_api_pod_deleted_under_traffic(stack: ClusterStack, results: Results) -> None:
    idp, gid, users = steady_group(stack, "steady-api")
    victim = pods(stack.kube, stack.release, "api")[0].metadata.name
    with SteadyIdp(stack.base, idp.token, gid, users) as traffic:
        time.sleep(3)
        t0 = time.monotonic()
        client.CoreV1Api(stack.kube).delete_namespaced_pod(victim, stack.release.namespace)
        eventually(lambda: victim not in {p.metadata.name for p in pods(stack.kube, stack.release, "api")}
                   and _all_ready(stack, "api"), timeout=180, interval=0.5)  # fmt: skip
        replaced = time.monotonic() - t0
        time.sleep(3)
    results.record("api_pod_deleted", replacement_ready_s=round(replaced, 1), **traffic.summary())
    check_landed(idp, gid, traffic)


def test_helm_upgrade_rollout_under_traffic(stack: ClusterStack, results: Results) -> None:
    idp, gid, users = steady_group(stack, "steady-upgrade")
    stamp = str(int(time.time()))
    with SteadyIdp(stack.base, idp.token, gid, users) as traffic:
        time.sleep(3)
        t0 = time.monotonic()
        stack.release.helm_cmd(
            "upgrade", stack.release.name, stack.release.chart, "--reuse-values", "--wait", "--timeout", "5m",
            "--set-string", f"api.podAnnotations.e2e-rollout={stamp}",
            "--set-string", f"operator.podAnnotations.e2e-rollout={stamp}",
        )  # fmt: skip
        upgraded = time.monotonic() - t0
        eventually(
            lambda: _all_ready(stack, "api") and _all_ready(stack, "operator"), timeout=180, interval=0.5
        )
        rolled = time.monotonic() - t0
        time.sleep(3)
    for component in ("api", "operator"):
        assert all(
            p.metadata.annotations.get("e2e-rollout") == stamp
            for p in pods(stack.kube, stack.release, component)
        )
    results.record(
        "helm_upgrade", helm_wait_s=round(upgraded, 1), all_pods_ready_s=round(rolled, 1), **traffic.summary()
    )
    check_landed(idp, gid, traffic)
