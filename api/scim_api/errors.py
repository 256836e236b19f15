"""SCIM errors (RFC 7644 §3.12) as exceptions the web layer turns into error bodies."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """An error the client should see: HTTP status, optional ``scimType``, a detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def unauthorized(detail: str) -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="scim"'})


def unavailable(detail: str, retry_after: int = 5) -> ScimError:
    return ScimError(503, detail, headers={"Retry-After": str(retry_after)})
