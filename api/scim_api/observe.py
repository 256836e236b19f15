"""Observe every request once it is answered: metrics, the audit line of a SCIM write, the
IdP trace. Also gives each request an id (the client's ``X-Request-Id`` or a new one),
echoed in the response and written in the audit line.

A pure ASGI middleware, outermost but for Starlette's error handler, so 413s and
authentication failures are counted like everything else."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scim_core import constants as c

from .metrics import UNMATCHED, ApiMetrics
from .observation import REQUEST_ID_HEADER, STATE_KEY, Observation, request_id
from .trace import WRITE_METHODS, Answered, TraceWriter

audit_log = logging.getLogger("scim_api.audit")

#: Resource types a route template can end in (the last literal segment names it).
_RESOURCES = ("Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas")


def route_template(route: object) -> str:
    """The matched route's template relative to the SCIM base path (``/Groups/{gid}``):
    a bounded label, never the raw path. ``unmatched`` when no route matched."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return UNMATCHED
    if path.startswith(c.SCIM_BASE_PATH):  # FastAPI versions differ: with or without the prefix
        path = path[len(c.SCIM_BASE_PATH) :] or "/"
    return path


@functools.lru_cache(maxsize=256)  # route templates: a bounded set
def resource_type(template: str) -> str | None:
    """``Groups`` for ``/Groups/{gid}`` (and the Entra alias ``/Groups/Users/{uid}`` is
    ``Users``): the last literal segment that names a resource type, else None."""
    literal = [s for s in template.split("/") if s and not s.startswith("{")]
    return next((s for s in reversed(literal) if s in _RESOURCES), None)


def audit_entry(obs: Observation, status: int) -> dict[str, Any]:
    """The fields of one audit line: who changed what and how it ended. Counts of members,
    never the members; the token's fingerprint, never the token. A refused write applied
    nothing (a write is all or nothing), so its counts are zero."""
    applied = status < 400
    return {
        "request_id": obs.request_id,
        "workspace": obs.workspace.namespace if obs.workspace else None,
        "token_fingerprint": obs.fingerprint,
        "method": obs.method,
        "resource_type": obs.resource_type,
        "resource_id": obs.resource_id,
        "members_added": obs.members_added if applied else 0,
        "members_removed": obs.members_removed if applied else 0,
        "patch_operations": obs.patch_operations,
        "status": status,
        "scim_type": obs.scim_type,
    }


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, writer: TraceWriter) -> None:
        self.app = app
        self.metrics = metrics
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        obs = Observation(request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)), scope["method"])
        scope.setdefault("state", {})[STATE_KEY] = obs
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = obs.request_id
                location = headers.get("location")
                if location and obs.resource_id is None:  # a create: the new id
                    obs.resource_id = location.rstrip("/").rsplit("/", 1)[-1]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._finished(scope, obs, status, time.perf_counter() - started)

    def _finished(self, scope: Scope, obs: Observation, status: int, seconds: float) -> None:
        template = route_template(scope.get("route"))
        obs.resource_type = resource_type(template)
        if obs.resource_id is None:
            params = scope.get("path_params") or {}
            obs.resource_id = params.get("gid") or params.get("uid")
        workspace = obs.workspace.namespace if obs.workspace else ""
        self.metrics.observe(workspace, obs.method, template, status, seconds)
        if obs.patch_operations and status < 300 and obs.resource_type:
            self.metrics.patch_operations.labels(workspace, obs.resource_type).inc(obs.patch_operations)
        if obs.method in WRITE_METHODS and obs.resource_type in ("Users", "Groups"):
            audit_log.info("SCIM write", extra=audit_entry(obs, status))
        if obs.workspace is not None:
            if status >= 400 and obs.detail is None:
                obs.detail = f"HTTP {status}"
            self.writer.record(
                Answered(obs.workspace, obs.fingerprint, obs.method, status, obs.scim_type, obs.detail)
            )
