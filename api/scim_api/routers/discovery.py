"""``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``: read-only, authenticated.

Also the server-root ``POST /.search`` (RFC 7644 §3.4.3), which this server does not offer:
501, as §3.12 asks for an unsupported operation, rather than a 404 for a missing URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authenticate
from ..errors import ScimError, not_found
from ..protocol import discovery
from ..responses import scim_response
from .common import base_url

router = APIRouter()
_WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request) -> Response:
    await authenticate(request)
    settings = request.app.state.scim.settings
    return scim_response(request, discovery.service_provider_config(base_url(request), settings.max_results))


@router.get("/ResourceTypes")
async def resource_types(request: Request) -> Response:
    await authenticate(request)
    return scim_response(request, discovery.list_response(discovery.resource_types(base_url(request))))


def _one(request: Request, items: list[dict[str, Any]], wanted: str, kind: str) -> Response:
    """The discovery document whose ``id`` is ``wanted``, or 404."""
    for item in items:
        if item["id"] == wanted:
            return scim_response(request, item)
    raise not_found(f"{kind} {wanted!r} not found")


@router.get("/ResourceTypes/{rid}")
async def resource_type(request: Request, rid: str) -> Response:
    await authenticate(request)
    return _one(request, discovery.resource_types(base_url(request)), rid, "ResourceType")


@router.get("/Schemas")
async def schemas(request: Request) -> Response:
    await authenticate(request)
    return scim_response(request, discovery.list_response(discovery.schemas(base_url(request))))


@router.get("/Schemas/{sid}")
async def schema(request: Request, sid: str) -> Response:
    await authenticate(request)
    return _one(request, discovery.schemas(base_url(request)), sid, "Schema")


@router.post("/.search")
async def search_everything(request: Request) -> Response:
    await authenticate(request)
    raise ScimError(501, "Searching all resource types at once is not supported; use GET /Groups or /Users")


@router.api_route("/ServiceProviderConfig", methods=_WRITES, include_in_schema=False)
@router.api_route("/ResourceTypes", methods=_WRITES, include_in_schema=False)
@router.api_route("/ResourceTypes/{rid}", methods=_WRITES, include_in_schema=False)
@router.api_route("/Schemas", methods=_WRITES, include_in_schema=False)
@router.api_route("/Schemas/{sid}", methods=_WRITES, include_in_schema=False)
async def read_only(request: Request) -> Response:
    await authenticate(request)
    raise ScimError(405, "Discovery endpoints are read-only", headers={"Allow": "GET"})
