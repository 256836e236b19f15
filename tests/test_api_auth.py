"""Authentication and discovery through the real API against the real control plane."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c
from scim_operator.token_policy import ROTATE_REQUEST

from .helpers import custom, eventually, get_workspace, workspace_with_token

pytestmark = [pytest.mark.cluster]
BASE = c.SCIM_BASE_PATH


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_known(scim_app: Any, token: str) -> None:
    eventually(
        lambda: scim_app.get(f"{BASE}/ServiceProviderConfig", headers=_bearer(token)).status_code == 200
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer unknown-token-value"},
    ],
)
def test_unauthenticated_gets_401(scim_app: Any, headers: dict[str, str]) -> None:
    r = scim_app.get(f"{BASE}/ServiceProviderConfig", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"].startswith("application/scim+json")
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"


def test_service_provider_config(scim_app: Any, kube: client.ApiClient, namespace: str) -> None:
    token = workspace_with_token(kube, namespace)
    _wait_known(scim_app, token)
    r = scim_app.get(f"{BASE}/ServiceProviderConfig", headers=_bearer(token))
    assert r.headers["content-type"].startswith("application/scim+json")
    spc = r.json()
    assert spc["patch"]["supported"] is True and spc["bulk"]["supported"] is False
    assert spc["filter"]["supported"] is True and isinstance(spc["filter"]["maxResults"], int)
    plain = scim_app.get(
        f"{BASE}/ServiceProviderConfig", headers={**_bearer(token), "Accept": "application/json"}
    )
    assert plain.headers["content-type"].startswith("application/json")


def test_discovery_lists_and_404(scim_app: Any, kube: client.ApiClient, namespace: str) -> None:
    token = workspace_with_token(kube, namespace)
    _wait_known(scim_app, token)
    h = _bearer(token)
    rts = scim_app.get(f"{BASE}/ResourceTypes", headers=h).json()
    assert {r["id"] for r in rts["Resources"]} == {"User", "Group"} and rts["totalResults"] == 2
    assert scim_app.get(f"{BASE}/ResourceTypes/Group", headers=h).json()["endpoint"] == "/Groups"
    schemas = scim_app.get(f"{BASE}/Schemas", headers=h).json()
    assert {s["name"] for s in schemas["Resources"]} == {"User", "Group"}
    urn = "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert scim_app.get(f"{BASE}/Schemas/{urn}", headers=h).json()["id"] == urn
    for path in ("/ResourceTypes/Nope", "/Schemas/urn:nope"):
        r = scim_app.get(f"{BASE}{path}", headers=h)
        assert r.status_code == 404 and r.json()["status"] == "404"
    r = scim_app.post(f"{BASE}/Schemas", headers=h, json={})
    assert r.status_code == 405 and r.json()["status"] == "405"


def test_revocation_seen_within_seconds(scim_app: Any, kube: client.ApiClient, namespace: str) -> None:
    token = workspace_with_token(kube, namespace)
    _wait_known(scim_app, token)
    client.CoreV1Api(kube).delete_namespaced_secret("scim-token", namespace)
    eventually(
        lambda: scim_app.get(f"{BASE}/ServiceProviderConfig", headers=_bearer(token)).status_code == 401,
        timeout=10,
    )


def test_rotated_token_valid_during_grace_then_old_dropped(
    scim_app: Any, kube: client.ApiClient, namespace: str
) -> None:
    token = workspace_with_token(kube, namespace)
    _wait_known(scim_app, token)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "a"}}, "spec": {"token": {"gracePeriod": "3s"}}},
    )  # fmt: skip
    eventually(lambda: len(get_workspace(kube, namespace)["status"]["tokenHashes"]) == 2)
    assert scim_app.get(f"{BASE}/ServiceProviderConfig", headers=_bearer(token)).status_code == 200
    eventually(
        lambda: scim_app.get(f"{BASE}/ServiceProviderConfig", headers=_bearer(token)).status_code == 401,
        timeout=15,
    )
