"""The offboarding fast path. When a ScimUser changes or goes (deactivated, deleted, renamed),
every RoleBinding of their groups that names someone no longer granted loses that subject at
once: one guarded JSON patch per binding, all of them concurrently, before the groups'
reconciles run. Those reconciles come right after (this queues them) and converge to the same
state (they never re-add what the plan no longer grants); their status writes are what the
fast path keeps off the critical path.

Why: a user in 100 groups is named in 100 RoleBindings. Reconciled group by group (a
server-side apply of the binding, then a status write, four at a time) the last of them
lost the user about 1 s after the deactivation on a quiet machine; the removals alone,
concurrently, are the only writes a SubjectAccessReview waits for (docs/operator.md).

Correctness does not rest on it: the patches are guarded (a binding that changed meanwhile
is refused whole and left to the reconcile), only the leader writes, and whatever it did not
finish (an error, a lost Lease, a restart) the groups' reconciles do, on this leader or the next
(``requeue_all`` on takeover)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from scim_core import constants as c

from . import metrics
from .cache import ClusterCache, GroupKey
from .events import EventPoster
from .leader import Leadership, NotLeader
from .planning import plan_cached_group
from .rbac import revocations
from .settings import OperatorSettings
from .workqueue import Result

log = logging.getLogger(__name__)
UserKey = tuple[str, str]
#: Binding patches in flight at once: the Revoker's own connection pool (``app.build``). 100 JSON
#: patches took 0.75 s with 100 in flight, 1.0-1.5 s with 32 and 1.0-1.3 s with 4 (docs/benchmarks.md).
REVOKE_CONCURRENCY = 64
#: While leading, every connection of that pool carries a request this often, so that none is
#: idle long enough to be closed (the API server closes one idle for 90 s; the pool's own
#: keep-alive is WARM_KEEPALIVE_SECONDS): an offboarding finds them all open. Opened then,
#: 55 connections cost a TLS handshake each, on the event loop, before the first patch was
#: answered: 62 % of the loop's samples, 0.5-0.9 s (docs/benchmarks.md "Offboarding profile").
WARM_SECONDS = 60.0
WARM_KEEPALIVE_SECONDS = 2 * WARM_SECONDS
#: A patch taking longer is abandoned (the reconcile that follows does the work).
PATCH_TIMEOUT_SECONDS = 10
#: The patch was refused as a whole: the binding is gone (404), changed since the cache read
#: it (422, a failed ``test``) or conflicted (409). The group's reconcile follows anyway.
SUPERSEDED = (404, 409, 422)


class Revoker:
    def __init__(
        self,
        api: client.ApiClient,
        settings: OperatorSettings,
        cache: ClusterCache,
        leader: Leadership,
        requeue: Callable[[GroupKey], None],
        concurrency: int = REVOKE_CONCURRENCY,
        events: EventPoster | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.cache = cache
        self.leader = leader
        self.requeue = requeue  # the groups queue's ``add``
        #: its ``AccessRevoked`` Events, in the background, bounded with the GroupSync's
        self.events = events if events is not None else EventPoster(api, leader=leader)
        self._concurrency = concurrency
        self._limit = asyncio.Semaphore(concurrency)
        self._warmed_at: float | None = None  # while leading: the pool's last warm-up
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no revocation's patches are in flight (group and user reconciles wait
        for this). Only while patches are in flight: a user change that removes nobody holds
        nothing, so a stream of such changes cannot starve them."""
        await self._idle.wait()

    async def keep_warm(self, period: float = WARM_SECONDS, check_seconds: float = 1.0) -> None:
        """Run for the operator's life: as soon as this replica leads, and every ``period``
        while it does, warm the pool (:meth:`warm`). A standby keeps no connection open."""
        while True:
            if not self.leader.is_leader():
                self._warmed_at = None
            elif self._warmed_at is None or time.monotonic() - self._warmed_at >= period:
                self._warmed_at = time.monotonic()
                try:
                    await self.warm()
                except Exception as exc:  # the next offboarding opens what it needs
                    log.warning("could not warm the revocation pool: %r", exc)
            await asyncio.sleep(check_seconds)

    async def warm(self) -> None:
        """One small request (``GET /version``) on each connection of the pool at once:
        opens those that are not open, and keeps the others from idling out."""
        await asyncio.gather(*(self._touch() for _ in range(self._concurrency)))

    async def _touch(self) -> None:
        async with self._limit:
            response = await client.VersionApi(self.api).get_code(
                _request_timeout=PATCH_TIMEOUT_SECONDS, _preload_content=False
            )
            response = response[0] if isinstance(response, tuple) else response
            response.release()

    async def revoke(self, user: UserKey) -> Result:
        """Remove from the user's groups' bindings whoever they no longer grant, then queue
        those groups. On a standby, or before the cache is complete, only the queueing."""
        namespace, name = user
        groups = sorted((namespace, g) for g in self.cache.groups_of(user))
        started = time.monotonic()
        try:
            if self.cache.ready and self.leader.is_leader():
                removed = await self._revoke(groups)
                if removed:
                    log.info("revoked: %s/%s, %d RoleBindings of %d groups patched in %.3f s", namespace,
                             name, removed, len(groups), time.monotonic() - started)  # fmt: skip
                    self._event(user, removed)
        except Exception:
            log.exception("revocation fast path for %s/%s failed; the reconciles follow", namespace, name)
        finally:
            for key in groups:
                self.requeue(key)
        return None

    async def _revoke(self, groups: list[GroupKey]) -> int:
        """Plan group by group and send each group's removals at once: the API server takes
        them while the next group is planned (planning 100 groups took 0.05-0.18 s at load 12)."""
        sent: list[asyncio.Task[bool]] = []
        try:
            for key in groups:
                group = self.cache.groups.get(key)
                if group is None or group["metadata"].get("deletionTimestamp"):
                    continue  # its reconcile deletes its bindings
                _, plan = plan_cached_group(self.cache, self.settings, key, group)
                for ns, name, ops in revocations(plan, self.cache.bindings.get(key, {})):
                    if not sent:  # reconciles wait from the first patch on (``wait_idle``)
                        self._running += 1
                        self._idle.clear()
                    sent.append(asyncio.create_task(self._patch(ns, name, ops)))
                await asyncio.sleep(0)  # those patches go out now
        finally:  # even if planning failed: what was sent is awaited before reconciles go on
            done = await asyncio.gather(*sent, return_exceptions=True)
            if sent:
                self._running -= 1
                if not self._running:
                    self._idle.set()
        log.debug("revocation: %d patches for %d groups", len(sent), len(groups))
        for outcome in done:
            if isinstance(outcome, BaseException) and not isinstance(outcome, NotLeader):
                log.warning("a revocation patch failed (the reconcile follows): %r", outcome)
        return sum(1 for outcome in done if outcome is True)

    async def _patch(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool:
        """One guarded removal; False when the API server refused it as superseded. The
        answer is not decoded into the client's models (a RoleBinding with its managedFields:
        that was a good part of the operator's CPU per write, on the critical path)."""
        async with self._limit:
            self.leader.check()
            response = await client.RbacAuthorizationV1Api(self.api).patch_namespaced_role_binding(
                name, namespace, ops, field_manager=c.OPERATOR_FIELD_MANAGER,
                _content_type="application/json-patch+json", _request_timeout=PATCH_TIMEOUT_SECONDS,
                _preload_content=False,
            )  # fmt: skip
            response = response[0] if isinstance(response, tuple) else response
            status = int(response.status)
            response.release()
        if status in SUPERSEDED:
            return False
        if not 200 <= status < 300:
            raise RuntimeError(f"patch of RoleBinding {namespace}/{name}: HTTP {status}")
        metrics.WRITES.labels("revoked").inc()
        return True

    def _event(self, user: UserKey, removed: int) -> None:
        obj = self.cache.users.get(user)
        if obj is None:
            return  # deleted: no object to attach an Event to
        md = obj["metadata"]
        involved = {
            "apiVersion": c.API_VERSION,
            "kind": c.USER_KIND,
            "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md.get("uid")},
        }
        message = f"Removed from {removed} RoleBindings"
        self.events.post(involved, "Normal", "AccessRevoked", message)
