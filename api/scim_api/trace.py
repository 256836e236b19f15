"""The IdP's trace in the workspace status (``status.idp``, ``status.tokenUsage``).

Each replica gathers, per workspace, what the IdP did since its last report and writes it
with a merge patch on the ``status`` subresource at most once per ``interval`` (default a
minute), guarded by the resourceVersion it built the patch on (``tokenUsage`` is a list that
every replica rewrites whole: a conflict re-reads and rebuilds, so no replica's entry is
lost). The first use of a token fingerprint not yet in ``tokenUsage`` is written at once: the
operator retires the previous token as soon as it sees the new one used.

``IdpTrace`` is the bookkeeping (no I/O, clocks injected); ``TraceWriter`` does the writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.kube import patch_status, read_fresh
from scim_core.timestamps import format_utc, parse_time

from .directory import Directory, Obj, WorkspaceRef
from .metrics import ApiMetrics

log = logging.getLogger(__name__)

#: The last error's detail is cut to this many characters (the CRD allows 1024).
MAX_DETAIL = 256
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Guarded writes of one report before it is given up (each conflict re-reads the workspace).
WRITE_ATTEMPTS = 5
CONFLICT = 409


@dataclass(frozen=True)
class Answered:
    """One answered request of a workspace's IdP, as the trace counts it."""

    ref: WorkspaceRef
    fingerprint: str | None  # of the token it came with
    method: str
    status: int
    scim_type: str | None = None
    detail: str | None = None


@dataclass
class _Pending:
    """What one workspace's IdP did since this replica last reported it."""

    requests: int = 0
    errors: int = 0
    last_request: datetime | None = None
    last_write: datetime | None = None
    last_error: dict[str, Any] | None = None
    tokens: dict[str, datetime] = field(default_factory=dict)
    #: monotonic time of the last report (``-inf``: never)
    reported_at: float = float("-inf")
    #: fingerprints this replica has reported (the watch may not show them yet)
    reported_tokens: set[str] = field(default_factory=set)
    urgent: bool = False


def _later(a: str | None, b: datetime | None) -> str | None:
    """The later of a status timestamp and ours, as a status timestamp."""
    theirs = parse_time(a)
    if b is None:
        return a
    return format_utc(b if theirs is None or b > theirs else theirs)


