"""Groups over SCIM against the real control plane: CRUD, PATCH, filters, paging, ETags."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c

from .conftest import ScimClient

pytestmark = pytest.mark.cluster
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _cr(kube: client.ApiClient, ns: str, gid: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, gid
    )
    return obj


def _members(scim: ScimClient, gid: str) -> list[str]:
    return sorted(m["value"] for m in scim.get(f"/Groups/{gid}").json().get("members", []))


def test_create_get_delete(scim: ScimClient, kube: client.ApiClient) -> None:
    r = scim.post(
        "/Groups",
        {"schemas": [GROUP], "displayName": "Engineers", "externalId": "e-1", "members": [{"value": "u1"}]},
    )
    assert r.status_code == 201
    g = r.json()
    assert r.headers["location"].endswith(f"/api/auth/scim/v2/Groups/{g['id']}")
    assert r.headers["content-type"].startswith("application/scim+json")
    assert g["id"].startswith("grp-") and g["displayName"] == "Engineers" and g["externalId"] == "e-1"
    meta = g["meta"]
    assert meta["resourceType"] == "Group" and meta["location"] == r.headers["location"]
    assert meta["created"] and meta["lastModified"] and meta["version"] == r.headers["etag"]
    cr = _cr(kube, scim.namespace, g["id"])
    assert cr["spec"]["displayName"] == "Engineers" and cr["spec"]["members"] == [{"value": "u1"}]
    got = scim.get(f"/Groups/{g['id']}")
    assert got.status_code == 200 and got.json()["members"][0]["value"] == "u1"
    assert scim.delete(f"/Groups/{g['id']}").status_code == 204
    r = scim.get(f"/Groups/{g['id']}")
    assert r.status_code == 404 and r.json()["status"] == "404"
    assert scim.delete(f"/Groups/{g['id']}").status_code == 404


def test_put_replaces_members_and_ignores_readonly(scim: ScimClient) -> None:
    g = scim.create_group("Ops", members=[{"value": "a"}, {"value": "b"}])
    body = {
        "schemas": [GROUP],
        "id": "something-else",
        "meta": {"resourceType": "Group"},
        "displayName": "Ops",
        "members": [{"value": "c"}],
    }
    r = scim.put(f"/Groups/{g['id']}", body)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == g["id"]
    assert _members(scim, g["id"]) == ["c"]


def test_uniqueness_case_insensitive(scim: ScimClient) -> None:
    g = scim.create_group("Admins")
    r = scim.post("/Groups", {"schemas": [GROUP], "displayName": "admins"})
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness" and r.json()["status"] == "409"
    other = scim.create_group("Others")
    r = scim.patch(
        f"/Groups/{other['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "ADMINS"}]},
    )
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"
    # renaming a group to its own name (any case) is not a conflict
    r = scim.patch(
        f"/Groups/{g['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "ADMINS"}]},
    )
    assert r.status_code == 204
    assert scim.get(f"/Groups/{g['id']}").json()["displayName"] == "ADMINS"


def test_uniqueness_under_racing_creates(scim: ScimClient, kube: client.ApiClient) -> None:
    import concurrent.futures

    def create() -> int:
        return int(scim.post("/Groups", {"schemas": [GROUP], "displayName": "Racers"}).status_code)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: create(), range(8)))
    assert codes.count(201) <= 1 and set(codes) <= {201, 409}
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        c.GROUP, c.VERSION, scim.namespace, c.GROUP_PLURAL
    )["items"]
    live = [
        i
        for i in items
        if i["spec"]["displayName"] == "Racers" and not i["metadata"].get("deletionTimestamp")
    ]
    assert len(live) == codes.count(201) == 1


def test_a_create_whose_rival_check_fails_leaves_no_group(
    scim: ScimClient, kube: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rival check after the create is a list with a selector, which kube-apiserver
    refuses (429) while it rebuilds its watch cache: the request is answered 503 and the group
    it created is withdrawn, so the IdP's retry creates it once (it used to stay, and the
    retry found it as a rival: 409)."""
    from scim_api.errors import unavailable
    from scim_api.store import GroupStore

    async def refused(self: GroupStore, namespace: str, name: str, own_id: str) -> list[str]:
        raise unavailable("The Kubernetes API server is unavailable; retry later")

    with monkeypatch.context() as patched:
        patched.setattr(GroupStore, "_others_with_name", refused)
        assert scim.post("/Groups", {"schemas": [GROUP], "displayName": "Retried"}).status_code == 503
    assert scim.post("/Groups", {"schemas": [GROUP], "displayName": "Retried"}).status_code == 201
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        c.GROUP, c.VERSION, scim.namespace, c.GROUP_PLURAL
    )["items"]
    assert [i["spec"]["displayName"] for i in items if not i["metadata"].get("deletionTimestamp")] == [
        "Retried"
    ]


