"""SCIM responses: ``application/scim+json`` unless the client accepts only plain JSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

SCIM_JSON = "application/scim+json"
PLAIN_JSON = "application/json"


def media_type_for(request: Request) -> str:
    accept = request.headers.get("accept", "").lower()
    if not accept or "scim+json" in accept or "*/*" in accept or "application/*" in accept:
        return SCIM_JSON
    if PLAIN_JSON in accept:
        return PLAIN_JSON
    return SCIM_JSON


def scim_response(
    request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        headers=headers,
        media_type=media_type_for(request),
    )


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)
