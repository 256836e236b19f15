"""Shared fixtures: one real control plane per test session, CRDs installed, a fresh
namespace per test, and clients that act as other users (impersonation)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    cp = ControlPlane(controller_manager=True)
    cp.start()
    try:
        install_crds(cp)
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A synchronous client acting as the cluster admin (system:masters)."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def impersonate(control_plane: ControlPlane) -> Iterator[Callable[..., client.ApiClient]]:
    """``impersonate(user, group=None)``: a client the API server treats as that user
    (ServiceAccounts as ``system:serviceaccount:<ns>:<name>``). One group at most: the
    generated client keeps one value per header."""
    made: list[client.ApiClient] = []

    def make(user: str, group: str | None = None) -> client.ApiClient:
        api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        api.set_default_header("Impersonate-User", user)
        if group is not None:
            api.set_default_header("Impersonate-Group", group)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(scope="session")
def operator_running(control_plane: ControlPlane) -> Iterator[None]:
    """The real operator, built by its composition root (``scim_operator.app.run``), in a
    background thread with its own event loop for the whole session."""
    import asyncio
    import dataclasses
    import os
    import threading

    from scim_operator import app
    from scim_operator.settings import OperatorSettings

    os.environ["KUBECONFIG"] = str(control_plane.kubeconfig)
    settings = dataclasses.replace(
        OperatorSettings.from_env({}),
        workspace_resync_seconds=1.0,
        metrics_port=0,
        lease_namespace="default",
        identity="session-operator",
    )
    stop = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(app.run(settings, liveness=None, stop_flag=stop))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=serve, name="scim-operator", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the operator did not stop"
    assert not failure, failure


@pytest.fixture(scope="session")
def scim_app(control_plane: ControlPlane, operator_running: None) -> Iterator[Any]:
    """The SCIM API app served in-process (lifespan runs: informers are live)."""
    import os

    from starlette.testclient import TestClient

    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    os.environ["KUBECONFIG"] = str(control_plane.kubeconfig)
    app = create_app(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))
    with TestClient(app, base_url="http://testserver") as tc:
        deadline = time.monotonic() + 30
        while tc.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "SCIM API cache never synced"
            time.sleep(0.1)
        yield tc


class ScimClient:
    """The in-process API with one workspace's bearer token."""

    def __init__(self, tc: Any, token: str, namespace: str) -> None:
        self.tc = tc
        self.token = token
        self.namespace = namespace
        self.base = "/api/auth/scim/v2"

    def _h(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.tc.get(self.base + path, headers=self._h(headers), **kw)

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.tc.post(self.base + path, json=json, headers=self._h(headers), **kw)

    def put(self, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.tc.put(self.base + path, json=json, headers=self._h(headers), **kw)

    def patch(self, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.tc.patch(self.base + path, json=json, headers=self._h(headers), **kw)

    def delete(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.tc.delete(self.base + path, headers=self._h(headers), **kw)

    def create_group(self, name: str, **extra: Any) -> dict[str, Any]:
        r = self.post(
            "/Groups",
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, **extra},
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def scim(scim_app: Any, kube: client.ApiClient, namespace: str) -> ScimClient:
    """A workspace in a fresh namespace, its token known to the API."""
    from .helpers import eventually, workspace_with_token

    token = workspace_with_token(kube, namespace)
    eventually(
        lambda: (
            scim_app.get(
                "/api/auth/scim/v2/ServiceProviderConfig", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
    )
    return ScimClient(scim_app, token, namespace)
