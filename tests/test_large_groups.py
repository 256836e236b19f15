"""Large groups: members spill from the ScimGroup into ScimMemberShards, every object
stays small, SCIM sees one group, and the operator binds every member."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from scim_api.layout import INLINE_MAX_MEMBERS
from scim_core import constants as c

from .conftest import ScimClient
from .helpers import create_workspace, custom, eventually

pytestmark = pytest.mark.cluster
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
N = 3000


def test_large_group_spills_into_shards(scim: ScimClient, kube: client.ApiClient) -> None:
    g = scim.create_group("Everyone")
    gid = g["id"]
    for start in range(0, N, 100):
        batch = [
            {"value": f"usr-{i:05d}", "display": f"user{i}@example.com"} for i in range(start, start + 100)
        ]
        r = scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": batch}]},
        )
        assert r.status_code == 204, r.text
    api = custom(kube)
    group = api.get_namespaced_custom_object(c.GROUP, c.VERSION, scim.namespace, c.GROUP_PLURAL, gid)
    shards = api.list_namespaced_custom_object(
        c.GROUP, c.VERSION, scim.namespace, c.SHARD_PLURAL, label_selector=f"{c.GROUP_LABEL}={gid}"
    )["items"]
    assert len(group["spec"]["members"]) <= INLINE_MAX_MEMBERS and shards
    stored = [m["value"] for m in group["spec"]["members"]] + [
        m["value"] for s in shards for m in s["spec"]["members"]
    ]
    assert sorted(stored) == [f"usr-{i:05d}" for i in range(N)]
    for obj in [group, *shards]:
        assert len(json.dumps(obj)) < 1024 * 1024
        if obj is not group:
            assert obj["metadata"]["ownerReferences"][0]["uid"] == group["metadata"]["uid"]
    got = scim.get(f"/Groups/{gid}")
    body = got.json()
    assert len(body["members"]) == N
    # a change that lands only in a shard still moves the version
    tag = got.headers["etag"]
    r = scim.patch(
        f"/Groups/{gid}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "late"}]}]},
    )
    assert r.status_code == 204 and r.headers["etag"] != tag
    assert (
        scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "late"]'}]},
            headers={"If-Match": tag},
        ).status_code
        == 412
    )
    assert (
        scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "late"]'}]},
        ).status_code
        == 204
    )
    # remove one member that lives in a shard, and one inline
    shard_member = shards[0]["spec"]["members"][0]["value"]
    inline_member = group["spec"]["members"][0]["value"]
    for victim in (shard_member, inline_member):
        r = scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{victim}"]'}]},
        )
        assert r.status_code == 204
    members = {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]}
    assert len(members) == N - 2 and shard_member not in members and inline_member not in members
    assert (
        scim.get("/Groups", params={"filter": f'members[value eq "usr-{N - 1:05d}"]'}).json()["totalResults"]
        == 1
    )
    # a user's groups include groups that hold them in a shard
    r = scim.patch(
        f"/Groups/{gid}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": []}]},
    )
    assert r.status_code == 204
    assert scim.get(f"/Groups/{gid}").json().get("members", []) == []


def test_post_with_many_members(scim: ScimClient) -> None:
    members = [{"value": f"m-{i}"} for i in range(2500)]
    r = scim.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Big",
            "members": members,
        },
    )
    assert r.status_code == 201, r.text
    assert len(scim.get(f"/Groups/{r.json()['id']}").json()["members"]) == 2500


@pytest.mark.usefixtures("operator_running")
def test_operator_binds_shard_members(kube: client.ApiClient, namespace: str) -> None:
    from .helpers import create_user

    create_workspace(
        kube, namespace, roleMappings=[{"name": "v", "groups": {"displayName": "Big"}, "clusterRole": "view"}]
    )
    api = custom(kube)
    group = api.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": "grp-big"},
         "spec": {"displayName": "Big", "members": [{"value": "usr-a"}]}},
    )  # fmt: skip
    api.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.SHARD_KIND,
         "metadata": {"name": "grp-big-1", "labels": {c.GROUP_LABEL: "grp-big"},
                      "ownerReferences": [{"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "name": "grp-big",
                                           "uid": group["metadata"]["uid"]}]},
         "spec": {"group": "grp-big", "members": [{"value": "usr-b"}]}},
    )  # fmt: skip
    create_user(kube, namespace, "usr-a", "a@example.com")
    create_user(kube, namespace, "usr-b", "b@example.com")
    rbac = client.RbacAuthorizationV1Api(kube)

    def subjects() -> list[str]:
        try:
            return sorted(
                s.name for s in rbac.read_namespaced_role_binding("scim-grp-big-v", namespace).subjects or []
            )
        except client.exceptions.ApiException:
            return []

    eventually(lambda: subjects() == ["a@example.com", "b@example.com"])
    api.patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, "usr-b", {"spec": {"active": False}}
    )
    eventually(lambda: subjects() == ["a@example.com"], timeout=5)
