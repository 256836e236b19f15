"""A replica cut off from the API server stops serving: its watches go unheard, readiness
is withdrawn and requests are refused (a token revoked meanwhile must not stay accepted)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from starlette.testclient import TestClient

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane

from .conftest import ScimClient
from .helpers import eventually

BASE = c.SCIM_BASE_PATH


class Partition:
    """A TCP relay to the API server that a test can cut. ``cut()`` keeps every connection
    open but forwards nothing (a partition resets nothing: the watch just goes silent);
    ``heal()`` drops the connections and forwards again."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self._listener.accept()
                far = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                return
            with self._lock:
                self._sockets += [near, far]
            for src, dst in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self._forwarding.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def cut(self) -> None:
        self._forwarding.clear()

    def heal(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._forwarding.set()

    def close(self) -> None:
        self._listener.close()
        self.heal()


@pytest.fixture
def partition(control_plane: ControlPlane) -> Iterator[Partition]:
    relay = Partition(control_plane.port)
    yield relay
    relay.close()


@pytest.mark.cluster
def test_partitioned_replica_withdraws_readiness(
    control_plane: ControlPlane, scim: ScimClient, partition: Partition
) -> None:
    async def through_relay() -> aclient.ApiClient:
        configuration = aclient.Configuration()
        await aconfig.load_kube_config(
            config_file=str(control_plane.kubeconfig), client_configuration=configuration
        )
        configuration.host = f"https://127.0.0.1:{partition.port}"
        return aclient.ApiClient(configuration)

    settings = ApiSettings(rate_per_second=1e6, rate_burst=10**6, max_watch_staleness=3)
    with TestClient(create_app(settings, api_factory=through_relay)) as tc:
        h = {"Authorization": f"Bearer {scim.token}"}
        eventually(lambda: tc.get(f"{BASE}/Groups", headers=h).status_code == 200, timeout=30)
        # quiet but healthy: each watch is ended by the server and re-opened, so it stays ready
        for _ in range(10):
            assert tc.get("/readyz").status_code == 200
            time.sleep(0.5)

        partition.cut()
        cut_at = time.monotonic()
        # staleness counts from the last word heard, which may precede the cut (by up to a
        # second or two when the machine is loaded): readiness goes when the silence, not the
        # time since the cut, passes 3 s
        silent_at_cut = max(i.health.silent_for() for i in tc.app.state.scim.informers)  # type: ignore[attr-defined]
        eventually(lambda: tc.get("/readyz").status_code == 503, timeout=15, interval=0.1)
        withdrawn_after = time.monotonic() - cut_at
        assert withdrawn_after + silent_at_cut > 2.5 and withdrawn_after < 8, (withdrawn_after, silent_at_cut)
        assert "unheard" in tc.get("/readyz").text
        r = tc.get(f"{BASE}/Groups", headers=h)  # authentication refuses: the hashes may be stale
        assert r.status_code == 503 and r.json()["status"] == "503" and int(r.headers["retry-after"]) > 0

        partition.heal()
        eventually(lambda: tc.get("/readyz").status_code == 200, timeout=30)
        assert tc.get(f"{BASE}/Groups", headers=h).status_code == 200
