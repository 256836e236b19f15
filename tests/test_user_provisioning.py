"""Opt-in ``POST /Users`` against the real control plane: off by default, on only for the
domains a workspace lists, IdP-made users labelled and never given a ``subject``, unique
userNames, and the API's ServiceAccount able to create users only when granted the optional
ClusterRole (deploy/rbac/optional)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from starlette.testclient import TestClient

from scim_api.protocol.user_create import CREATED_BY_LABEL, IDP_MADE, user_id
from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import REPO_ROOT

from .conftest import ScimClient
from .helpers import create_user, custom, eventually, workspace_with_token
from .idp_bodies import USER, entra_create_user, okta_create_user
from .replicas import api_processes, replica_clients  # noqa: F401 - fixtures
from .test_least_privilege import install_rbac, sa_kubeconfig

pytestmark = pytest.mark.cluster
OPTIONAL_RBAC = REPO_ROOT / "deploy" / "rbac" / "optional" / "api-user-provisioning.yaml"
DOMAINS = ["example.com", "contoso.com"]


def allow_domains(kube: client.ApiClient, namespace: str, domains: list[str]) -> None:
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"spec": {"users": {"provisioning": {"allowedDomains": domains}}}},
    )  # fmt: skip


def users_in(kube: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom(kube).list_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL
    )["items"]
    return items


@pytest.fixture
def provisioning(scim: ScimClient, kube: client.ApiClient) -> ScimClient:
    """A workspace that allows user creation in ``DOMAINS``, seen by the API."""
    allow_domains(kube, scim.namespace, DOMAINS)

    def created() -> bool:
        r = scim.post("/Users", {"schemas": [USER], "userName": "probe@example.com"})
        return r.status_code == 201

    eventually(created)
    return scim


def test_off_by_default(scim: ScimClient, kube: client.ApiClient) -> None:
    r = scim.post("/Users", okta_create_user("new@example.com"))
    assert r.status_code == 403 and "must already exist" in r.json()["detail"]
    assert users_in(kube, scim.namespace) == []


@pytest.mark.parametrize(
    ("make_body", "user_name"),
    [(okta_create_user, "okta.user@example.com"), (entra_create_user, "Entra.User@Contoso.com")],
    ids=["okta", "entra"],
)
def test_idp_bodies_create_labelled_users(
    provisioning: ScimClient, kube: client.ApiClient, make_body: Any, user_name: str
) -> None:
    body = make_body(user_name)
    body["subject"] = "system:admin"  # never applied
    r = provisioning.post("/Users", body)
    assert r.status_code == 201, r.text
    created = r.json()
    uid = user_id(provisioning.namespace, user_name)
    assert created["id"] == uid and created["userName"] == user_name and created["active"] is True
    assert r.headers["location"].endswith(f"/Users/{uid}") and r.headers["etag"]
    obj = custom(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, provisioning.namespace, c.USER_PLURAL, uid
    )
    assert obj["metadata"]["labels"][CREATED_BY_LABEL] == IDP_MADE
    assert "subject" not in obj["spec"] and "password" not in obj["spec"]
    assert obj["spec"]["externalId"] == body["externalId"]
    # the IdP finds it again (its next sync starts with a filter) and may deactivate it
    found = provisioning.get("/Users", params={"filter": f'userName eq "{user_name.upper()}"'}).json()
    assert [u["id"] for u in found["Resources"]] == [uid]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "active", "value": False}]}  # fmt: skip
    assert provisioning.patch(f"/Users/{uid}", patch).status_code == 204


def test_user_names_are_unique(provisioning: ScimClient, kube: client.ApiClient) -> None:
    create_user(kube, provisioning.namespace, "usr-admin", "admin.made@example.com")
    eventually(lambda: provisioning.get("/Users/usr-admin").status_code == 200)
    r = provisioning.post("/Users", {"schemas": [USER], "userName": "ADMIN.MADE@example.com"})
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"
    assert provisioning.post("/Users", okta_create_user("twice@example.com")).status_code == 201
    r = provisioning.post("/Users", okta_create_user("Twice@Example.com"))
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"
    names = sorted(u["spec"]["userName"] for u in users_in(kube, provisioning.namespace))
    assert names == ["admin.made@example.com", "probe@example.com", "twice@example.com"]


@pytest.mark.parametrize(
    ("body", "status", "scim_type"),
    [
        (okta_create_user("someone@evil.com"), 403, None),
        (okta_create_user("someone@sub.example.com"), 403, None),
        ({"schemas": [USER], "userName": "x@example.com", "emails": "x@example.com"}, 400, "invalidValue"),
        ({"schemas": [USER], "userName": "x@example.com", "displayName": "d" * 300}, 400, "invalidValue"),
        ({"schemas": [USER], "displayName": "no userName"}, 400, "invalidValue"),
        (
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x@example.com"},
            400,
            "invalidSyntax",
        ),
    ],
)
def test_refused_bodies_create_nothing(
    provisioning: ScimClient, kube: client.ApiClient, body: Any, status: int, scim_type: str | None
) -> None:
    r = provisioning.post("/Users", body)
    assert r.status_code == status, r.text
    assert r.json().get("scimType") == scim_type
    assert [u["spec"]["userName"] for u in users_in(kube, provisioning.namespace)] == ["probe@example.com"]


def test_crd_refuses_malformed_domains(scim: ScimClient, kube: client.ApiClient) -> None:
    for bad in (["Example.COM"], ["@example.com"], ["*.example.com"]):
        with pytest.raises(ApiException) as err:
            allow_domains(kube, scim.namespace, bad)
        assert err.value.status == 422, bad


@pytest.fixture
def api_as_service_account(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, operator_running: None,
) -> Iterator[tuple[TestClient, dict[str, str]]]:  # fmt: skip
    """The API under the ``scim-api`` ServiceAccount of deploy/rbac (the optional grant
    not applied), for a workspace that allows ``example.com``."""
    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    install_rbac(control_plane)
    kubeconfig = sa_kubeconfig(control_plane, "scim-api", tmp_path)
    token = workspace_with_token(kube, namespace)
    allow_domains(kube, namespace, ["example.com"])
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with TestClient(create_app(ApiSettings(rate_per_second=1e6, rate_burst=10**6))) as tc:
        eventually(lambda: tc.get("/readyz").status_code == 200)
        yield tc, {"Authorization": f"Bearer {token}"}


def test_service_account_creates_users_only_with_the_optional_grant(
    api_as_service_account: tuple[TestClient, dict[str, str]], control_plane: ControlPlane,
    kube: client.ApiClient, namespace: str,
) -> None:  # fmt: skip
    tc, headers = api_as_service_account
    url = f"{c.SCIM_BASE_PATH}/Users"

    def post(user_name: str) -> Any:
        return tc.post(url, headers=headers, json={"schemas": [USER], "userName": user_name})

    eventually(lambda: post("first@example.com").status_code == 403)
    r = post("first@example.com")
    assert "api.userProvisioning" in r.json()["detail"]
    assert users_in(kube, namespace) == []
    grant = [o for o in yaml.safe_load_all(OPTIONAL_RBAC.read_text()) if o]
    control_plane.apply(grant)
    try:
        r = eventually(lambda: (resp := post("first@example.com")).status_code == 201 and resp)
        assert r.json()["userName"] == "first@example.com"
    finally:
        rbac = client.RbacAuthorizationV1Api(kube)
        rbac.delete_cluster_role_binding("scim-api-user-provisioning")
        rbac.delete_cluster_role("scim-api-user-provisioning")
    eventually(lambda: post("second@example.com").status_code == 403)


def test_same_user_created_through_two_api_processes(
    provisioning: ScimClient,
    replica_clients: list[ScimClient],  # noqa: F811 - the fixture
    kube: client.ApiClient,
) -> None:
    """The IdP retrying a create through the other replica (or two of its workers racing):
    exactly one 201, every other answer a SCIM 409 ``uniqueness``, one ScimUser stored."""
    import concurrent.futures

    for n, replica in enumerate(replica_clients):  # both processes see the opt-in
        eventually(
            lambda r=replica, n=n: (
                r.post("/Users", {"schemas": [USER], "userName": f"probe{n}@example.com"}).status_code == 201
            ),
            timeout=20,
        )
    before = len(users_in(kube, provisioning.namespace))
    names = ["Race.User@example.com", "race.user@example.com"] * 4  # case differs: the same user

    def create(i: int) -> tuple[int, Any]:
        r = replica_clients[i % 2].post("/Users", okta_create_user(names[i]))
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(create, range(len(names))))
    codes = [status for status, _ in answers]
    assert codes.count(201) == 1, answers
    for status, body in answers:
        if status != 201:
            assert status == 409 and body["scimType"] == "uniqueness", body
            assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    made = [
        u
        for u in users_in(kube, provisioning.namespace)
        if u["spec"]["userName"].lower() == "race.user@example.com"
    ]
    assert len(made) == 1 and len(users_in(kube, provisioning.namespace)) == before + 1
