"""After the API server restarts, every watch-fed cache resumes by itself: the informer is
heard from again and lists at most once more (the ``410 Gone`` of its old resourceVersion),
the API accepts writes and the operator reconciles a new change. A private control plane,
since its kube-apiserver is restarted. Timing figures live in ``make bench-scale``."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from starlette.testclient import TestClient

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_core import constants as c
from scim_core.informer import Informer
from scim_devenv import processes
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds

from .helpers import create_user, custom, eventually, workspace_with_token

pytestmark = pytest.mark.cluster
NS = "recovery"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane() as cp:
        install_crds(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        yield cp


def _group(name: str, *members: str) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
            "spec": {"displayName": name, "members": [{"value": m} for m in members]}}  # fmt: skip


class Names:
    """A sink that remembers which objects it holds, by name."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        self.names = {o["metadata"]["name"] for o in objects}

    def upsert(self, plural: str, obj: dict[str, Any]) -> None:
        self.names.add(obj["metadata"]["name"])

    def delete(self, plural: str, obj: dict[str, Any]) -> None:
        self.names.discard(obj["metadata"]["name"])


def test_informer_resumes_after_a_restart_and_lists_at_most_once_more(plane: ControlPlane) -> None:
    kube = config.new_client_from_config(config_file=str(plane.kubeconfig))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def start() -> tuple[aclient.ApiClient, Informer]:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=conf)
        api = aclient.ApiClient(conf)
        informer = Informer(api, c.GROUP_PLURAL, sink)
        informer.start()
        await asyncio.wait_for(informer.synced.wait(), 30)
        return api, informer

    def create(name: str) -> None:
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, NS, c.GROUP_PLURAL, _group(name))

    sink = Names()
    api, informer = run(start())
    try:
        create("before")
        eventually(lambda: "before" in sink.names)
        assert informer.lists == 1
        plane.restart_apiserver(1.0)  # from this thread: the API server dies with the thread that started it
        create("after")
        eventually(lambda: "after" in sink.names, timeout=30)
        create("later")  # a watch again, not a list per event
        eventually(lambda: "later" in sink.names, timeout=30)
        time.sleep(2)
        assert informer.lists <= 2, informer.lists
        assert informer.health.silent_for() < 5
    finally:
        run(informer.stop())
        run(api.close())
        loop.call_soon_threadsafe(loop.stop)


def test_api_and_operator_recover_after_a_restart(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = config.new_client_from_config(config_file=str(plane.kubeconfig))
    operator = processes.spawn(
        [str(Path(sys.executable).parent / "scim-operator"), "--identity", "recovery-test"],
        tmp_path / "operator.log",
        env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)},
    )
    try:
        token = workspace_with_token(kube, NS)
        custom(kube).patch_namespaced_custom_object(
            c.GROUP, c.VERSION, NS, c.WORKSPACE_PLURAL, "ws",
            {"spec": {"roleMappings": [{"name": "all", "groups": {"pattern": ".*"}, "clusterRole": "view"}]}},
        )  # fmt: skip
        for uid in ("u1", "u2"):
            create_user(kube, NS, uid, f"{uid}@example.com")
        custom(kube).create_namespaced_custom_object(
            c.GROUP, c.VERSION, NS, c.GROUP_PLURAL, _group("team", "u1")
        )
        rbac = client.RbacAuthorizationV1Api(kube)

        def subjects() -> set[str]:
            return {s.name for s in rbac.read_namespaced_role_binding("scim-team-all", NS).subjects or []}

        eventually(lambda: subjects() == {"u1@example.com"}, timeout=60)
        monkeypatch.setenv("KUBECONFIG", str(plane.kubeconfig))
        with TestClient(create_app(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))) as tc:
            h = {"Authorization": f"Bearer {token}"}
            eventually(
                lambda: tc.get(f"{c.SCIM_BASE_PATH}/Groups/team", headers=h).status_code == 200, timeout=60
            )
            plane.restart_apiserver(1.0)
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": "u2"}]}],
            }
            # the API takes the write once the API server answers (503 + Retry-After until then)
            eventually(
                lambda: (
                    tc.patch(f"{c.SCIM_BASE_PATH}/Groups/team", headers=h, json=body).status_code
                    in (200, 204)
                ),
                timeout=30,
            )
            eventually(lambda: subjects() == {"u1@example.com", "u2@example.com"}, timeout=30)
    finally:
        processes.stop(operator)
