"""The composition root: every collaborator of the operator is built here, once, by
constructor injection, in the order it is read. Nothing is patched after construction and
nothing is read from the environment outside ``main.py``.

    settings ─► ApiClient ─► work queues ─► ClusterCache (feeds the queues)
             ─► LeaderElector (Lease; a new term: cache.requeue_all; the same term
                after a lapse: the keys parked meanwhile; a lost term: those dropped)
             ─► Revoker (offboarding fast path, fed by the cache through its own queue)
             ─► GroupSync (waits while the Revoker writes) / UserSync / WorkspaceSync
             ─► informers (cache, token Secrets by label) ─► Kopf (login, liveness)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import kopf
import prometheus_client
from kubernetes_asyncio import client

from scim_core import constants as c
from scim_core.cached_status import pack_status
from scim_core.informer import Informer
from scim_core.kube import api_client, read_object
from scim_core.write_notes import NOTED_KINDS

from . import metrics
from .cache import BINDINGS, NAMESPACES, ClusterCache, GroupKey
from .events import EventPoster, event_limiter
from .group_sync import GroupSync
from .handlers import build_registry, kopf_settings
from .leader import LeaderElector
from .noted_writes import NotedWrites
from .revocation import REVOKE_CONCURRENCY, WARM_KEEPALIVE_SECONDS, Revoker
from .settings import OperatorSettings
from .token_secrets import TokenSecretEvents, token_secret_informer
from .user_sync import UserKey, UserSync
from .workqueue import WorkQueue
from .workspace_sync import WorkspaceKey, WorkspaceSync

log = logging.getLogger(__name__)
#: On stop, Events still queued get this long to be posted (they are best-effort).
EVENTS_GRACE_SECONDS = 2.0


def cluster_informers(api: client.ApiClient, cache: ClusterCache) -> list[Informer]:
    """Everything the cache holds: our four kinds, namespace labels, managed RoleBindings.
    A user's and a group's status is kept packed (read only by its own reconcile:
    ``scim_core.cached_status``); a relist keeps the cached copy of what did not change and
    lands its changes page by page (``ClusterCache.listing``)."""
    managed = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}"
    kept, listing = cache.kept, cache.listing
    return [
        Informer(api, c.WORKSPACE_PLURAL, cache, kept=kept, listing=listing),
        Informer(api, c.USER_PLURAL, cache, transform=pack_status, kept=kept, listing=listing),
        Informer(api, c.GROUP_PLURAL, cache, transform=pack_status, kept=kept, listing=listing),
        Informer(api, c.SHARD_PLURAL, cache, kept=kept, listing=listing),
        Informer(api, NAMESPACES, cache, path="/api/v1/namespaces", listing=listing),
        Informer(api, BINDINGS, cache, path="/apis/rbac.authorization.k8s.io/v1/rolebindings",
                 label_selector=managed, kept=kept, listing=listing),
    ]  # fmt: skip


def follow_notes(api: client.ApiClient, cache: ClusterCache, informers: list[Informer]) -> NotedWrites:
    """What the API wrote while a watch was down, read by name into ``cache`` as each
    workspace brings its notes (``noted_writes``), kept as ``informers`` keep their kinds."""
    decoders = {i.plural: i.decode for i in informers if i.plural in NOTED_KINDS}
    noted = NotedWrites(cache, functools.partial(read_object, api), decoders)
    cache.on_notes = noted.seen
    return noted


@dataclass
class Operator:
    settings: OperatorSettings
    api: client.ApiClient
    leader: LeaderElector
    cache: ClusterCache
    groups: WorkQueue[GroupKey]
    revocations: WorkQueue[UserKey]
    users: WorkQueue[UserKey]
    workspaces: WorkQueue[WorkspaceKey]
    group_sync: GroupSync
    revoker: Revoker
    user_sync: UserSync
    workspace_sync: WorkspaceSync
    informers: list[Informer]
    events: EventPoster
    noted: NotedWrites
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self.groups.start(self.group_sync.reconcile)
        self.revocations.start(self.revoker.revoke)
        self.users.start(self.user_sync.reconcile)
        self.workspaces.start(self.workspace_sync.reconcile)
        self.leader.start()
        self._tasks.append(asyncio.create_task(self.revoker.keep_warm(), name="revocation-warm"))
        self._tasks.append(asyncio.create_task(self._resync_workspaces(), name="workspace-resync"))
        if self.settings.metrics_port:
            try:
                prometheus_client.start_http_server(self.settings.metrics_port)
            except OSError as exc:
                log.warning("metrics port %s unavailable: %s", self.settings.metrics_port, exc)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in (self.revocations, self.groups, self.users, self.workspaces):
            await queue.stop()
        await self.events.limiter.close(grace=EVENTS_GRACE_SECONDS)  # the last writes' Events
        await self.leader.stop(release=True)  # after the workers: nothing writes past the release
        for informer in self.informers:
            await informer.stop()
        await self.noted.stop()
        await self.api.close()
        await self.revoker.api.close()

    async def _resync_workspaces(self) -> None:
        """Token expiry and rotation are due by the clock, not by an event: the leader looks
        at every workspace each ``workspace_resync_seconds``. A standby queues nothing."""
        while True:
            await asyncio.sleep(self.settings.workspace_resync_seconds)
            if self.leader.is_leader():
                for key in self.cache.workspace_keys():
                    self.workspaces.add(key)
            else:  # values from an earlier leadership would be stale: only the leader reports
                metrics.TOKEN_EXPIRY_SERIES.clear_all()
                metrics.WORKSPACE_CONDITION_SERIES.clear_all()


async def build(settings: OperatorSettings) -> Operator:
    api = await api_client(user_agent=f"scim-operator/{settings.identity}")
    groups: WorkQueue[GroupKey] = WorkQueue(
        "groups",
        workers=settings.group_workers,
        retries=metrics.QUEUE_RETRIES.labels("groups"),
        depth=metrics.QUEUE_DEPTH,
    )
    revocations: WorkQueue[UserKey] = WorkQueue(
        "revocations", workers=2, retries=metrics.QUEUE_RETRIES.labels("revocations")
    )
    users: WorkQueue[UserKey] = WorkQueue(
        "users",
        workers=settings.user_workers,
        retries=metrics.QUEUE_RETRIES.labels("users"),
        depth=metrics.USER_QUEUE_DEPTH,
    )
    workspaces: WorkQueue[WorkspaceKey] = WorkQueue(
        "workspaces", workers=2, retries=metrics.QUEUE_RETRIES.labels("workspaces")
    )
    cache = ClusterCache(
        on_change=groups.add,
        on_user_change=users.add,
        on_workspace_change=workspaces.add,
        on_revoke=revocations.add,
    )
    queues = (groups, revocations, users, workspaces)

    def started() -> None:
        for queue in queues:
            queue.drop_parked()  # everything is queued again
        cache.requeue_all()

    def resumed() -> None:
        parked = sum(queue.unpark() for queue in queues)
        log.info("leading resumed: %d keys set aside during the lapse queued again", parked)

    def lost() -> None:
        for queue in queues:
            queue.drop_parked()

    leader = LeaderElector(
        api,
        name=settings.lease_name,
        namespace=settings.lease_namespace,
        identity=settings.identity,
        lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline,
        retry_period=settings.retry_period,
        on_started_leading=started,
        on_resumed_leading=resumed,
        on_lost_leading=lost,
    )
    informers = [
        *cluster_informers(api, cache),
        token_secret_informer(api, TokenSecretEvents(workspaces.add)),
    ]
    noted = follow_notes(api, cache, informers)
    events = EventPoster(api, event_limiter(), leader=leader)  # one limiter for all the operator's Events
    # The offboarding fast path's own pool, kept open while leading (``Revoker.keep_warm``):
    # its patches neither wait for connections to open nor for the informers' and reconciles'.
    revocation_api = await api_client(
        user_agent=f"scim-operator/{settings.identity}",
        pool_size=REVOKE_CONCURRENCY,
        keepalive=WARM_KEEPALIVE_SECONDS,
    )
    revoker = Revoker(revocation_api, settings, cache, leader, requeue=groups.add, events=events)
    return Operator(
        settings=settings,
        api=api,
        leader=leader,
        cache=cache,
        groups=groups,
        revocations=revocations,
        users=users,
        workspaces=workspaces,
        group_sync=GroupSync(api, settings, cache, leader, hold=revoker.wait_idle, events=events),
        revoker=revoker,
        user_sync=UserSync(api, cache, leader, hold=revoker.wait_idle),
        workspace_sync=WorkspaceSync(
            api, cache, leader, idp_silence=timedelta(seconds=settings.idp_silence_seconds), events=events
        ),
        informers=informers,
        events=events,
        noted=noted,
    )


async def run(
    settings: OperatorSettings,
    liveness: str | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Build the operator, start it, and serve Kopf's part until stopped."""
    operator = await build(settings)
    await operator.start()
    try:
        await kopf.operator(
            registry=build_registry(),
            settings=kopf_settings(),
            standalone=True,  # leadership is the Lease (see docs/operator.md), not Kopf's peering
            clusterwide=True,
            liveness_endpoint=liveness,
            stop_flag=stop_flag,
        )
    finally:
        with contextlib.suppress(Exception):
            await operator.stop()
