"""``make run``: the whole system on this machine.

A persistent control plane under ``run/cluster`` (objects survive a restart), the CRDs,
the operator and the SCIM API as child processes, and a demo workspace whose token is
printed and written to ``run/dev.env``. Ctrl-C stops everything in order.

Every port is unprivileged and settled before anything starts (``ports.py``): the API on
``SCIM_PORT`` (8080), the operator's metrics and liveness and the API's metrics on free
ports unless ``SCIM_METRICS_PORT`` / ``SCIM_LIVENESS_PORT`` / ``SCIM_API_METRICS_PORT`` say
otherwise, the control plane on free ports. So a second stack (another ``SCIM_RUN_DIR`` and
``SCIM_PORT``) and the tests run beside it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scim_core import constants as c

from . import processes
from .controlplane import ControlPlane, ControlPlaneError
from .crds import REPO_ROOT, install_crds
from .ports import (
    API_METRICS_PORT,
    API_PORT,
    HOST,
    LIVENESS_PORT,
    METRICS_PORT,
    STACK_PORTS,
    PortError,
    resolve,
)

RUN_DIR = Path(os.environ.get("SCIM_RUN_DIR") or REPO_ROOT / "run")
DEMO_NAMESPACE = "demo"
DEMO_WORKSPACE = "demo"


def demo_objects() -> list[dict[str, Any]]:
    """The demo workspace: a namespace, a ScimWorkspace and two existing users."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}},
        {
            "apiVersion": c.API_VERSION,
            "kind": c.WORKSPACE_KIND,
            "metadata": {"name": DEMO_WORKSPACE, "namespace": DEMO_NAMESPACE},
            "spec": {
                "displayName": "Demo workspace",
                "subjects": {"prefix": "oidc:", "userField": "userName"},
                "roleMappings": [
                    {"name": "admins-edit", "groups": {"displayName": "Demo Admins"}, "clusterRole": "edit"},
                    {"name": "everyone-view", "groups": {"pattern": ".*"}, "clusterRole": "view"},
                ],
            },
        },
        *[
            {
                "apiVersion": c.API_VERSION,
                "kind": c.USER_KIND,
                "metadata": {"name": uid, "namespace": DEMO_NAMESPACE},
                "spec": {
                    "userName": user,
                    "displayName": name,
                    "active": True,
                    "emails": [{"value": user, "primary": True}],
                },
            }
            for uid, user, name in (
                ("usr-ada", "ada@example.com", "Ada Lovelace"),
                ("usr-grace", "grace@example.com", "Grace Hopper"),
            )
        ],
    ]


def _check_alive(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Fail at once, with its log's tail, when a child died (e.g. could not bind its port)."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise ControlPlaneError(
                f"{name} exited early:\n{processes.log_tail(RUN_DIR / 'logs' / f'{name}.log')}"
            )


def _wait_for_token(cp: ControlPlane, deadline: float, procs: dict[str, subprocess.Popen[bytes]]) -> str:
    while time.monotonic() < deadline:
        _check_alive(procs)
        out = cp.kubectl("get", "secret", "scim-token", "-n", DEMO_NAMESPACE, "-o", "json", check=False)
        if out:
            data = json.loads(out).get("data", {})
            if c.TOKEN_SECRET_KEY in data:
                return base64.b64decode(data[c.TOKEN_SECRET_KEY]).decode()
        time.sleep(0.5)
    raise ControlPlaneError("the operator did not create the demo workspace token in time")


