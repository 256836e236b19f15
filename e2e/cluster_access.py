"""How the suite reaches a release in any cluster: its kubeconfig, its objects, and the SCIM
API *through its Service*.

A `kubectl port-forward` to an API Pod would pin every request to that Pod. Instead a small
relay Pod (the project image, plain asyncio) runs in the release namespace and opens one
connection to the Service's ClusterIP per incoming connection, so kube-proxy picks an API Pod
for each; only the relay is port-forwarded. The test client opens one connection per request
(urllib), so requests spread over every API Pod, as an IdP's traffic through a load balancer.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

RELAY_NAME = "e2e-relay"
#: The label the chart puts on both metrics Services (the ServiceMonitor selects them by it).
METRICS_LABEL = "scim.optimaite.eu/metrics"
RELAY_PORT = 8080
# One upstream connection per client connection; bytes copied both ways until either closes.
RELAY_CODE = """
import asyncio, os
UP = (os.environ["UPSTREAM_HOST"], int(os.environ["UPSTREAM_PORT"]))
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection(*UP)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", 8080, backlog=512)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


@dataclass(frozen=True)
class Release:
    """Where the chart is installed, from the environment `make e2e-cluster` sets."""

    kubeconfig: str
    namespace: str
    name: str
    image: str
    chart: str
    helm: str

    @classmethod
    def from_env(cls) -> Release:
        return cls(
            kubeconfig=os.environ["E2E_KUBECONFIG"],
            namespace=os.environ.get("E2E_NAMESPACE", "scim-kube"),
            name=os.environ.get("E2E_RELEASE", "scim"),
            image=os.environ["E2E_IMAGE"],
            chart=os.environ.get("E2E_CHART", str(Path(__file__).parents[1] / "charts" / "scim-kube")),
            helm=os.environ.get("E2E_HELM") or shutil.which("helm") or "helm",
        )

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, *args],
            check=True, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return out.stdout

    def helm_cmd(self, *args: str, timeout: float = 600) -> str:
        out = subprocess.run(
            [self.helm, "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, *args],
            check=True, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return out.stdout


def new_client(release: Release) -> client.ApiClient:
    return config.new_client_from_config(config_file=release.kubeconfig)


def pods(kube: client.ApiClient, release: Release, component: str) -> list[Any]:
    """The component's Pods that are not being deleted."""
    items = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(release.namespace, label_selector=release.selector(component))
        .items
    )
    return [p for p in items if p.metadata.deletion_timestamp is None]


def ready(pod: Any) -> bool:
    conditions = (pod.status and pod.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def api_service(kube: client.ApiClient, release: Release) -> Any:
    """The API's SCIM Service (not its metrics Service, which the chart labels as such)."""
    services = [
        s
        for s in client.CoreV1Api(kube)
        .list_namespaced_service(release.namespace, label_selector=release.selector("api"))
        .items
        if (s.metadata.labels or {}).get(METRICS_LABEL) != "true"
    ]
    assert len(services) == 1, [s.metadata.name for s in services]
    return services[0]


def _relay_pod(release: Release, host: str, port: int) -> dict[str, Any]:
    """Pod Security `restricted` compliant, like the chart's own Pods."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": RELAY_NAME, "labels": {"app.kubernetes.io/name": RELAY_NAME}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "relay",
                "image": release.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-c", RELAY_CODE],
                "env": [{"name": "UPSTREAM_HOST", "value": host}, {"name": "UPSTREAM_PORT", "value": str(port)}],
                "ports": [{"containerPort": RELAY_PORT, "name": "relay"}],
                "readinessProbe": {"tcpSocket": {"port": RELAY_PORT}, "periodSeconds": 2},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip


@contextmanager
def relay(kube: client.ApiClient, release: Release) -> Iterator[str]:
    """The relay Pod, deleted afterwards; yields its Pod IP (as the API Pods see it)."""
    core = client.CoreV1Api(kube)
    svc = api_service(kube, release)
    port = next(p.port for p in svc.spec.ports if p.name == "http")
    _delete_pod(core, release.namespace, RELAY_NAME)
    core.create_namespaced_pod(release.namespace, _relay_pod(release, svc.spec.cluster_ip, port))
    try:
        deadline = time.monotonic() + 120
        while not ready(pod := core.read_namespaced_pod(RELAY_NAME, release.namespace)):
            assert time.monotonic() < deadline, f"relay Pod not Ready: {pod.status}"
            time.sleep(0.5)
        yield str(pod.status.pod_ip)
    finally:
        _delete_pod(core, release.namespace, RELAY_NAME, wait=False)


def _delete_pod(core: client.CoreV1Api, namespace: str, name: str, wait: bool = True) -> None:
    try:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return
    while wait:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortForward:
    """`kubectl port-forward` to the relay Pod on a fixed local port, restarted if it exits
    (it does on some stream errors), so the suite's base URL never changes."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.port = _free_port()
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self.restarts = 0
        self._thread = threading.Thread(target=self._run, name="port-forward", daemon=True)

    def __enter__(self) -> PortForward:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._listening():
            assert time.monotonic() < deadline, "kubectl port-forward did not start"
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
        self._thread.join(timeout=10)

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._proc = subprocess.Popen(
                ["kubectl", "--kubeconfig", self.release.kubeconfig, "--namespace", self.release.namespace,
                 "port-forward", "--address", "127.0.0.1", f"pod/{RELAY_NAME}", f"{self.port}:{RELAY_PORT}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            self._proc.wait()
            if not self._stop.is_set():
                self.restarts += 1
                time.sleep(0.2)


def recent_connections(release: Release, pod_name: str, peer_ip: str, port: int) -> int:
    """TCP connections to ``port`` from ``peer_ip`` that the Pod holds or closed in the last
    minute (TIME_WAIT): which API Pods the Service actually sent the relay's traffic to."""
    script = (
        "import sys\n"
        "n = 0\n"
        "for path in ('/proc/net/tcp', '/proc/net/tcp6'):\n"
        "    try: lines = open(path).read().splitlines()[1:]\n"
        "    except OSError: continue\n"
        "    for line in lines:\n"
        "        local, remote = line.split()[1:3]\n"
        "        if int(local.split(':')[1], 16) == int(sys.argv[1]) and remote.split(':')[0].endswith(sys.argv[2]): n += 1\n"
        "print(n)\n"
    )
    # The peer address as /proc/net/tcp prints it: little-endian hex (IPv4, or its tail in an
    # IPv4-mapped IPv6 address).
    hex_ip = "".join(f"{int(b):02X}" for b in reversed(peer_ip.split(".")))
    out = release.kubectl("exec", pod_name, "--", "python", "-c", script, str(port), hex_ip)
    return int(out.strip())
