"""A real local Kubernetes control plane: etcd + kube-apiserver (+ kube-controller-manager).

Like controller-runtime's envtest, but with TLS, the RBAC authorizer and a ServiceAccount
issuer on, so tests see what a real cluster does. Used by the test fixtures, ``make run``
and the benchmarks. Two instances can run side by side (free loopback ports, own dirs).
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from . import binaries, processes
from .pki import Pki, ensure_pki
from .ports import free_port

__all__ = ["ControlPlane", "ControlPlaneError", "free_port"]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager when asked).

    ``data_dir`` set: etcd data and PKI persist there (objects survive a restart).
    Otherwise everything lives in a temporary directory removed on stop.
    """

    data_dir: Path | None = None
    controller_manager: bool = False
    startup_timeout: float = 120.0
    #: An audit policy file: the API server then logs matching requests to ``audit_log``
    #: (JSON lines), for tests that must see exactly what a client asked for.
    audit_policy: Path | None = None
    #: More kube-apiserver flags (bench-scale: a longer etcd compaction interval).
    apiserver_flags: tuple[str, ...] = ()
    workdir: Path = field(init=False)
    #: kube-apiserver's secure port; etcd's client and peer ports (all free loopback ports).
    port: int = field(init=False, default=0)
    etcd_port: int = field(init=False, default=0)
    etcd_peer_port: int = field(init=False, default=0)
    kubeconfig: Path = field(init=False)
    pki: Pki = field(init=False)
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(init=False, default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(init=False, default=None)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ControlPlane:
        bins = binaries.ensure(
            ["etcd", "kube-apiserver", "kubectl"]
            + (["kube-controller-manager"] if self.controller_manager else [])
        )
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="scim-kube-cp-")
            self.workdir = Path(self._tmp.name)
        else:
            self.workdir = self.data_dir
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_pki(self.workdir / "pki")
        self.kubeconfig = self.workdir / "kubeconfig"
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        try:
            self._start_etcd(bins["etcd"], logs)
            self._start_apiserver(bins["kube-apiserver"], logs)
            self._write_kubeconfig()
            self._wait_ready()
            if self.controller_manager:
                self._start_controller_manager(bins["kube-controller-manager"], logs)
        except BaseException:
            self.stop()
            raise
        return self

    def stop_component(self, name: str) -> None:
        """Stop one process (e.g. ``kube-apiserver``) to test how clients cope with its loss."""
        for proc_name, proc in self._procs:
            if proc_name == name:
                processes.stop(proc)

    def pid(self, name: str) -> int:
        """The process id of one component (``etcd``, ``kube-apiserver``), e.g. for its RSS."""
        return next(proc.pid for proc_name, proc in self._procs if proc_name == name)

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """Stop kube-apiserver, wait ``down_seconds``, start it again on the same port (the
        kubeconfig stays valid) and wait until it answers: how clients survive a restart.
        Call it from a thread that outlives the control plane: a child dies with the thread
        that started it (``PR_SET_PDEATHSIG``)."""
        self.stop_component("kube-apiserver")
        self._procs = [(n, p) for n, p in self._procs if n != "kube-apiserver"]
        time.sleep(down_seconds)
        self._start_apiserver(binaries.ensure(["kube-apiserver"])["kube-apiserver"], self.workdir / "logs",
                              port=self.port)  # fmt: skip
        self._wait_ready()

    def stop(self) -> None:
        for _name, proc in reversed(self._procs):
            processes.stop(proc)
        self._procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ components

    def _start_etcd(self, etcd: Path, logs: Path) -> None:
        self.etcd_port = free_port()
        self.etcd_peer_port = peer = free_port()
        persistent = self.data_dir is not None
        args = [
            str(etcd),
            f"--data-dir={self.workdir / 'etcd'}",
            "--name=scim-kube",
            f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=scim-kube=http://127.0.0.1:{peer}",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ]
        if not persistent:
            args.append("--unsafe-no-fsync=true")
        self._procs.append(("etcd", processes.spawn(args, logs / "etcd.log")))

    def _start_apiserver(self, apiserver: Path, logs: Path, port: int = 0) -> None:
        self.port = port or free_port()
        p = self.pki
        args = [
            str(apiserver),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={p.serving_cert}",
            f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_cert}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer=https://127.0.0.1:{self.port}/",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--endpoint-reconciler-type=none",
            "--v=0",
            *self.apiserver_flags,
        ]
        if self.audit_policy is not None:
            args += [f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]
        self._procs.append(("kube-apiserver", processes.spawn(args, logs / "kube-apiserver.log")))

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    def _start_controller_manager(self, kcm: Path, logs: Path) -> None:
        args = [
            str(kcm),
            f"--kubeconfig={self.kubeconfig}",
            "--controllers=garbagecollector,namespace,clusterrole-aggregation",
            "--leader-elect=false",
            "--secure-port=0",
            "--use-service-account-credentials=false",
            "--concurrent-gc-syncs=10",
            "--v=0",
        ]
        self._procs.append(
            ("kube-controller-manager", processes.spawn(args, logs / "kube-controller-manager.log"))
        )

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "scim-kube",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": _b64(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": _b64(self.pki.admin_cert),
                        "client-key-data": _b64(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "scim-kube", "context": {"cluster": "scim-kube", "user": "admin"}}],
            "current-context": "scim-kube",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        ctx = self._ssl_context()
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{name} exited with {proc.returncode}:\n"
                        + processes.log_tail(self.workdir / "logs" / f"{name}.log")
                    )
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {self.startup_timeout}s ({last}):\n"
            + processes.log_tail(self.workdir / "logs" / "kube-apiserver.log")
        )

    # ------------------------------------------------------------------ helpers

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubectl_path(self) -> Path:
        return binaries.ensure(["kubectl"])["kubectl"]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run kubectl as the admin and return its stdout."""
        result = subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def apply(self, objects: list[dict[str, Any]]) -> None:
        """Server-side apply of manifests, as the admin."""
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=scim-devenv", "-f", "-",
            input=yaml.safe_dump_all(objects),
        )  # fmt: skip

    def token_kubeconfig(self, token: str, path: Path) -> Path:
        """A kubeconfig that authenticates with a bearer token (e.g. a ServiceAccount's)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": "token", "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = "token"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, seconds: int = 86400) -> str:
        """A token for a ServiceAccount from the TokenRequest API (the SA must exist)."""
        return self.kubectl("create", "token", name, "-n", namespace, f"--duration={seconds}s").strip()