class IdpTrace:
    """Per-workspace accumulators and the throttle."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._pending: dict[WorkspaceRef, _Pending] = {}

    def record(self, a: Answered, now: datetime, known_tokens: set[str]) -> bool:
        """Count one answered request; True when the workspace should be reported now (a
        fingerprint neither in ``known_tokens`` nor reported before)."""
        p = self._pending.setdefault(a.ref, _Pending())
        p.requests += 1
        p.last_request = now
        if a.status >= 400:
            p.errors += 1
            p.last_error = {
                "time": format_utc(now),
                "status": a.status,
                "detail": (a.detail or "")[:MAX_DETAIL],
            }
            if a.scim_type:
                p.last_error["scimType"] = a.scim_type
        elif a.method in WRITE_METHODS:
            p.last_write = now
        if a.fingerprint is not None:
            p.tokens[a.fingerprint] = now
            if a.fingerprint not in known_tokens and a.fingerprint not in p.reported_tokens:
                p.urgent = True
        return p.urgent or self._clock() - p.reported_at >= self.interval

    def due(self, everything: bool = False) -> list[WorkspaceRef]:
        """Workspaces with something to report whose throttle has passed (or that are
        urgent); with ``everything``, all with something to report (at shutdown)."""
        now = self._clock()
        return [
            ref
            for ref, p in self._pending.items()
            if p.requests and (everything or p.urgent or now - p.reported_at >= self.interval)
        ]

    def take(self, ref: WorkspaceRef, status: dict[str, Any]) -> dict[str, Any] | None:
        """The status patch for ``ref`` given its current ``status`` (None: nothing to say),
        and the counters start again."""
        pending = self.pop(ref)
        return None if pending is None else report(pending, status)

    def pop(self, ref: WorkspaceRef) -> _Pending | None:
        """What ``ref`` has to report (None: nothing), and the counters start again."""
        p = self._pending.get(ref)
        if p is None or not p.requests:
            return None
        p.reported_tokens |= set(p.tokens)
        self._pending[ref] = _Pending(reported_at=self._clock(), reported_tokens=p.reported_tokens)
        return p

    def forget(self, ref: WorkspaceRef) -> None:
        self._pending.pop(ref, None)


def report(p: _Pending, status: dict[str, Any]) -> dict[str, Any]:
    """The status patch for what ``p`` saw, given the workspace's current ``status``.
    Timestamps never move back (another replica may have reported later ones);
    ``tokenUsage`` keeps every fingerprint still published that ``status`` or ``p`` shows
    used: the list is replaced whole, so ``status`` must be the stored one (the writer
    guards the write with its resourceVersion)."""
    current = status.get("idp") or {}
    idp: dict[str, Any] = {
        "lastRequestTime": _later(current.get("lastRequestTime"), p.last_request),
        "requests": p.requests,
        "errors": p.errors,
    }
    if p.last_write is not None:
        idp["lastWriteTime"] = _later(current.get("lastWriteTime"), p.last_write)
    if p.last_error is not None:
        idp["lastError"] = p.last_error
    published = [h.get("fingerprint") for h in status.get("tokenHashes") or []]
    seen = {u.get("fingerprint"): u.get("lastUsedTime") for u in status.get("tokenUsage") or []}
    usage = [
        {"fingerprint": fp, "lastUsedTime": _later(seen.get(fp), p.tokens.get(fp))}
        for fp in published
        if isinstance(fp, str) and (fp in seen or fp in p.tokens)
    ]
    return {"idp": idp, "tokenUsage": usage}


def known_tokens(workspace: dict[str, Any] | None) -> set[str]:
    """Fingerprints the workspace status already shows as used."""
    usage = ((workspace or {}).get("status") or {}).get("tokenUsage") or []
    return {u["fingerprint"] for u in usage if isinstance(u, dict) and isinstance(u.get("fingerprint"), str)}


class TraceWriter:
    """Writes the trace: at once when a request makes it urgent, else from a loop that
    checks every few seconds which workspaces are due."""

    def __init__(
        self,
        trace: IdpTrace,
        directory: Directory,
        metrics: ApiMetrics,
        api: Callable[[], client.ApiClient | None],
    ) -> None:
        self.trace = trace
        self.directory = directory
        self.metrics = metrics
        self._api = api
        self._in_flight: set[WorkspaceRef] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    def record(self, answered: Answered) -> None:
        workspace = self.directory.workspaces.get((answered.ref.namespace, answered.ref.name))
        if self.trace.record(answered, datetime.now(UTC), known_tokens(workspace)):
            self._schedule(answered.ref)

    def _schedule(self, ref: WorkspaceRef) -> None:
        if ref in self._in_flight:
            return  # the write under way, or the next one, carries this request too
        self._in_flight.add(ref)
        task = asyncio.get_running_loop().create_task(self._flush(ref))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, ref: WorkspaceRef) -> None:
        try:
            api = self._api()
            workspace = self.directory.workspaces.get((ref.namespace, ref.name))
            if api is None or workspace is None:
                self.trace.forget(ref)  # deleted meanwhile: nothing to write to
                return
            pending = self.trace.pop(ref)
            if pending is None:
                return
            try:
                await self._write(api, ref, pending, workspace)
            except Exception as exc:  # a status write must never fail a request or the loop
                self.metrics.status_writes.labels("error").inc()
                log.warning("could not write the IdP trace of %s/%s: %s", ref.namespace, ref.name, exc)
            else:
                self.metrics.status_writes.labels("ok").inc()
        finally:
            self._in_flight.discard(ref)

    async def _write(
        self, api: client.ApiClient, ref: WorkspaceRef, pending: _Pending, workspace: Obj
    ) -> None:
        """Write the report on the workspace as this replica last saw it, guarded by its
        resourceVersion: another replica's write (or the operator's) since makes it 409,
        and it is rebuilt on the workspace read fresh. An unguarded merge patch would let a
        replica whose watch lags replace ``tokenUsage`` without the other's fingerprint."""
        for _attempt in range(WRITE_ATTEMPTS):
            patch = report(pending, workspace.get("status") or {})
            try:
                updated = await patch_status(
                    api, c.WORKSPACE_PLURAL, ref.namespace, ref.name, patch,
                    resource_version=workspace["metadata"]["resourceVersion"],
                )  # fmt: skip
            except ApiException as exc:
                if exc.status != CONFLICT:
                    raise
                fresh = await read_fresh(api, c.WORKSPACE_PLURAL, ref.namespace, ref.name)
                if fresh is None:
                    return  # deleted meanwhile
                workspace = fresh
                continue
            if updated is not None:  # read-your-writes: the next report starts from it
                self.directory.upsert(c.WORKSPACE_PLURAL, updated)
            return
        raise RuntimeError(f"the workspace kept changing ({WRITE_ATTEMPTS} attempts)")

    async def _run(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for ref in self.trace.due():
                self._schedule(ref)

    def start(self) -> None:
        period = max(0.2, min(5.0, self.trace.interval / 4))
        self._loop = asyncio.get_running_loop().create_task(self._run(period))

    async def stop(self) -> None:
        """Stop the loop and write what is still pending (a rollout loses no trace)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for ref in self.trace.due(everything=True):
            self._schedule(ref)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