def test_patch_add_remove_replace(scim: ScimClient) -> None:
    g = scim.create_group("P")
    gid = g["id"]

    def patch(*ops: dict[str, Any]) -> Any:
        return scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": list(ops)})

    assert (
        patch({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}).status_code
        == 204
    )
    assert (
        patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}).status_code == 204
    )  # no duplicate
    assert _members(scim, gid) == ["u1", "u2"]
    assert patch({"op": "remove", "path": 'members[value eq "u1"]'}).status_code == 204
    assert patch({"op": "remove", "path": 'members[value eq "absent"]'}).status_code == 204  # not an error
    assert _members(scim, gid) == ["u2"]
    assert patch({"op": "replace", "path": "members", "value": [{"value": "u3"}]}).status_code == 204
    assert _members(scim, gid) == ["u3"]
    r = patch({"op": "replace", "value": {"displayName": "P2", "externalId": "x"}})
    assert r.status_code == 204
    got = scim.get(f"/Groups/{gid}").json()
    assert got["displayName"] == "P2" and got["externalId"] == "x"
    # 200 with the resource when attributes are asked for
    r = scim.patch(
        f"/Groups/{gid}?attributes=displayName",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "externalId"}]},
    )
    assert r.status_code == 200 and r.json() == {"schemas": [GROUP], "id": gid, "displayName": "P2"}


def test_patch_is_atomic(scim: ScimClient) -> None:
    g = scim.create_group("Atomic", members=[{"value": "keep"}])
    r = scim.patch(
        f"/Groups/{g['id']}",
        {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": "new"}]},
            {"op": "remove", "path": "displayName"},
        ]},
    )  # fmt: skip
    assert r.status_code == 400 and r.json()["scimType"] == "mutability"
    assert _members(scim, g["id"]) == ["keep"]


@pytest.mark.parametrize(
    ("ops", "scim_type"),
    [
        ([{"op": "add", "path": "bogus", "value": "x"}], "invalidPath"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "frobnicate", "path": "members"}], "invalidSyntax"),
        ([{"op": "add", "path": "members", "value": [{"display": "no value"}]}], "invalidValue"),
        ([{"op": "remove", "path": "members[value eq]"}], "invalidFilter"),
        ([{"op": "replace", "path": 'members[value eq "nobody"]', "value": {"value": "x"}}], "noTarget"),
    ],
)
def test_patch_errors(scim: ScimClient, ops: list[dict[str, Any]], scim_type: str) -> None:
    g = scim.create_group(f"E-{scim_type}-{len(str(ops))}")
    r = scim.patch(f"/Groups/{g['id']}", {"schemas": [PATCH], "Operations": ops})
    assert r.status_code == 400, r.text
    assert r.json()["scimType"] == scim_type and r.json()["status"] == "400"


def test_filters_and_paging(scim: ScimClient) -> None:
    ids = [scim.create_group(f"Team {i:02d}", externalId=f"ext-{i}")["id"] for i in range(12)]
    r = scim.get("/Groups", params={"filter": 'displayName eq "team 03"'})
    body = r.json()
    assert body["totalResults"] == 1 and body["Resources"][0]["id"] == ids[3]
    assert (
        scim.get("/Groups", params={"filter": 'DisplayName EQ "Team 03" or externalId eq "ext-4"'}).json()[
            "totalResults"
        ]
        == 2
    )
    assert (
        scim.get("/Groups", params={"filter": f'id eq "{ids[5]}" and displayName eq "Team 05"'}).json()[
            "totalResults"
        ]
        == 1
    )
    assert scim.get("/Groups", params={"filter": 'displayName sw "Team 1"'}).json()["totalResults"] == 2
    assert scim.get("/Groups", params={"filter": "externalId pr"}).json()["totalResults"] == 12
    assert scim.get("/Groups", params={"filter": 'displayName co "m 0"'}).json()["totalResults"] == 10
    for bad in ("displayName eq", 'foo eq "x"', 'displayName xx "a"', "displayName eq unquoted", ""):
        r = scim.get("/Groups", params={"filter": bad})
        assert r.status_code == 400 and r.json()["scimType"] == "invalidFilter", bad
    seen: list[str] = []
    start = 1
    while True:
        page = scim.get("/Groups", params={"startIndex": start, "count": 5}).json()
        assert page["totalResults"] == 12 and isinstance(page["itemsPerPage"], int)
        assert page["itemsPerPage"] == len(page["Resources"]) and page["startIndex"] == start
        if not page["Resources"]:
            break
        seen += [g["id"] for g in page["Resources"]]
        start += 5
    assert seen == sorted(ids)
    zero = scim.get("/Groups", params={"count": 0}).json()
    assert zero["totalResults"] == 12 and zero["itemsPerPage"] == 0 and zero["Resources"] == []
    assert scim.get("/Groups", params={"count": -3}).json()["itemsPerPage"] == 0
    assert scim.get("/Groups", params={"startIndex": -1, "count": 1}).json()["startIndex"] == 1
    assert scim.get("/Groups", params={"count": "many"}).status_code == 400


