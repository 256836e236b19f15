"""PATCH protocol edges through the API: RFC 7644 §3.5.2.3 ``noTarget`` and the member cap.
(Bounded work, a 1,000-operation PATCH on a 50,000-member group with /healthz answering
meanwhile, is tests/test_large_groups.py::test_thousand_operation_patch_on_fifty_thousand_members.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import ScimClient
from .helpers import eventually
from .idp_bodies import PATCH

pytestmark = pytest.mark.cluster
CAP = 5


def _members(scim: ScimClient, gid: str) -> list[str]:
    return sorted(m["value"] for m in scim.get(f"/Groups/{gid}").json().get("members", []))


def _patch(scim: ScimClient, gid: str, *ops: dict[str, Any]) -> Any:
    return scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": list(ops)})


@pytest.mark.parametrize(
    ("path", "value"),
    [('members[value eq "nobody"]', {"value": "x"}), ('members[value eq "nobody"].display', "X")],
)
def test_replace_on_an_unmatched_filter_is_no_target(scim: ScimClient, path: str, value: Any) -> None:
    g = scim.create_group(f"NoTarget {path[-8:]}", members=[{"value": "keep"}])
    tag = scim.get(f"/Groups/{g['id']}").headers["etag"]
    add = {"op": "add", "path": "members", "value": [{"value": "new"}]}
    r = _patch(scim, g["id"], add, {"op": "replace", "path": path, "value": value})
    assert r.status_code == 400 and r.json()["scimType"] == "noTarget", r.text
    assert _members(scim, g["id"]) == ["keep"]  # nothing of the request applied
    assert scim.get(f"/Groups/{g['id']}").headers["etag"] == tag


def test_remove_of_an_absent_member_stays_a_no_op(scim: ScimClient) -> None:
    g = scim.create_group("Remove absent", members=[{"value": "keep"}])
    for op in (
        {"op": "remove", "path": 'members[value eq "nobody"]'},
        {"op": "Remove", "path": "members", "value": [{"value": "nobody"}]},
    ):
        assert _patch(scim, g["id"], op).status_code == 204
    assert _members(scim, g["id"]) == ["keep"]


@pytest.fixture
def capped(scim: ScimClient) -> Iterator[ScimClient]:
    """A second API process-in-a-thread for the same workspace, its member cap at 5."""
    from starlette.testclient import TestClient

    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    app = create_app(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000, max_group_members=CAP))
    with TestClient(app, base_url="http://testserver") as tc:
        client = ScimClient(tc, scim.token, scim.namespace)
        eventually(lambda: client.get("/ServiceProviderConfig").status_code == 200, timeout=30)
        yield client


def _users(n: int, prefix: str = "u") -> list[dict[str, str]]:
    return [{"value": f"{prefix}{i}"} for i in range(n)]


def test_member_cap(capped: ScimClient, scim: ScimClient) -> None:
    r = capped.post("/Groups", {"displayName": "Too big", "members": _users(CAP + 1)})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue", r.text
    assert f"at most {CAP} members" in r.json()["detail"]
    assert capped.get("/Groups", params={"filter": 'displayName eq "Too big"'}).json()["totalResults"] == 0

    g = capped.create_group("Full", members=_users(CAP))
    r = _patch(capped, g["id"], {"op": "add", "path": "members", "value": [{"value": "one-more"}]})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    r = capped.put(f"/Groups/{g['id']}", {"displayName": "Full", "members": _users(CAP + 1)})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert len(_members(capped, g["id"])) == CAP
    swap = [
        {"op": "remove", "path": 'members[value eq "u0"]'},
        {"op": "add", "path": "members", "value": [{"value": "x"}]},
    ]
    assert _patch(capped, g["id"], *swap).status_code == 204
    assert len(_members(capped, g["id"])) == CAP

    # a group already above the cap (made before it was lowered) may still shrink
    big = scim.create_group("Grown before the cap", members=_users(CAP + 3))
    eventually(lambda: capped.get(f"/Groups/{big['id']}").status_code == 200)
    assert _patch(capped, big["id"], {"op": "remove", "path": 'members[value eq "u1"]'}).status_code == 204
    r = _patch(capped, big["id"], {"op": "add", "path": "members", "value": [{"value": "late"}]})
    assert r.status_code == 400
    assert len(_members(capped, big["id"])) == CAP + 2
