"""Each identity provider's real request shapes (../shared/notes/idp-requests.md), sent
as-is to the API on the real control plane."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import ScimClient
from .helpers import create_user

pytestmark = pytest.mark.cluster
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _members(scim: ScimClient, gid: str) -> list[str]:
    return sorted(m["value"] for m in scim.get(f"/Groups/{gid}").json().get("members", []))


# ------------------------------------------------------------------------------ Entra ID


def test_entra_connection_test_and_user_matching(scim: ScimClient, kube: client.ApiClient) -> None:
    r = scim.get("/Users", params={"filter": 'userName eq "nobody@contoso.com"'})
    assert r.status_code == 200 and r.json()["totalResults"] == 0 and r.json()["Resources"] == []
    create_user(kube, scim.namespace, "usr-alice", "Alice@Contoso.com", externalId="a-1")
    from .helpers import eventually

    found = eventually(
        lambda: scim.get("/Users", params={"filter": 'userName eq "alice@contoso.com"'}).json()["Resources"]
    )
    assert found[0]["id"] == "usr-alice" and found[0]["userName"] == "Alice@Contoso.com"


def test_entra_group_lifecycle(scim: ScimClient) -> None:
    body = {
        "schemas": [GROUP, ADSCIM],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Contoso Admins",
        "meta": {"resourceType": "Group"},
    }
    r = scim.post("/Groups", body)
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    r = scim.get(
        "/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Contoso Admins"'}
    )
    assert r.json()["totalResults"] == 1 and "members" not in r.json()["Resources"][0]
    r = scim.get("/Groups", params={"filter": 'DisplayName eq "contoso admins"'})  # attribute case
    assert r.json()["totalResults"] == 1
    assert "members" not in scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"}).json()
    # capitalised ops, $ref null, top-level id, name inside an operation
    add = {
        "schemas": [PATCH],
        "id": gid,
        "Operations": [
            {
                "name": "addMember",
                "op": "Add",
                "path": "members",
                "value": [
                    {"$ref": None, "value": "u1"},
                    {"$ref": None, "value": "u2"},
                    {"$ref": None, "value": "u3"},
                ],
            }
        ],
    }
    assert scim.patch(f"/Groups/{gid}", add).status_code == 204
    assert _members(scim, gid) == ["u1", "u2", "u3"]
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "Contoso Admins 2"}],
    }
    assert scim.patch(f"/Groups/{gid}", rename).status_code == 204
    # Remove with a value list removes only those members (never the whole group)
    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u1"}]}],
    }
    assert scim.patch(f"/Groups/{gid}", remove).status_code == 204
    assert _members(scim, gid) == ["u2", "u3"]
    # aadOptscim062020: lowercase op with a value-path filter
    flagged = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "u2"]'}]}
    assert scim.patch(f"/Groups/{gid}", flagged).status_code == 204
    assert _members(scim, gid) == ["u3"]
    # Add on single-valued externalId
    ext = {"schemas": [PATCH], "Operations": [{"op": "Add", "path": "externalId", "value": "new-ext"}]}
    assert scim.patch(f"/Groups/{gid}", ext).status_code == 204
    assert scim.get(f"/Groups/{gid}").json()["externalId"] == "new-ext"
    # empty Operations succeeds
    assert scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": []}).status_code == 204
    # multi-attribute no-path replace (aadOptscim062020)
    multi = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "value": {"displayName": "Contoso Admins 3", "externalId": "e3"}}],
    }
    assert scim.patch(f"/Groups/{gid}", multi).status_code == 204
    assert scim.delete(f"/Groups/{gid}").status_code == 204


def test_entra_user_active_shapes(scim: ScimClient, kube: client.ApiClient) -> None:
    from .helpers import eventually

    create_user(kube, scim.namespace, "usr-bob", "bob@contoso.com")
    eventually(lambda: scim.get("/Users/usr-bob").status_code == 200)
    # without the flag: "False" as a string
    r = scim.patch(
        "/Users/usr-bob",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    )
    assert r.status_code == 204, r.text
    assert scim.get("/Users/usr-bob").json()["active"] is False
    # with aadOptscim062020: a real boolean in a no-path replace
    r = scim.patch(
        "/Users/usr-bob", {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    )
    assert r.status_code == 204
    assert scim.get("/Users/usr-bob").json()["active"] is True


# ---------------------------------------------------------------------------------- Okta


def test_okta_group_push(scim: ScimClient) -> None:
    r = scim.get("/Groups", params={"filter": 'displayName eq "Okta Eng"', "startIndex": 1, "count": 100})
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    r = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Okta Eng", "members": []})
    assert r.status_code == 201
    gid = r.json()["id"]
    # rename by no-path replace carrying the read-only id; sent on every update: idempotent
    for _ in range(2):
        r = scim.patch(
            f"/Groups/{gid}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Okta Engineering"}}],
            },
        )
        assert r.status_code == 204, r.text
    # membership: remove by value path and add in one PATCH
    scim.patch(
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "old", "display": "old@okta"}]}
            ],
        },
    )
    r = scim.patch(
        f"/Groups/{gid}",
        {"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": 'members[value eq "old"]'},
            {"op": "add", "path": "members", "value": [{"value": "new", "display": "new@okta"}]},
        ]},
    )  # fmt: skip
    assert r.status_code == 204
    assert _members(scim, gid) == ["new"]
    # full push with replace; empty group sends []
    full = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}],
    }
    assert scim.patch(f"/Groups/{gid}", full).status_code == 204
    assert _members(scim, gid) == ["a", "b"]
    empty = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": []}]}
    assert scim.patch(f"/Groups/{gid}", empty).status_code == 204
    assert _members(scim, gid) == []
    # PUT for membership
    r = scim.put(
        f"/Groups/{gid}",
        {"schemas": [GROUP], "id": gid, "displayName": "Okta Engineering", "members": [{"value": "c"}]},
    )
    assert r.status_code == 200 and _members(scim, gid) == ["c"]
    # unlink with delete
    assert scim.delete(f"/Groups/{gid}").status_code == 204


def test_okta_paging_count_100(scim: ScimClient) -> None:
    for i in range(3):
        scim.create_group(f"okta-{i}")
    r = scim.get("/Groups", params={"startIndex": 1, "count": 100}).json()
    assert r["totalResults"] == 3 and r["itemsPerPage"] == 3 and len(r["Resources"]) == 3


# ------------------------------------------------------------------------------ OneLogin


def test_onelogin_connection_and_membership(scim: ScimClient) -> None:
    r = scim.get(
        "/Users",
        params={"filter": 'userName eq "onelogin-test@example.com"'},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    assert r.headers["content-type"].startswith("application/json")
    g = scim.create_group("OneLogin Team")
    r = scim.patch(
        f"/Groups/{g['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "ol-1"}]}]},
    )
    assert r.status_code == 204
    r = scim.patch(
        f"/Groups/{g['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": "members", "value": [{"value": "ol-1"}]}],
        },
    )
    assert r.status_code == 204 and _members(scim, g["id"]) == []


def test_entra_tenant_url_alias(scim: ScimClient) -> None:
    """Admins who entered .../scim/v2/Groups as the Tenant URL still work."""
    r = scim.get("/Groups/Users", params={"filter": 'userName eq "nobody@contoso.com"'})
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    r = scim.post("/Groups/Groups", {"schemas": [GROUP], "displayName": "Via alias"})
    assert r.status_code == 201
    gid = r.json()["id"]
    assert scim.get(f"/Groups/Groups/{gid}").json()["displayName"] == "Via alias"
    assert scim.get(f"/Groups/{gid}").status_code == 200  # the canonical URL sees the same group
    assert scim.get("/Groups/ServiceProviderConfig").status_code == 200
