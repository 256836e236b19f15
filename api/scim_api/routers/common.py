"""Request helpers shared by the resource routers."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import Depends
from starlette.requests import Request

from scim_core import constants as c

from ..auth import Caller, authenticate
from ..errors import ScimError, invalid_syntax, not_found
from ..state import ApiState

Auth = Annotated[Caller, Depends(authenticate)]
_JSON_TYPES = ("application/scim+json", "application/json", "text/json")


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.scim
    return state


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + c.SCIM_BASE_PATH


async def json_body(request: Request) -> Any:
    """The request body as JSON: bad UTF-8, malformed or too-deep JSON is a 400."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise ScimError(415, f"Unsupported content type {ctype!r}; send application/scim+json")
    raw = await request.body()
    if not raw.strip():
        raise invalid_syntax("The request body is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_syntax("The request body is not valid UTF-8") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_syntax(f"The request body is not valid JSON: {exc.msg}") from exc


_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def resource_id(value: str, kind: str) -> str:
    """A SCIM id is a Kubernetes object name; anything else cannot exist: 404, never a call."""
    if not _NAME.fullmatch(value) or ".." in value:
        raise not_found(f"{kind} {value!r} not found")
    return value
