"""Opt-in user creation: which POST /Users bodies create a ScimUser, and what is stored."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.user_create import (
    CREATED_BY_LABEL,
    IDP_MADE,
    allowed_domains,
    domain_of,
    user_id,
    user_manifest,
    user_spec,
)
from scim_core import constants as c

from ...idp_bodies import USER, entra_create_user, okta_create_user

DOMAINS = frozenset({"example.com", "contoso.com"})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, frozenset()),
        ({}, frozenset()),
        ({"users": {}}, frozenset()),
        ({"users": {"provisioning": {}}}, frozenset()),
        ({"users": {"provisioning": {"allowedDomains": []}}}, frozenset()),
        ({"users": {"provisioning": {"allowedDomains": ["Example.COM", "a.b"]}}}, {"example.com", "a.b"}),
    ],
)
def test_allowed_domains(spec: dict[str, Any] | None, expected: frozenset[str]) -> None:
    assert allowed_domains(spec) == expected


@pytest.mark.parametrize(
    ("user_name", "expected"),
    [
        ("ada@Example.com", "example.com"),
        ("a@b@contoso.com", "contoso.com"),
        ("ada", None),
        ("ada@", None),
        ("@example.com", "example.com"),
    ],
)
def test_domain_of(user_name: str, expected: str | None) -> None:
    assert domain_of(user_name) == expected


def test_user_id_is_stable_per_workspace_and_case_insensitive() -> None:
    assert user_id("ns", "Ada@Example.com") == user_id("ns", "ada@example.com")
    assert user_id("ns", "ada@example.com") != user_id("other", "ada@example.com")
    assert user_id("ns", "ada@example.com") != user_id("ns", "grace@example.com")


def test_okta_body_keeps_the_profile_only() -> None:
    spec = user_spec(okta_create_user("new@example.com"), DOMAINS)
    assert spec == {
        "userName": "new@example.com",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "displayName": "Test User",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"value": "new@example.com", "type": "work", "primary": True}],
        "active": True,
    }


def test_entra_body_with_extensions_is_accepted() -> None:
    spec = user_spec(entra_create_user("Ada@Contoso.com"), DOMAINS)
    assert spec["userName"] == "Ada@Contoso.com" and spec["active"] is True
    assert spec["name"] == {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    }
    assert "roles" not in spec and "meta" not in spec


def test_never_a_subject_and_lenient_active() -> None:
    body = {"schemas": [USER], "userName": "x@example.com", "subject": "system:masters", "active": "False"}
    spec = user_spec(body, DOMAINS)
    assert spec == {"userName": "x@example.com", "active": False}


def test_no_schemas_is_accepted() -> None:
    assert user_spec({"USERNAME": "x@example.com"}, DOMAINS) == {"userName": "x@example.com", "active": True}


@pytest.mark.parametrize(
    ("domains", "user_name", "detail"),
    [
        (frozenset(), "x@example.com", "must already exist"),
        (DOMAINS, "x@evil.com", "only for userNames in the domains contoso.com, example.com"),
        (DOMAINS, "x@sub.example.com", "only for userNames"),
        (DOMAINS, "example.com", "only for userNames"),
    ],
)
def test_outside_the_domains_is_forbidden(domains: frozenset[str], user_name: str, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        user_spec({"schemas": [USER], "userName": user_name}, domains)
    assert err.value.status == 403 and err.value.scim_type is None and detail in err.value.detail


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([], "invalidSyntax"),
        ({"schemas": "x", "userName": "a@example.com"}, "invalidSyntax"),
        ({"schemas": [1], "userName": "a@example.com"}, "invalidSyntax"),
        ({"schemas": ["urn:x"], "userName": "a@example.com"}, "invalidSyntax"),
        ({"schemas": [USER]}, "invalidValue"),
        ({"userName": "  "}, "invalidValue"),
        ({"userName": 5}, "invalidValue"),
        ({"userName": "a@example.com", "name": "Ada"}, "invalidValue"),
        ({"userName": "a@example.com", "emails": {"value": "a"}}, "invalidValue"),
        ({"userName": "a@example.com", "emails": ["a"]}, "invalidValue"),
        ({"userName": "a@example.com", "emails": [{"type": "work"}]}, "invalidValue"),
        ({"userName": "a@example.com", "externalId": 7}, "invalidValue"),
        ({"userName": "a@example.com", "displayName": "d" * 257}, "invalidValue"),
        ({"userName": "a" * 250 + "@example.com"}, "invalidValue"),
        ({"userName": "a@example.com", "active": "yes"}, "invalidValue"),
    ],
)
def test_malformed_bodies_are_400(body: Any, scim_type: str) -> None:
    with pytest.raises(ScimError) as err:
        user_spec(body, DOMAINS)
    assert err.value.status == 400 and err.value.scim_type == scim_type


def test_manifest_is_labelled_as_idp_made() -> None:
    spec = {"userName": "Ada@example.com", "active": True}
    obj = user_manifest("ns", spec)
    assert obj["apiVersion"] == c.API_VERSION and obj["kind"] == c.USER_KIND
    assert obj["metadata"] == {
        "name": user_id("ns", "ada@example.com"),
        "labels": {CREATED_BY_LABEL: IDP_MADE},
    }
    assert obj["spec"] == spec and obj["spec"] is not spec