def test_quoted_values(scim: ScimClient) -> None:
    name = 'Sales "EMEA" \\ Team'
    g = scim.create_group(name)
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    r = scim.get("/Groups", params={"filter": f'displayName eq "{escaped}"'})
    assert r.json()["totalResults"] == 1 and r.json()["Resources"][0]["id"] == g["id"]


def test_attributes_and_excluded(scim: ScimClient) -> None:
    g = scim.create_group("Attr", members=[{"value": "u1", "display": "U One"}])
    r = scim.get(f"/Groups/{g['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in r and r["displayName"] == "Attr" and "meta" in r
    r = scim.get(f"/Groups/{g['id']}", params={"attributes": "displayName"}).json()
    assert set(r) == {"schemas", "id", "displayName"}
    r = scim.get(f"/Groups/{g['id']}", params={"attributes": "members.value"}).json()
    assert r["members"] == [{"value": "u1"}]
    r = scim.get(
        "/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Attr"'}
    ).json()
    assert "members" not in r["Resources"][0]


def test_etags(scim: ScimClient) -> None:
    g = scim.create_group("Etag")
    r = scim.get(f"/Groups/{g['id']}")
    tag = r.headers["etag"]
    assert tag == r.json()["meta"]["version"]
    assert scim.get(f"/Groups/{g['id']}", headers={"If-None-Match": tag}).status_code == 304
    ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "x"}]}]}
    assert scim.patch(f"/Groups/{g['id']}", ops, headers={"If-Match": 'W/"999"'}).status_code == 412
    ok = scim.patch(f"/Groups/{g['id']}", ops, headers={"If-Match": tag})
    assert ok.status_code == 204 and ok.headers["etag"] != tag
    assert scim.delete(f"/Groups/{g['id']}", headers={"If-Match": tag}).status_code == 412


def test_concurrent_member_adds_lose_nothing(scim: ScimClient) -> None:
    import concurrent.futures

    g = scim.create_group("Parallel")

    def add(i: int) -> int:
        ops = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": f"u{i:03d}"}]}],
        }
        return int(scim.patch(f"/Groups/{g['id']}", ops).status_code)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add, range(40)))
    assert set(codes) == {204}
    assert _members(scim, g["id"]) == [f"u{i:03d}" for i in range(40)]


def test_bad_bodies_are_clean_4xx(scim: ScimClient) -> None:
    h = {"Content-Type": "application/scim+json"}
    cases = [
        b"{not json",
        b"\xff\xfe\xfa",
        b"[" * 5000 + b"]" * 5000,
        b'{"schemas":["urn:unknown"],"displayName":"x"}',
        b'{"displayName": 5}',
        b'{"displayName":"x","bogus":1}',
        b"",
    ]
    for body in cases:
        r = scim.tc.post(scim.base + "/Groups", content=body, headers={**scim._h(None), **h})
        assert 400 <= r.status_code < 500, (body[:30], r.status_code)
        assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    big = b'{"displayName":"' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = scim.tc.post(scim.base + "/Groups", content=big, headers={**scim._h(None), **h})
    assert r.status_code == 413
    listed = scim.get("/Groups").json()
    assert listed["totalResults"] == 0  # nothing was half-written


def test_unresolved_member_is_stored(scim: ScimClient, kube: client.ApiClient) -> None:
    g = scim.create_group("Unresolved", members=[{"value": "usr-does-not-exist-yet"}])
    assert _cr(kube, scim.namespace, g["id"])["spec"]["members"] == [{"value": "usr-does-not-exist-yet"}]


def test_uniqueness_across_two_api_replicas(
    scim: ScimClient, control_plane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API processes' worth of state (two apps, two caches) racing on one name."""
    import concurrent.futures

    from starlette.testclient import TestClient

    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    with TestClient(create_app(ApiSettings(rate_per_second=1e6, rate_burst=10**6))) as second:
        from .helpers import eventually

        h = {"Authorization": f"Bearer {scim.token}"}
        eventually(lambda: second.get(scim.base + "/Groups", headers=h).status_code == 200)
        clients = [scim.tc, second] * 4

        def create(tc: Any) -> int:
            return int(
                tc.post(
                    scim.base + "/Groups", headers=h, json={"schemas": [GROUP], "displayName": "Replicated"}
                ).status_code
            )

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, clients))
        assert codes.count(201) == 1 and set(codes) <= {201, 409}
        flt = {"filter": 'displayName eq "replicated"'}
        eventually(
            lambda: second.get(scim.base + "/Groups", headers=h, params=flt).json()["totalResults"] == 1
        )
