"""The I/O side of leader election (decisions in ``lease.py``): read the Lease, create it or
update it with optimistic concurrency (``resourceVersion``), every ``retry_period``.

Writers ask :meth:`LeaderElector.is_leader` (or :meth:`check`) right before they write; it
is computed from the clock at that moment, so a replica that was paused or cut off knows it
is no longer the leader the instant it resumes, before any renewal attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core.kube import NOT_FOUND

from . import lease, metrics
from .workqueue import PARK, Result

log = logging.getLogger(__name__)
CONFLICT = 409
LEASE_GROUP, LEASE_VERSION, LEASES = "coordination.k8s.io", "v1", "leases"


class NotLeader(Exception):
    """Raised by :meth:`LeaderElector.check` when this replica may not write."""


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_started_leading: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        on_resumed_leading: Callable[[], None] = lambda: None,
        on_lost_leading: Callable[[], None] = lambda: None,
    ) -> None:
        lease.check_timings(lease_duration, renew_deadline, retry_period)
        self._api = api
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self._duration = lease_duration
        self._deadline = renew_deadline
        self._period = retry_period
        self._on_started = on_started_leading  # a new term: look at everything
        self._on_resumed = on_resumed_leading  # the same term after a lapse: what was set aside
        self._on_lost = on_lost_leading  # another term: drop what was set aside
        self._clock = clock
        self._seen = lease.Observation()
        self._renewed_at: float | None = None
        self._standing = lease.Standing.STANDBY
        #: the record of the term this replica last wrote, and whether this round's read
        #: still showed it (``lease.same_term``; None: not read this round)
        self._term: lease.LeaseRecord | None = None
        self._kept: bool | None = None
        self._gap = False  # the last renewal began past the previous one's deadline
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ queries

    def is_leader(self) -> bool:
        return lease.leading(self._renewed_at, self._deadline, self._clock())

    def lapsed(self) -> bool:
        """Leading until a renewal came overdue (a slow or restarting API server), and not
        known to have lost the Lease: work refused now is parked, not dropped; a renewal of
        the same term queues it again (and only it: queueing everything again would put a
        fresh change behind every group), a lost term drops it."""
        return self._standing is not lease.Standing.STANDBY and not self.is_leader()

    def check(self) -> None:
        if not self.is_leader():
            raise NotLeader(self.identity)

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leader-election")

    async def stop(self, release: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if release and self.is_leader():
            with contextlib.suppress(Exception):  # an unreachable API server must not block the exit
                await asyncio.wait_for(self._release(), timeout=self._period)
        self._renewed_at = None
        self._kept = False  # released (or given up): the term is over
        self._transition()

    async def _run(self) -> None:
        while True:
            self._kept = None
            try:
                await self.try_acquire_or_renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # API server away: keep trying, leadership lapses by itself
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            self._transition()
            await asyncio.sleep(self._period)

    def _transition(self) -> None:
        leader = self.is_leader()
        metrics.LEADER.set(1 if leader else 0)
        self._standing, change = lease.step(self._standing, leader, self._kept, self._gap)
        self._gap = False
        where = f"{self.namespace}/{self.name}"
        if change is lease.Change.STARTED:
            log.info("became the leader (%s as %s)", where, self.identity)
            self._on_started()
        elif change is lease.Change.RESUMED:
            log.info("renewed the lease again, same term (%s): leading resumes", where)
            self._on_resumed()
        elif change is lease.Change.LAPSED:
            log.warning("lease renewal overdue (%s): not writing until it is renewed", where)
        elif change is lease.Change.LOST:
            log.warning("lost the leadership (%s)", where)
            self._on_lost()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's ``tryAcquireOrRenew``; True when this replica holds it."""
        started = self._clock()
        leases = client.CustomObjectsApi(self._api)
        try:
            live = await self._read(leases)
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise
            self._kept = False  # deleted: whatever term we held is over
            record = lease.claim(self.identity, self._duration, None, datetime.now(UTC))
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": record.to_spec(),
            }
            try:
                await leases.create_namespaced_custom_object(
                    LEASE_GROUP, LEASE_VERSION, self.namespace, LEASES, body
                )
            except ApiException as exc2:
                if exc2.status == CONFLICT:
                    return False  # another replica created it first
                raise
            return self._won(record, started)
        current = lease.LeaseRecord.from_spec(live.get("spec"))
        self._kept = lease.same_term(self._term, current)
        self._seen = self._seen.see(current, started)
        if not lease.may_take(self.identity, self._seen, started):
            return False
        record = lease.claim(self.identity, self._duration, current, datetime.now(UTC))
        try:
            await leases.replace_namespaced_custom_object(
                LEASE_GROUP, LEASE_VERSION, self.namespace, LEASES, self.name, self._body(live, record)
            )
        except ApiException as exc:
            if exc.status == CONFLICT:
                return False  # changed since we read it: someone else renewed or took it
            raise
        return self._won(record, started)

    def _won(self, record: lease.LeaseRecord, started: float) -> bool:
        self._gap = self._renewed_at is not None and not lease.leading(
            self._renewed_at, self._deadline, started
        )
        self._term = record
        self._seen = lease.Observation(record, started)
        self._renewed_at = started
        return True

    async def _read(self, leases: client.CustomObjectsApi) -> dict[str, Any]:
        """The Lease as JSON (its times exactly as the API server wrote them)."""
        data: dict[str, Any] = await leases.get_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, self.namespace, LEASES, self.name
        )
        return data

    def _body(self, live: dict[str, Any], record: lease.LeaseRecord) -> dict[str, Any]:
        """The update, conditional on the ``resourceVersion`` read (409 when it moved)."""
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": live["metadata"]["resourceVersion"],
            },
            "spec": record.to_spec(),
        }

    async def _release(self) -> None:
        leases = client.CustomObjectsApi(self._api)
        live = await self._read(leases)
        current = lease.LeaseRecord.from_spec(live.get("spec"))
        if current.holder != self.identity:
            return
        await leases.replace_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, self.namespace, LEASES, self.name,
            self._body(live, lease.released(current, datetime.now(UTC))),
        )  # fmt: skip
        log.info("released the lease %s/%s", self.namespace, self.name)


class Leadership(Protocol):
    """What the reconcilers need to know of the election (a fake in unit tests)."""

    def is_leader(self) -> bool: ...
    def lapsed(self) -> bool: ...
    def check(self) -> None: ...


def refused(leader: Leadership) -> Result:
    """What a reconcile turned away for want of the lead returns to its queue: ``PARK`` while
    the lead has lapsed (a renewal of the same term queues the key again), else nothing (a
    standby drops it: a takeover queues every key again)."""
    return PARK if leader.lapsed() else None


class AlwaysLeader:
    """A single replica with no election (tests, tools)."""

    def is_leader(self) -> bool:
        return True

    def lapsed(self) -> bool:
        return False

    def check(self) -> None:
        return None
