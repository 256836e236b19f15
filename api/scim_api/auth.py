"""Bearer-token authentication: the token's SHA-256 must be one the operator published
in a ScimWorkspace's status. The token itself is never stored or logged."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from scim_core.tokens import fingerprint, token_sha256

from .directory import WorkspaceRef
from .errors import ScimError, unauthorized, unavailable
from .observation import observation

MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class Caller:
    """Who is calling: a workspace (its namespace) and a log-safe token fingerprint."""

    workspace: WorkspaceRef
    token_hash: str

    @property
    def namespace(self) -> str:
        return self.workspace.namespace


async def authenticate(request: Request) -> Caller:
    """The workspace of the presented bearer token, or 401: the first statement of every SCIM
    endpoint. Called, not declared as a FastAPI dependency: resolving one ran a second
    ``solve_dependencies`` on every request (about 6 % of a filter read's CPU, py-spy), and as
    a plain function FastAPI ran it in its thread pool (a thread hop per request). A coroutine
    though it never awaits, so it runs on the loop like the rest of the request."""
    state = request.app.state.scim
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication required: send 'Authorization: Bearer <workspace token>'")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH or " " in token:
        raise unauthorized("Malformed Authorization header: expected 'Bearer <workspace token>'")
    if not state.ready():  # not synced yet, or its watches are broken: tokens may be revoked
        raise unavailable("The SCIM service is not in step with the cluster; try again shortly")
    digest = token_sha256(token)
    ref = state.directory.workspace_for_token_hash(digest)
    if ref is None:
        raise unauthorized("The bearer token is not valid (unknown, expired or revoked)")
    record = observation(request)  # from here on the request belongs to a workspace (trace, audit)
    record.workspace = ref
    record.fingerprint = fingerprint(digest)
    wait = state.limiter.retry_after(digest)
    if wait is not None:
        raise ScimError(
            429, "Too many requests for this token; slow down", headers={"Retry-After": str(wait)}
        )
    return Caller(ref, digest)
