"""SCIM responses: ``application/scim+json`` (RFC 7644 §3.1) unless the client wants plain
JSON: its ``Accept`` header names ``application/json`` but not the SCIM type, or its
User-Agent is one of an IdP that requires ``application/json`` (OneLogin documents that all
responses must be ``application/json``; the list is ``SCIM_PLAIN_JSON_USER_AGENTS``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

SCIM_JSON = "application/scim+json"
PLAIN_JSON = "application/json"


def choose_media_type(accept: str, user_agent: str, plain_json_agents: Iterable[str]) -> str:
    """The response content type for a request's ``Accept`` and ``User-Agent``: an explicit
    ``Accept`` wins, then the User-Agent, then the SCIM default."""
    accept = accept.lower()
    if "scim+json" in accept:
        return SCIM_JSON
    if PLAIN_JSON in accept and "*/*" not in accept and "application/*" not in accept:
        return PLAIN_JSON
    agent = user_agent.lower()
    if any(fragment and fragment in agent for fragment in plain_json_agents):
        return PLAIN_JSON
    return SCIM_JSON


def media_type_for(request: Request) -> str:
    state = getattr(request.app.state, "scim", None)
    agents = state.settings.plain_json_user_agents if state is not None else ()
    return choose_media_type(request.headers.get("accept", ""), request.headers.get("user-agent", ""), agents)


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
