"""Two real ``scim-api`` processes on the session's control plane, as the chart's two
replicas: each its own process with its own caches, group commit and IdP trace.

A test module imports the ``api_processes`` fixture (started once per module) and builds
one :class:`~tests.conftest.ScimClient` per replica with :func:`replica_clients`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scim_devenv import processes
from scim_devenv.controlplane import ControlPlane, free_port

from .conftest import ScimClient
from .helpers import eventually

REPLICAS = 2
#: Seconds between two IdP-trace writes of one workspace by one replica (the default is a
#: minute; short here so a test sees a few throttled writes).
STATUS_INTERVAL = 2.0


@dataclass
class ApiProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:  # not listening yet
        return False


@pytest.fixture(scope="module")
def api_processes(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ApiProcess]]:
    """``REPLICAS`` scim-api processes, ready (their caches synced)."""
    tmp = tmp_path_factory.mktemp("replicas")
    started: list[ApiProcess] = []
    try:
        for n in range(REPLICAS):
            port = free_port()
            env = dict(
                os.environ, KUBECONFIG=str(control_plane.kubeconfig), SCIM_PORT=str(port),
                SCIM_API_METRICS_PORT="0", SCIM_LOG_FORMAT="plain", SCIM_RATE_PER_SECOND="1000000",
                SCIM_RATE_BURST="1000000", SCIM_STATUS_INTERVAL_SECONDS=str(STATUS_INTERVAL),
            )  # fmt: skip
            log = tmp / f"api-{n}.log"
            proc = processes.spawn([str(Path(sys.executable).parent / "scim-api")], log, env=env)
            started.append(ApiProcess(f"http://127.0.0.1:{port}", proc, log))
        for api in started:
            eventually(lambda api=api: _ready(api.url), timeout=90)
        yield started
    finally:
        for api in started:
            processes.stop(api.proc)
            print(f"--- {api.log.name}\n{processes.log_tail(api.log)}")


@contextmanager
def clients_of(apis: list[ApiProcess], tokens: list[str], namespace: str) -> Iterator[list[ScimClient]]:
    """One client per API process, the n-th with ``tokens[n]`` (cycled); closed afterwards."""
    clients = [
        ScimClient(httpx.Client(base_url=api.url, timeout=60), tokens[n % len(tokens)], namespace)
        for n, api in enumerate(apis)
    ]
    try:
        yield clients
    finally:
        for cl in clients:
            cl.tc.close()


@pytest.fixture
def replica_clients(api_processes: list[ApiProcess], scim: ScimClient) -> Iterator[list[ScimClient]]:
    """One client per API process for the ``scim`` workspace, once each knows its token."""
    with clients_of(api_processes, [scim.token], scim.namespace) as clients:
        for cl in clients:
            eventually(lambda cl=cl: cl.get("/ServiceProviderConfig").status_code == 200, timeout=30)
        yield clients
