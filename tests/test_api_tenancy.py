"""Multi-tenancy: a workspace's token sees and changes only its own namespace."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from .conftest import ScimClient
from .helpers import create_user, eventually, workspace_with_token

pytestmark = pytest.mark.cluster
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def other(scim_app: Any, kube: client.ApiClient) -> ScimClient:
    """A second workspace in its own namespace, with its own token."""
    import uuid

    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    token = workspace_with_token(kube, ns)
    eventually(
        lambda: (
            scim_app.get("/api/auth/scim/v2/Groups", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
    )
    return ScimClient(scim_app, token, ns)


def test_workspaces_are_isolated(scim: ScimClient, other: ScimClient, kube: client.ApiClient) -> None:
    mine = scim.create_group("Shared Name", members=[{"value": "usr-a"}])
    create_user(kube, scim.namespace, "usr-a", "a@example.com")
    eventually(lambda: scim.get("/Users/usr-a").status_code == 200)
    # the same displayName is free in another workspace
    theirs = other.create_group("Shared Name")
    assert theirs["id"] != mine["id"]
    for path in (f"/Groups/{mine['id']}", "/Users/usr-a"):
        r = other.get(path)
        assert r.status_code == 404 and r.json()["status"] == "404"
    ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "x"}]}]}
    assert other.patch(f"/Groups/{mine['id']}", ops).status_code == 404
    assert other.put(f"/Groups/{mine['id']}", {"displayName": "Hijack"}).status_code == 404
    assert other.delete(f"/Groups/{mine['id']}").status_code == 404
    assert (
        other.patch(
            "/Users/usr-a",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
        ).status_code
        == 404
    )
    listed = other.get("/Groups").json()
    assert [g["id"] for g in listed["Resources"]] == [theirs["id"]] and listed["totalResults"] == 1
    assert other.get("/Groups", params={"filter": f'id eq "{mine["id"]}"'}).json()["totalResults"] == 0
    assert other.get("/Users").json()["totalResults"] == 0
    # and nothing of ours changed
    got = scim.get(f"/Groups/{mine['id']}").json()
    assert got["displayName"] == "Shared Name" and [m["value"] for m in got["members"]] == ["usr-a"]
    assert scim.get("/Users/usr-a").json()["active"] is True
