"""Users: a read-only directory; only ``active`` changes; never created over SCIM."""

from __future__ import annotations

import pytest
from kubernetes import client

from scim_core import constants as c

from .conftest import ScimClient
from .helpers import create_user, eventually

pytestmark = pytest.mark.cluster
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def users(scim: ScimClient, kube: client.ApiClient) -> ScimClient:
    create_user(kube, scim.namespace, "usr-1", "ada@example.com", externalId="ext-ada", displayName="Ada")
    create_user(kube, scim.namespace, "usr-2", "grace@example.com", externalId="ext-grace")
    eventually(lambda: scim.get("/Users").json()["totalResults"] == 2)
    return scim


def test_list_get_filter(users: ScimClient) -> None:
    u = users.get("/Users/usr-1").json()
    assert u["userName"] == "ada@example.com" and u["active"] is True and u["meta"]["resourceType"] == "User"
    assert u["meta"]["location"].endswith("/Users/usr-1")
    for flt, n in [
        ('userName eq "ADA@example.com"', 1),
        ('externalId eq "ext-grace"', 1),
        ('externalId eq "EXT-GRACE"', 0),  # externalId is case-exact
        ('id eq "usr-2"', 1),
        ('userName eq "ada@example.com" or userName eq "grace@example.com"', 2),
        ('userName sw "gr"', 1),
    ]:
        assert users.get("/Users", params={"filter": flt}).json()["totalResults"] == n, flt
    assert users.get("/Users/nope").status_code == 404


def test_post_users_never_creates(users: ScimClient, kube: client.ApiClient) -> None:
    r = users.post("/Users", {"schemas": [USER], "userName": "new@example.com"})
    assert 400 <= r.status_code < 500 and "must already exist" in r.json()["detail"]
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        c.GROUP, c.VERSION, users.namespace, c.USER_PLURAL
    )["items"]
    assert len(items) == 2


def test_only_active_changes(users: ScimClient, kube: client.ApiClient) -> None:
    r = users.patch(
        "/Users/usr-1",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "userName", "value": "evil@example.com"}],
        },
    )
    assert r.status_code == 400 and r.json()["scimType"] == "mutability"
    r = users.patch(
        "/Users/usr-1",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert r.status_code == 204
    cr = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, users.namespace, c.USER_PLURAL, "usr-1"
    )
    assert cr["spec"]["active"] is False and cr["spec"]["userName"] == "ada@example.com"
    r = users.put(
        "/Users/usr-1",
        {
            "schemas": [USER],
            "userName": "ada@example.com",
            "externalId": "ext-ada",
            "displayName": "Ada",
            "active": True,
        },
    )
    assert r.status_code == 200 and r.json()["active"] is True
    # PUT carries the whole user as the IdP holds it (Okta AIW): attributes the workspace
    # owns are accepted and not applied, never a reason to refuse (issue 8); the answer is
    # the stored user
    r = users.put("/Users/usr-1", {"schemas": [USER], "userName": "other@example.com", "active": True})
    assert r.status_code == 200 and r.json()["userName"] == "ada@example.com"


def test_user_groups_attribute(users: ScimClient) -> None:
    g = users.create_group("Readers", members=[{"value": "usr-1"}])
    u = users.get("/Users/usr-1").json()
    assert u["groups"] == [{"value": g["id"], "display": "Readers", "$ref": u["groups"][0]["$ref"]}]
