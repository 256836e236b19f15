"""Rate limits, an unavailable API server, and secrets kept out of logs."""

from __future__ import annotations

import logging
import time

import pytest
from kubernetes import client, config
from starlette.testclient import TestClient

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds

from .conftest import ScimClient
from .helpers import eventually

pytestmark = pytest.mark.cluster
BASE = c.SCIM_BASE_PATH


def _ready(tc: TestClient) -> None:
    deadline = time.monotonic() + 30
    while tc.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_rate_limit_per_token(
    control_plane: ControlPlane, scim: ScimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    app = create_app(ApiSettings(rate_per_second=1, rate_burst=5))
    with TestClient(app) as tc:
        _ready(tc)
        h = {"Authorization": f"Bearer {scim.token}"}
        eventually(lambda: tc.get(f"{BASE}/ServiceProviderConfig", headers=h).status_code in (200, 429))
        codes = [tc.get(f"{BASE}/Groups", headers=h).status_code for _ in range(10)]
        assert 429 in codes
        r = tc.get(f"{BASE}/Groups", headers=h)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["status"] == "429"


def test_api_server_down_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second, private control plane whose kube-apiserver we stop mid-flight."""
    with ControlPlane() as cp:
        install_crds(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ws")))
        # no operator watches this control plane: publish a token hash by hand
        from scim_core.tokens import generate_token, token_sha256

        token = generate_token()
        api = client.CustomObjectsApi(kube)
        api.create_namespaced_custom_object(
            c.GROUP, c.VERSION, "ws", c.WORKSPACE_PLURAL,
            {"apiVersion": c.API_VERSION, "kind": c.WORKSPACE_KIND, "metadata": {"name": "ws"}, "spec": {"displayName": "W"}},
        )  # fmt: skip
        sha = token_sha256(token)
        api.patch_namespaced_custom_object_status(
            c.GROUP, c.VERSION, "ws", c.WORKSPACE_PLURAL, "ws",
            {"status": {"tokenHashes": [{"sha256": sha, "fingerprint": "sha256:x", "notAfter": "2099-01-01T00:00:00Z"}]}},
        )  # fmt: skip
        monkeypatch.setenv("KUBECONFIG", str(cp.kubeconfig))
        app = create_app(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))
        with TestClient(app) as tc:
            _ready(tc)
            h = {"Authorization": f"Bearer {token}"}
            eventually(lambda: tc.get(f"{BASE}/Groups", headers=h).status_code == 200)
            r = tc.post(f"{BASE}/Groups", headers=h, json={"displayName": "Before"})
            assert r.status_code == 201
            gid = r.json()["id"]
            cp.stop_component("kube-apiserver")
            r = tc.post(f"{BASE}/Groups", headers=h, json={"displayName": "During"})
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            assert r.json()["status"] == "503"
            ops = {"Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}
            r = tc.patch(f"{BASE}/Groups/{gid}", headers=h, json=ops)
            assert r.status_code == 503
            # reads are served from the watch cache meanwhile
            assert tc.get(f"{BASE}/Groups/{gid}", headers=h).status_code == 200


def test_tokens_never_logged(scim: ScimClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scim.get("/Groups")
    scim.tc.get(
        f"{BASE}/Groups", headers={"Authorization": "Bearer scim_not-a-real-token-but-secret-looking"}
    )
    scim.post("/Groups", {"displayName": "Logged?"})
    text = caplog.text
    assert scim.token not in text and "scim_not-a-real-token" not in text
