"""What one request did, gathered while it runs and read once it is answered.

The middleware (``observe.py``) creates it; authentication fills in the workspace and token
fingerprint, the routers the resource and the member changes, the error handlers the SCIM
error. Metrics, the audit line and the IdP trace are all read from this one record."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from .directory import WorkspaceRef
from .protocol.group_patch import GroupState

#: A client's ``X-Request-Id`` is kept when it is this tame (it goes into logs); else a new one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-Id"
STATE_KEY = "scim_observation"


def request_id(supplied: str | None) -> str:
    """The caller's request id when it is safe to log, else a fresh random one."""
    if supplied and _REQUEST_ID.fullmatch(supplied):
        return supplied
    return uuid.uuid4().hex


@dataclass
class Observation:
    request_id: str
    method: str
    workspace: WorkspaceRef | None = None
    fingerprint: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    members_added: int = 0
    members_removed: int = 0
    patch_operations: int = 0
    scim_type: str | None = None
    detail: str | None = None

    def failed(self, scim_type: str | None, detail: str) -> None:
        self.scim_type = scim_type
        self.detail = detail

    def members_changed(self, before: GroupState | None, after: GroupState | None) -> None:
        """Count the members a write adds and removes (set difference, not the request)."""
        old = set(before.members) if before is not None else set()
        new = set(after.members) if after is not None else set()
        self.members_added = len(new - old)
        self.members_removed = len(old - new)


def observation(request: Request) -> Observation:
    """This request's record (a detached one when no middleware made it, e.g. in a unit test)."""
    found = getattr(request.state, STATE_KEY, None)
    if isinstance(found, Observation):
        return found
    made = Observation(request_id(None), request.method)
    setattr(request.state, STATE_KEY, made)
    return made


S = TypeVar("S", bound=GroupState)


def counting_members(request: Request, change: Callable[[GroupState], S]) -> Callable[[GroupState], S]:
    """``change`` that also records, for the audit line, how many members it added and
    removed (the last attempt counts: a store retries a change on a write conflict)."""
    record = observation(request)

    def counted(current: GroupState) -> S:
        after = change(current)
        record.members_changed(current, after)
        return after

    return counted
