"""Deactivation and reactivation as each IdP sends them, ending in what the API server
decides (SubjectAccessReview as the cluster admin): access gone, then back.

- Okta App Integration Wizard apps: ``PUT /Users/{id}`` with the whole user as Okta holds it
  (a different familyName, ``middleName: ""``, emails with display, locale, Okta's
  externalId, ``groups: []``, sometimes a password). This answered 400 ``mutability``
  before, and the person kept access.
- Okta OIN apps: PATCH no-path ``replace`` with ``{"active": false}``.
- Entra ID: PATCH ``path: active`` with ``"False"``/``"True"`` (``Replace``) or booleans.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c

from .conftest import ScimClient
from .helpers import allowed, create_user, custom, eventually
from .idp_bodies import PATCH_SHAPES, okta_aiw_put

pytestmark = pytest.mark.cluster
UID = "usr-ada"
USER_NAME = "ada@example.com"
STORED_NAME = {"givenName": "Ada", "familyName": "Lovelace"}


def _can_view(kube: client.ApiClient, namespace: str) -> bool:
    return allowed(kube, f"oidc:{USER_NAME}", namespace)


def _expect_access(kube: client.ApiClient, namespace: str, allowed: bool) -> None:
    eventually(lambda: _can_view(kube, namespace) is allowed, timeout=30)


@pytest.fixture
def member(scim: ScimClient, kube: client.ApiClient) -> ScimClient:
    """Ada, stored with her own name and email, in a group the workspace maps to ``view``."""
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, scim.namespace, c.WORKSPACE_PLURAL, "ws",
        {"spec": {
            "subjects": {"prefix": "oidc:", "userField": "userName"},
            "roleMappings": [{"name": "readers", "groups": {"displayName": "Readers"}, "clusterRole": "view"}],
        }},
    )  # fmt: skip
    create_user(
        kube, scim.namespace, UID, USER_NAME, externalId="ext-ada", name=STORED_NAME,
        emails=[{"value": USER_NAME, "primary": True}],
    )  # fmt: skip
    eventually(lambda: scim.get(f"/Users/{UID}").status_code == 200)
    scim.create_group("Readers", members=[{"value": UID}])
    _expect_access(kube, scim.namespace, True)
    return scim


def _stored(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, UID
    )
    return obj["spec"]


@pytest.mark.parametrize("password", [False, True], ids=["no-password", "with-password"])
def test_okta_aiw_put_deactivates_and_reactivates(
    member: ScimClient, kube: client.ApiClient, password: bool
) -> None:
    before = _stored(kube, member.namespace)
    r = member.put(f"/Users/{UID}", okta_aiw_put(UID, USER_NAME, False, password))
    assert r.status_code == 200, r.text
    body = r.json()
    # the answer is the stored user: Okta's profile was accepted, not applied
    assert body["active"] is False and body["name"] == STORED_NAME and body["externalId"] == "ext-ada"
    assert "locale" not in body and "password" not in body
    assert _stored(kube, member.namespace) == before | {"active": False}
    _expect_access(kube, member.namespace, False)

    r = member.put(f"/Users/{UID}", okta_aiw_put(UID, USER_NAME, True, password))
    assert r.status_code == 200 and r.json()["active"] is True
    assert _stored(kube, member.namespace) == before | {"active": True}
    _expect_access(kube, member.namespace, True)


def test_okta_aiw_put_repeated_is_a_confirmed_no_op(member: ScimClient, kube: client.ApiClient) -> None:
    body = okta_aiw_put(UID, USER_NAME, False)
    first = member.put(f"/Users/{UID}", body)
    again = member.put(f"/Users/{UID}", body)
    assert first.status_code == again.status_code == 200
    assert again.headers["etag"] == first.headers["etag"] and again.json()["active"] is False
    _expect_access(kube, member.namespace, False)


@pytest.mark.parametrize(("shape", "off", "on"), PATCH_SHAPES, ids=[s[0] for s in PATCH_SHAPES])
def test_patch_shapes_deactivate_and_reactivate(
    member: ScimClient, kube: client.ApiClient, shape: str, off: dict[str, Any], on: dict[str, Any]
) -> None:
    r = member.patch(f"/Users/{UID}", off)
    assert r.status_code == 204, r.text
    assert _stored(kube, member.namespace)["active"] is False
    _expect_access(kube, member.namespace, False)
    r = member.patch(f"/Users/{UID}", on)
    assert r.status_code == 204, r.text
    assert member.get(f"/Users/{UID}").json()["active"] is True
    _expect_access(kube, member.namespace, True)


def test_put_if_match(member: ScimClient) -> None:
    tag = member.get(f"/Users/{UID}").headers["etag"]
    r = member.put(f"/Users/{UID}", okta_aiw_put(UID, USER_NAME, False), headers={"If-Match": 'W/"999"'})
    assert r.status_code == 412
    assert member.get(f"/Users/{UID}").json()["active"] is True
    r = member.put(f"/Users/{UID}", okta_aiw_put(UID, USER_NAME, False), headers={"If-Match": tag})
    assert r.status_code == 200 and r.json()["active"] is False and r.headers["etag"] != tag


def test_put_of_an_unknown_user_is_404(member: ScimClient) -> None:
    r = member.put("/Users/usr-nobody", okta_aiw_put("usr-nobody", "nobody@example.com", False))
    assert r.status_code == 404
