"""Shared benchmark plumbing: a real control plane, fast seeding, the Go load generator,
process RSS, and result files (bench/results/*.json)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from scim_core import constants as c
from scim_core.tokens import generate_token, token_sha256
from scim_devenv import processes
from scim_devenv.binaries import cache_root
from scim_devenv.controlplane import ControlPlane

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


async def _api(cp: ControlPlane) -> aclient.ApiClient:
    conf = aclient.Configuration()
    await aconfig.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=conf)
    conf.connection_pool_maxsize = 64
    return aclient.ApiClient(conf)


async def create_many(
    cp: ControlPlane, namespace: str, plural: str, bodies: list[dict[str, Any]], concurrency: int = 32
) -> None:
    api = await _api(cp)
    custom = aclient.CustomObjectsApi(api)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            await custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, plural, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await api.close()


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
