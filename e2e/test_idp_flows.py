"""The IdP request sequences of tests/test_e2e_idp.py (Entra, Okta OIN group push, OneLogin),
reused as they are, now against the chart's Pods through the API Service; plus the Okta
custom-app (AIW) shape, and proof that the Service spread the requests over both API Pods."""

from __future__ import annotations

from typing import Any

from tests.test_e2e_idp import (  # the sequences themselves, collected here too
    GROUP,
    PATCH,
    Idp,
    _new_ns,
    test_entra_flow,
    test_okta_flow,
    test_onelogin_flow,
)

from .cluster_access import pods, recent_connections
from .conftest import ClusterStack

__all__ = ["test_entra_flow", "test_okta_flow", "test_onelogin_flow"]


def _user(idp: Idp, login: str) -> dict[str, Any]:
    status, body = idp.call("GET", f"/Users?filter=userName%20eq%20%22{login}%22")
    assert status == 200 and body["totalResults"] == 1, body
    user: dict[str, Any] = body["Resources"][0]
    return user


def test_okta_custom_app_flow(stack: ClusterStack) -> None:
    """Okta AIW apps: groups pushed with PUT and the full member list, users deactivated and
    reactivated by PUT with the whole user as Okta holds it (its own profile values)."""
    idp = Idp(stack, _new_ns(stack, "okta-aiw"))
    alice, bob = _user(idp, "alice@example.com"), _user(idp, "bob@example.com")
    status, g = idp.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "Platform Admins", "members": []}
    )
    assert status == 201
    gid = g["id"]
    members = [{"value": alice["id"], "display": "alice@example.com"}, {"value": bob["id"]}]
    put = {"schemas": [GROUP], "id": gid, "displayName": "Platform Admins", "members": members}
    assert idp.call("PUT", f"/Groups/{gid}", put)[0] == 200
    idp.expect(alice="edit", bob="edit", carol="none")

    def okta_user(user: dict[str, Any], active: bool) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": user["id"],
            "userName": user["userName"], "name": {"givenName": "Okta", "middleName": "", "familyName": "Held"},
            "emails": [{"primary": True, "value": user["userName"], "type": "work", "display": user["userName"]}],
            "locale": "en-US", "externalId": "00u1a2b3c4d5e6f7g8h9", "groups": [], "active": active,
            "meta": {"resourceType": "User"},
        }  # fmt: skip

    status, body = idp.call("PUT", f"/Users/{alice['id']}", okta_user(alice, active=False))
    assert status == 200, body
    idp.expect(alice="none", bob="edit")
    assert idp.call("PUT", f"/Users/{alice['id']}", okta_user(alice, active=True))[0] == 200
    idp.expect(alice="edit")
    put["members"] = [{"value": bob["id"]}]
    assert idp.call("PUT", f"/Groups/{gid}", put)[0] == 200
    idp.expect(alice="none", bob="edit")
    oin_deactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    assert idp.call("PATCH", f"/Users/{bob['id']}", oin_deactivate)[0] in (200, 204)
    idp.expect(bob="none")
    assert idp.call("DELETE", f"/Groups/{gid}")[0] == 204
    idp.expect(alice="none", bob="none", carol="none")


def test_requests_spread_over_both_api_pods(stack: ClusterStack) -> None:
    """Requests through the Service reach each API Pod (counted from the Pod's own TCP table:
    connections from the relay, open or closed within the last minute)."""
    api_pods = pods(stack.kube, stack.release, "api")
    assert len(api_pods) == 2, "the chart's default is two API replicas"
    idp = Idp(stack, _new_ns(stack, "spread"))
    for _ in range(30):
        assert idp.call("GET", "/Groups?count=1")[0] == 200
    port = api_pods[0].spec.containers[0].ports[0].container_port
    served = {
        p.metadata.name: recent_connections(stack.release, p.metadata.name, stack.relay_ip, port)
        for p in api_pods
    }
    assert all(n > 0 for n in served.values()), served
