"""Request bodies exactly as identity providers send them (see /work/shared notes and the
IdPs' public docs), shared by the unit and cluster tests."""

from __future__ import annotations

from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def okta_aiw_put(uid: str, user_name: str, active: bool, password: bool = False) -> dict[str, Any]:
    """Okta App Integration Wizard apps deactivate and reactivate with a PUT of the whole
    user as Okta holds it: its own name (``middleName`` ""), a familyName that differs from
    ours, emails with ``display``, locale, Okta's externalId, ``groups: []``, sometimes a
    password."""
    body: dict[str, Any] = {
        "schemas": [USER],
        "id": uid,
        "userName": user_name,
        "name": {"givenName": "Okta", "middleName": "", "familyName": "Different-Than-Stored"},
        "emails": [{"primary": True, "value": user_name, "type": "work", "display": user_name}],
        "locale": "en-US",
        "externalId": "00u1dhhb1fkIGP7RL1d8",
        "groups": [],
        "active": active,
        "meta": {"resourceType": "User"},
    }
    if password:
        body["password"] = "1mz050nq"
    return body


def oin_patch(active: bool) -> dict[str, Any]:
    """Okta catalogue (OIN) apps: a no-path replace."""
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": active}}]}


def entra_patch(value: Any, op: str = "Replace") -> dict[str, Any]:
    """Entra ID: ``path: active``; a boolean with the aadOptscim062020 flag, else the
    strings "False"/"True", and ``Replace`` capitalised."""
    return {"schemas": [PATCH], "Operations": [{"op": op, "path": "active", "value": value}]}


def entra_patch_with_profile(value: Any) -> dict[str, Any]:
    """Entra ID with attribute mappings beyond ``active`` left in place: the profile change
    of the same sync cycle rides in the same request as the (de)activation."""
    return {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Ada L. (left)"},
            {"op": "Replace", "path": "name.familyName", "value": "Lovelace-King"},
            {"op": "Replace", "path": "active", "value": value},
        ],
    }


#: (name, deactivation body, reactivation body) for PATCH; PUT bodies need the user.
PATCH_SHAPES = [
    ("oin-no-path-replace", oin_patch(False), oin_patch(True)),
    ("entra-string", entra_patch("False"), entra_patch("True")),
    ("entra-boolean", entra_patch(False, "replace"), entra_patch(True, "replace")),
    ("entra-with-profile-change", entra_patch_with_profile("False"), entra_patch_with_profile("True")),
]


def okta_create_user(user_name: str, external_id: str = "00ujl29u0le5T6Aj10h7") -> dict[str, Any]:
    """Okta's ``POST /Users`` (its SCIM 2.0 guide): a password, ``groups: []``, locale."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def entra_create_user(
    user_name: str, external_id: str = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
) -> dict[str, Any]:
    """Entra ID's ``POST /Users`` (its SCIM reference): the enterprise extension, ``roles``,
    ``meta``, ``name.formatted``, ``active`` as a boolean."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        ENTERPRISE: {"department": "Engineering", "manager": {"value": "mgr-1"}},
        "roles": [],
    }
