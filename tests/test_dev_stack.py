"""`make run` end to end: it becomes ready, serves SCIM with the demo token, stops cleanly
on Ctrl-C, and a second start finds the objects of the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scim_devenv.controlplane import ControlPlane, free_port

pytestmark = pytest.mark.cluster


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _start(run_dir: Path, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, SCIM_RUN_DIR=str(run_dir), SCIM_PORT=str(port))
    env.pop("KUBECONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "scim_devenv", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        out.append(line)
        if "Press Ctrl-C to stop" in line:
            return "".join(out)
    proc.kill()
    raise AssertionError("make run never became ready:\n" + "".join(out))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    return rest


def test_make_run_ready_and_persistent(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    out = _wait_ready(proc)
    try:
        env = _env_file(tmp_path / "dev.env")
        assert env["SCIM_BASE_URL"] == f"http://127.0.0.1:{port}/api/auth/scim/v2"
        assert env["SCIM_TOKEN"] in out and "curl" in out
        req = urllib.request.Request(
            env["SCIM_BASE_URL"] + "/ServiceProviderConfig",
            headers={"Authorization": f"Bearer {env['SCIM_TOKEN']}"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200 and r.headers["content-type"].startswith("application/scim+json")
        kubectl = [str(ControlPlane().kubectl_path), f"--kubeconfig={env['KUBECONFIG']}"]
        # the printed example works: a group pushed over SCIM becomes access
        body = json.dumps({"displayName": "Demo Admins", "members": [{"value": "usr-ada"}]}).encode()
        post = urllib.request.Request(
            env["SCIM_BASE_URL"] + "/Groups", data=body, method="POST",
            headers={"Authorization": f"Bearer {env['SCIM_TOKEN']}", "Content-Type": "application/scim+json"},
        )  # fmt: skip
        with urllib.request.urlopen(post, timeout=10) as r:
            gid = json.loads(r.read())["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run([*kubectl, "get", "rolebinding", f"scim-{gid}-admins-edit", "-n", "demo", "-o", "json"],
                                 capture_output=True, text=True).stdout  # fmt: skip
            if out and "oidc:ada@example.com" in out:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the demo group never became a RoleBinding")
        crds = subprocess.run(
            [*kubectl, "get", "crd", "-o", "name"], capture_output=True, text=True, check=True
        ).stdout
        assert crds.count("scim.optimaite.eu") == 4  # three kinds + member shards
        subprocess.run(
            [*kubectl, "create", "configmap", "survivor", "-n", "demo", "--from-literal=a=b"],
            check=True,
            capture_output=True,
        )
    finally:
        _stop(proc)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.strip()
    assert leftovers == "", f"orphan processes: {leftovers}"

    proc = _start(tmp_path, port)
    _wait_ready(proc)
    try:
        env2 = _env_file(tmp_path / "dev.env")
        assert env2["SCIM_TOKEN"] == env["SCIM_TOKEN"]  # the Secret survived, so did the token
        got = subprocess.run(
            [*kubectl, "get", "configmap", "survivor", "-n", "demo", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(got)["data"] == {"a": "b"}
    finally:
        _stop(proc)
