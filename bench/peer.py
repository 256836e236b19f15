"""The peer side of ``make bench-api``: python-scim's scim2-server, in memory, on this machine.

It runs from its own virtualenv (cached in ``~/.cache/scim-kube``, made on first use with
pip from PyPI) because it pins its own scim2-models; it is served like the SCIM API (uvicorn,
one worker) and gets the same requests from the same load generator: the group filter read
and member adds on one growing group. Version: ``BENCH_PEER_VERSION`` (default 0.8.3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from scim_devenv.controlplane import free_port

from .common import load, start_process, wait_http

VERSION = os.environ.get("BENCH_PEER_VERSION", "0.8.3")
REPO = Path(__file__).resolve().parents[1]
VENV = Path.home() / ".cache" / "scim-kube" / f"peer-scim2-server-{VERSION}"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _venv() -> Path:
    python = VENV / "bin" / "python"
    if not (VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"scim2-server=={VERSION}", "uvicorn"],
            check=True,
        )
        (VENV / ".installed").touch()
    return python


@contextmanager
def peer_server(log_dir: Path, groups: int = 0) -> Iterator[str]:
    """scim2-server listening on a free loopback port, holding ``groups`` groups (``Group 0``
    … stored in memory before it serves: bench/peer_server.py); yields its base URL (``…/v2``)."""
    port = free_port()
    proc = start_process(
        [str(_venv()), "-m", "uvicorn", "--factory", "--app-dir", str(REPO), "bench.peer_server:app",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        {"BENCH_PEER_GROUPS": str(groups)}, log_dir / "bench-peer.log",
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v2"
        wait_http(f"{base}/ServiceProviderConfig", timeout=120 + groups / 500)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/scim+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def filter_urls(base: str, groups: int) -> list[str]:
    """The peer's ``displayName eq`` reads: the same 500 groups as ours (its names unpadded)."""
    return [
        f"{base}/Groups?filter=displayName%20eq%20%22Group%20{i}%22&excludedAttributes=members"
        for i in range(0, groups, max(1, groups // 500))
    ]


@contextmanager
def started_peer(log_dir: Path, groups: int) -> Iterator[str]:
    """``peer_server`` holding ``groups`` groups, its start (the seeding) timed and printed."""
    t0 = time.monotonic()
    with peer_server(log_dir, groups) as base:
        print(f"peer: {groups} groups stored in memory in {time.monotonic() - t0:.1f}s", flush=True)
        yield base


def run_peer(
    log_dir: Path, groups: int, duration: float, adds: int, clients: int, base: str | None = None
) -> dict[str, Any]:
    """The peer's figures for the same requests: filter reads (1 and 8 clients) on
    ``groups`` groups, and ``adds`` member adds on one growing group with ``clients``; on the
    peer at ``base`` when one runs already (it holds the groups), else one started here."""
    with nullcontext(base) if base else started_peer(log_dir, groups) as base:
        urls = filter_urls(base, groups)
        load({"method": "GET", "urls": urls, "concurrency": 2, "duration_s": 2})  # warm-up
        one = load({"method": "GET", "urls": urls, "concurrency": 1, "duration_s": duration})
        eight = load({"method": "GET", "urls": urls, "concurrency": 8, "duration_s": duration})
        target = _post(f"{base}/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Patch target"})["id"]
        add = load({
            "method": "PATCH", "urls": [f"{base}/Groups/{target}"], "concurrency": clients, "requests": adds,
            "headers": {"Content-Type": "application/scim+json"},
            "body": json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "add", "path": "members", "value": [{"value": "usr-p{n}"}]}]}),
        })  # fmt: skip
    return {
        "version": VERSION,
        "groups_filter": {"one_client": one, "eight_clients": eight},
        "member_add": add,
    }
