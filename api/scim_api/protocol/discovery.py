"""Discovery documents (RFC 7643 §5-7) describing exactly what this server does."""

from __future__ import annotations

from typing import Any

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

DOCS = "https://github.com/optimaite/scim-kube/blob/main/docs/api.md"


def _attr(
    name: str,
    type_: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    case_exact: bool = False,
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
    refs: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "mutability": mutability,
        "returned": returned,
    }
    if type_ in ("string", "reference"):
        out["caseExact"] = case_exact
        out["uniqueness"] = uniqueness
    if sub:
        out["subAttributes"] = sub
    if refs:
        out["referenceTypes"] = refs
    return out


def service_provider_config(base_url: str, max_results: int) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": DOCS,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Workspace bearer token",
                "description": "The workspace token, sent as 'Authorization: Bearer <token>'",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups pushed by the identity provider; each becomes Kubernetes access",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/Group"},
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People who already exist in the workspace (read-only; active may be set)",
            "schema": USER_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
        },
    ]


def schemas(base_url: str) -> list[dict[str, Any]]:
    group = {
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": [
            _attr(
                "displayName",
                required=True,
                uniqueness="server",
                description="Unique within the workspace, case-insensitively",
            ),
            _attr("externalId", case_exact=True),
            _attr(
                "members",
                "complex",
                multi=True,
                sub=[
                    _attr("value", mutability="immutable", case_exact=True, description="id of a User"),
                    _attr("display", description="A human-readable name"),
                    _attr("$ref", "reference", mutability="immutable", refs=["User"]),
                    _attr("type", mutability="immutable"),
                ],
            ),
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{GROUP_SCHEMA}"},
    }
    user = {
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User account (read-only here; only active may change)",
        "attributes": [
            _attr("userName", required=True, mutability="readOnly", uniqueness="server"),
            _attr("externalId", mutability="readOnly", case_exact=True),
            _attr("displayName", mutability="readOnly"),
            _attr(
                "name",
                "complex",
                mutability="readOnly",
                sub=[
                    _attr("formatted", mutability="readOnly"),
                    _attr("familyName", mutability="readOnly"),
                    _attr("givenName", mutability="readOnly"),
                ],
            ),
            _attr(
                "emails",
                "complex",
                multi=True,
                mutability="readOnly",
                sub=[
                    _attr("value", mutability="readOnly"),
                    _attr("type", mutability="readOnly"),
                    _attr("primary", "boolean", mutability="readOnly"),
                ],
            ),
            _attr("active", "boolean"),
            _attr(
                "groups",
                "complex",
                multi=True,
                mutability="readOnly",
                sub=[
                    _attr("value", mutability="readOnly"),
                    _attr("display", mutability="readOnly"),
                    _attr("$ref", "reference", mutability="readOnly", refs=["Group"]),
                ],
            ),
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{USER_SCHEMA}"},
    }
    return [group, user]


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
