"""Opt-in user creation (``POST /Users``): which bodies may create a ScimUser, and its spec.

Off unless the workspace lists domains in ``spec.users.provisioning.allowedDomains``; then
a userName ``local@domain`` with a listed domain (exact, case-insensitive) may be created.
Only profile attributes are kept (userName, externalId, displayName, name, emails, active):
a password, groups, roles or any extension (enterprise or custom schema) the IdP sends are
accepted and not stored, and ``subject``
(the explicit RBAC name, which would let an IdP pick whom a user is bound as) is never set
from a request."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from scim_core import constants as c
from scim_core.resources import ScimUserSpec

from ..errors import ScimError, bad_request, invalid_syntax
from .resources import USER_SCHEMA
from .user_patch import parse_active

#: Label on ScimUsers the identity provider created (the value is ``IDP_MADE``).
CREATED_BY_LABEL = f"{c.GROUP}/created-by"
IDP_MADE = "idp"
#: Fixed namespace for user ids derived from the userName (see ``user_id``).
_ID_NAMESPACE = uuid.UUID("6f1c4f2e-8a57-4d39-9d0e-5c2b1a7e3f90")
_NAME_KEYS = ("formatted", "familyName", "givenName")
_EMAIL_KEYS = ("value", "type", "primary")
NOT_CREATED = (
    "Users are not created over SCIM: a user must already exist in this workspace "
    "(created by a platform administrator) before an identity provider can match it."
)


def allowed_domains(workspace_spec: Mapping[str, Any] | None) -> frozenset[str]:
    """The workspace's ``spec.users.provisioning.allowedDomains``, lowercased."""
    users = (workspace_spec or {}).get("users") or {}
    domains = (users.get("provisioning") or {}).get("allowedDomains") or []
    return frozenset(str(d).lower() for d in domains)


def domain_of(user_name: str) -> str | None:
    """The part after the last ``@`` (lowercased), or None when there is no such part."""
    _, at, domain = user_name.rpartition("@")
    return domain.lower() if at and domain else None


def user_id(namespace: str, user_name: str) -> str:
    """The ScimUser name for an IdP-made user: derived from the userName (case-folded), so
    two replicas creating the same user at once collide in the API server (409)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{namespace}/{user_name.casefold()}"))


def _lowered(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in body.items()}


def _check_schemas(schemas: Any) -> None:
    if schemas is None:
        return
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid_syntax("'schemas' must be a list of URNs")
    if USER_SCHEMA.lower() not in {s.lower() for s in schemas}:
        raise invalid_syntax(f"'schemas' must contain {USER_SCHEMA}")


def _pick(value: Any, keys: Iterable[str], what: str) -> dict[str, Any]:
    """The known sub-attributes of a complex attribute (others, such as Okta's
    ``middleName`` or an email's ``display``, are not stored)."""
    if not isinstance(value, dict):
        raise bad_request(f"'{what}' must be an object")
    lowered = _lowered(value)
    return {k: lowered[k.lower()] for k in keys if lowered.get(k.lower()) is not None}


def user_spec(body: Any, domains: frozenset[str]) -> dict[str, Any]:
    """Validate a POST /Users body against the workspace's domains; the ScimUser spec.

    Refused (403, the answer when creation is off) unless the userName's domain is listed;
    a malformed body is 400 (``invalidSyntax`` or ``invalidValue``)."""
    if not isinstance(body, dict):
        raise invalid_syntax("User body must be a JSON object")
    fields = _lowered(body)
    _check_schemas(fields.get("schemas"))
    user_name = fields.get("username")
    if not isinstance(user_name, str) or not user_name.strip():
        raise bad_request("'userName' is required and must be a non-empty string")
    if not domains:
        raise ScimError(403, NOT_CREATED)
    domain = domain_of(user_name)
    if domain not in domains:
        raise ScimError(
            403,
            f"This workspace creates users only for userNames in the domains {', '.join(sorted(domains))};"
            f" {user_name!r} must already exist (created by a platform administrator).",
        )
    spec: dict[str, Any] = {"userName": user_name}
    for key in ("externalId", "displayName"):
        if fields.get(key.lower()) is not None:
            spec[key] = fields[key.lower()]
    if fields.get("name") is not None:
        spec["name"] = _pick(fields["name"], _NAME_KEYS, "name")
    if fields.get("emails") is not None:
        if not isinstance(fields["emails"], list):
            raise bad_request("'emails' must be a list")
        spec["emails"] = [_pick(e, _EMAIL_KEYS, "emails") for e in fields["emails"]]
    if fields.get("active") is not None:
        spec["active"] = parse_active(fields["active"])
    try:
        valid = ScimUserSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise bad_request(f"Invalid value for {where!r}: {first['msg']}") from exc
    stored: dict[str, Any] = valid.model_dump(mode="json", exclude_none=True)
    return stored


def user_manifest(namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ScimUser to create: labelled as IdP-made, its name derived from the userName."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.USER_KIND,
        "metadata": {
            "name": user_id(namespace, str(spec["userName"])),
            "labels": {CREATED_BY_LABEL: IDP_MADE},
        },
        "spec": dict(spec),
    }
