"""Shared benchmark plumbing: a real control plane, fast seeding, the Go load generator,
process RSS, and result files (bench/results/*.json)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from kubernetes import client as kclient
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from scim_core import constants as c
from scim_core.tokens import generate_token, token_sha256
from scim_devenv import processes
from scim_devenv.binaries import cache_root
from scim_devenv.controlplane import ControlPlane, free_port

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"


def loadgen() -> Path:
    """The Go load generator, built once per source version into the cache."""
    src = BENCH_DIR / "loadgen"
    digest = hashlib.sha256((src / "main.go").read_bytes() + (src / "go.mod").read_bytes()).hexdigest()[:12]
    out = cache_root() / "bin" / f"loadgen-{digest}" / "loadgen"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "build", "-o", str(out), "."], cwd=src, check=True, env=dict(os.environ, CGO_ENABLED="0")
        )
    return out


def load(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [str(loadgen())], input=json.dumps(spec), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def api_client(cp: ControlPlane) -> aclient.ApiClient:
    """An async client of ``cp`` with room for many concurrent requests."""
    conf = aclient.Configuration()
    await aconfig.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=conf)
    conf.connection_pool_maxsize = 64
    return aclient.ApiClient(conf)


async def create_many(
    cp: ControlPlane, namespace: str, plural: str, bodies: list[dict[str, Any]], concurrency: int = 32
) -> None:
    """Create objects of one of our kinds, ``concurrency`` requests in flight: plain aiohttp
    and orjson (the generated client spends milliseconds per request, the seeding rate)."""
    url = f"{cp.url}/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{plural}"
    ssl_ctx = ssl.create_default_context(cafile=str(cp.pki.ca_cert))
    ssl_ctx.load_cert_chain(str(cp.pki.admin_cert), str(cp.pki.admin_key))
    todo = iter(bodies)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=concurrency)
    ) as session:

        async def worker() -> None:
            for body in todo:
                for attempt in range(10):
                    async with session.post(url, data=orjson.dumps(body), headers=headers) as r:
                        await r.read()
                        if r.status in (201, 409):  # 409: already there (a retried create)
                            break
                        if (r.status != 429 and r.status < 500) or attempt == 9:
                            raise RuntimeError(f"create {plural}: HTTP {r.status}")
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def workspace_with_token(cp: ControlPlane, namespace: str, spec: dict[str, Any] | None = None) -> str:
    """A namespace + ScimWorkspace whose token hash is published by hand (no operator)."""
    token = generate_token()
    cp.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": c.API_VERSION, "kind": c.WORKSPACE_KIND, "metadata": {"name": "ws", "namespace": namespace},
         "spec": spec or {"displayName": "Bench"}},
    ])  # fmt: skip
    status = {
        "status": {
            "tokenHashes": [
                {
                    "sha256": token_sha256(token),
                    "fingerprint": "sha256:bench",
                    "notAfter": "2099-01-01T00:00:00Z",
                }
            ]
        }
    }
    cp.kubectl(
        "patch",
        "scimworkspace",
        "ws",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    return token


def start_process(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child that dies with us (no orphan operator or API after a failed run)."""
    log.write_bytes(b"")
    return processes.spawn(cmd, log, env={**os.environ, **env})


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def check(label: str, ok: bool) -> str:
    return f"{label}: {'PASS' if ok else 'FAIL'}"


def metric(port: int, name: str) -> float:
    """A metric's value summed over its labels; -1 while the endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


def start_operator(
    cp: ControlPlane, log: Path, identity: str = "bench-leader", env: dict[str, str] | None = None
) -> tuple[Any, int]:
    """An operator process on ``cp`` (``env``: more settings); returns it and its metrics port."""
    port = free_port()
    proc = start_process([bin_path("scim-operator"), "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
                          "--identity", identity],
                         {"KUBECONFIG": str(cp.kubeconfig), "SCIM_METRICS_PORT": str(port), "SCIM_LOG_FORMAT": "json",
                          "SCIM_WORKSPACE_RESYNC_SECONDS": "30", **(env or {})}, log)  # fmt: skip
    return proc, port


def operator_token(kube: Any, namespace: str) -> str:
    """The token the operator wrote into the workspace's Secret (it replaces a hand-published one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            secret = kclient.CoreV1Api(kube).read_namespaced_secret("scim-token", namespace)
            return base64.b64decode(secret.data[c.TOKEN_SECRET_KEY]).decode()
        except kclient.exceptions.ApiException:
            time.sleep(0.5)
    raise RuntimeError("the operator made no token")