def _wait_for_api(url: str, token: str, deadline: float, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    request = urllib.request.Request(
        f"{url}/ServiceProviderConfig", headers={"Authorization": f"Bearer {token}"}
    )
    while time.monotonic() < deadline:
        _check_alive(procs)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ControlPlaneError("the SCIM API did not accept the demo token in time")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (``run/...``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def ports_summary(ports: dict[str, int], cp: ControlPlane) -> str:
    """One line naming every port the stack listens on, and how each is set."""
    own = [
        f"{s.purpose.removeprefix('the ')} {ports[s.variable]} ({s.variable})"
        for s in STACK_PORTS
        if ports[s.variable]
    ]
    plane = f"kube-apiserver {cp.port}, etcd {cp.etcd_port} + peer {cp.etcd_peer_port} (free ports)"
    return f"{', '.join(own)}, {plane}"


def run_stack(fresh: bool = False) -> int:
    try:  # before anything starts: a taken or bad port is one line, not a trace in a log
        ports = resolve(STACK_PORTS, os.environ)
    except PortError as exc:
        print(f"[run] {exc}", file=sys.stderr)
        return 1
    if fresh:
        shutil.rmtree(RUN_DIR, ignore_errors=True)
    (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
    port = ports[API_PORT.variable]
    metrics_port = ports[METRICS_PORT.variable]
    liveness_port = ports[LIVENESS_PORT.variable]
    liveness = f"http://{HOST}:{liveness_port}/healthz" if liveness_port else ""
    stop = False

    def _interrupt(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    cp = ControlPlane(data_dir=RUN_DIR / "cluster", controller_manager=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        print("[run] starting etcd + kube-apiserver + kube-controller-manager ...", flush=True)
        cp.start()
        install_crds(cp)
        cp.apply(demo_objects())
        env = dict(
            os.environ, KUBECONFIG=str(cp.kubeconfig), SCIM_HOST=HOST, SCIM_PORT=str(port),
            SCIM_METRICS_PORT=str(metrics_port), SCIM_API_METRICS_PORT=str(ports[API_METRICS_PORT.variable]),
        )  # fmt: skip
        bin_dir = Path(sys.executable).parent
        procs["operator"] = processes.spawn(
            [str(bin_dir / "scim-operator"), "--liveness", liveness],
            RUN_DIR / "logs" / "operator.log",
            env=env,
        )
        procs["api"] = processes.spawn([str(bin_dir / "scim-api")], RUN_DIR / "logs" / "api.log", env=env)
        deadline = time.monotonic() + 90
        token = _wait_for_token(cp, deadline, procs)
        base_url = f"http://{HOST}:{port}{c.SCIM_BASE_PATH}"
        _wait_for_api(base_url, token, deadline, procs)
        (RUN_DIR / "dev.env").write_text(
            f"SCIM_BASE_URL={base_url}\nSCIM_TOKEN={token}\nKUBECONFIG={cp.kubeconfig}\n"
            + "".join(f"{variable}={value}\n" for variable, value in ports.items())
        )
        (RUN_DIR / "dev.env").chmod(0o600)
        run = _shown(RUN_DIR)
        print(
            f"""
[run] ready. Everything is in {run}/ (logs in {run}/logs/, data in {run}/cluster/).
  SCIM base URL : {base_url}
  Bearer token  : {token}
  KUBECONFIG    : {cp.kubeconfig}
  Ports on {HOST}: {ports_summary(ports, cp)}
  (the same as shell variables: source {run}/dev.env)

  curl -H "Authorization: Bearer $SCIM_TOKEN" "$SCIM_BASE_URL/ServiceProviderConfig"
  curl -H "Authorization: Bearer $SCIM_TOKEN" -H "Content-Type: application/scim+json" \\
       -d '{{"displayName":"Demo Admins","members":[{{"value":"usr-ada"}}]}}' "$SCIM_BASE_URL/Groups"
  # then: the operator binds oidc:ada@example.com to `edit` in namespace demo
  KUBECONFIG={cp.kubeconfig} {cp.kubectl_path} get scimworkspaces,scimgroups,scimusers -A

Press Ctrl-C to stop.""",
            flush=True,
        )
        while not stop:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"[run] {name} exited with {proc.returncode}; see {run}/logs/{name}.log", flush=True
                    )
                    stop = True
            time.sleep(0.5)
        return 0
    except ControlPlaneError as exc:
        print(f"[run] {exc}", file=sys.stderr)
        return 1
    finally:
        print("[run] stopping ...", flush=True)
        for proc in procs.values():
            processes.stop(proc)
        cp.stop()
        print("[run] stopped.", flush=True)
