"""`make run` end to end: it becomes ready, serves SCIM with the demo token, stops cleanly
on Ctrl-C, and a second start finds the objects of the first. Its ports: two stacks run side
by side, a taken port is one line before anything starts, nothing listens on a privileged
port, and a user who is not root runs it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_devenv import binaries
from scim_devenv.controlplane import ControlPlane, free_port
from scim_devenv.ports import STACK_PORTS

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
CONTROL_PLANE_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"]


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _stack_env(run_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """This test process's environment for a stack in ``run_dir`` on ``port``; the operator's
    ports unset (the stack picks free ones) unless ``extra`` sets them."""
    env = dict(os.environ, SCIM_RUN_DIR=str(run_dir), SCIM_PORT=str(port))
    for name in ["KUBECONFIG", *(s.variable for s in STACK_PORTS if s.variable != "SCIM_PORT")]:
        env.pop(name, None)
    env.update(extra)
    return env


def _start(env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scim_devenv", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
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
    proc = _start(_stack_env(tmp_path, port))
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

    proc = _start(_stack_env(tmp_path, port))
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


# ------------------------------------------------------------------------------------ ports


def _process_tree(root: int) -> set[int]:
    """``root`` and all its descendants (the stack's children run in their own sessions)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def _listening_ports(pids: Iterable[int]) -> set[int]:
    """TCP ports in LISTEN and bound UDP ports held by ``pids`` (from /proc/net)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == listening and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _printed_ports(out: str) -> set[int]:
    """The ports named on the ready message's ``Ports on 127.0.0.1:`` line."""
    [line] = [line for line in out.splitlines() if line.strip().startswith("Ports on ")]
    return {int(n) for n in re.findall(r"\b\d{4,5}\b", line.split(":", 1)[1])}


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        status: int = r.status
        return status


def _check_stack(proc: subprocess.Popen[str], run_dir: Path, out: str) -> set[int]:
    """The demo token works, the operator's endpoints and the API's metrics answer on the
    ports written to dev.env, and the stack's processes listen on exactly the printed ports,
    none privileged."""
    env = _env_file(run_dir / "dev.env")
    assert _get(env["SCIM_BASE_URL"] + "/ServiceProviderConfig", env["SCIM_TOKEN"]) == 200
    assert _get(f"http://127.0.0.1:{env['SCIM_METRICS_PORT']}/metrics") == 200
    assert _get(f"http://127.0.0.1:{env['SCIM_API_METRICS_PORT']}/metrics") == 200
    assert _get(f"http://127.0.0.1:{env['SCIM_LIVENESS_PORT']}/healthz") == 200
    listening = _listening_ports(_process_tree(proc.pid))
    assert listening and min(listening) >= 1024, listening
    assert {int(env[s.variable]) for s in STACK_PORTS} <= listening
    assert listening == _printed_ports(out), out
    return listening


def _stop_checked(proc: subprocess.Popen[str], run_dir: Path) -> None:
    _stop(proc)
    leftovers = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.strip()
    assert leftovers == "", f"orphan processes: {leftovers}"


@pytest.mark.timeout(600)
def test_two_stacks_side_by_side(tmp_path: Path) -> None:
    """Two `make run`s with their own SCIM_RUN_DIR and SCIM_PORT: each picks its own
    operator ports, serves its demo token, and listens only where it says."""
    dirs = [tmp_path / "one", tmp_path / "two"]
    procs = [_start(_stack_env(d, free_port())) for d in dirs]
    try:
        outs = [_wait_ready(p, timeout=300) for p in procs]
        ports = [_check_stack(p, d, out) for p, d, out in zip(procs, dirs, outs, strict=True)]
        assert not ports[0] & ports[1]
    finally:
        for proc, run_dir in zip(procs, dirs, strict=True):
            if proc.poll() is None:
                _stop_checked(proc, run_dir)


@pytest.mark.parametrize("variable", [s.variable for s in STACK_PORTS])
def test_taken_port_is_one_line_before_anything_starts(tmp_path: Path, variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _stack_env(tmp_path, port if variable == "SCIM_PORT" else free_port(), **{variable: str(port)})
        done = subprocess.run(
            [sys.executable, "-m", "scim_devenv", "run"], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} ({variable}, " in lines[0] and "already in use" in lines[0]
    assert f"set {variable} to a free port" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "cluster").exists()  # checked before the control plane started


@contextlib.contextmanager
def _traversable(paths: Iterable[Path]) -> Iterator[None]:
    """Let other users reach ``paths``: o+x on each directory on the way that lacks it (e.g.
    /root, where pyenv's Python lives), restored afterwards. Files are assumed readable
    (umask 022). A lock keeps two runs of this test from restoring under each other."""
    with open(Path(tempfile.gettempdir()) / "scim-kube-traversable.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        changed: dict[Path, int] = {}
        try:
            for path in paths:
                for directory in [*reversed(path.parents), path]:
                    mode = directory.stat().st_mode
                    if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH and directory not in changed:
                        changed[directory] = stat.S_IMODE(mode)
                        directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            yield
        finally:
            for directory, mode in changed.items():
                directory.chmod(mode)


@contextlib.contextmanager
def _unprivileged_user(home: Path, reach: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Popen arguments that run a child as a user who is not root: when we are root, a system
    user created for the test (removed afterwards) who owns ``home`` and can reach ``reach``;
    else ourselves (already not root)."""
    if os.geteuid() != 0:
        yield {}
        return
    name = f"scimdev-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
         "--shell", "/usr/sbin/nologin", name],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        user = pwd.getpwnam(name)
        for path in [home, *home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        with _traversable(reach):
            yield {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.mark.timeout(600)
def test_stack_runs_as_unprivileged_user() -> None:
    """`make run` as a user who is not root (most developers): every process of the stack
    runs as that user, the demo token works, and no port below 1024 is opened."""
    bins = binaries.ensure(CONTROL_PLANE_BINARIES)
    home = Path(tempfile.mkdtemp(prefix="scim-kube-user-"))
    run_dir = home / "run"
    run_dir.mkdir()
    reach = [
        Path(sys.executable),
        Path(sys.executable).resolve(),
        Path(sys.base_prefix),
        REPO,
        *bins.values(),
    ]
    try:
        with _unprivileged_user(home, reach) as as_user:
            env = _stack_env(
                run_dir, free_port(), HOME=str(home), PYTHONDONTWRITEBYTECODE="1",
                **{binaries.BINARIES[n].env_override: str(p) for n, p in bins.items()},
            )  # fmt: skip
            for name in ("XDG_CACHE_HOME", "SCIM_KUBE_CACHE", "USER", "LOGNAME"):
                env.pop(name, None)
            proc = _start(env, cwd=home, **as_user)
            try:
                out = _wait_ready(proc, timeout=300)
                _check_stack(proc, run_dir, out)
                uid = as_user.get("user", os.getuid())
                assert uid != 0
                for pid in _process_tree(proc.pid):
                    with contextlib.suppress(FileNotFoundError):
                        status = Path(f"/proc/{pid}/status").read_text()
                        assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), (pid, status)
            finally:
                if proc.poll() is None:
                    _stop_checked(proc, run_dir)
    finally:
        shutil.rmtree(home, ignore_errors=True)
