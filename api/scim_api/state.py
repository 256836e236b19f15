"""What one API process holds: settings, the Kubernetes client and the watch-fed directory."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client

from scim_core import constants as c
from scim_core.cached_status import drop_status
from scim_core.informer import Informer, WatchHealth

from .config import ApiSettings
from .directory import Directory
from .group_commit import GroupCommit
from .ratelimit import RateLimiter
from .write_noter import WriteNoter

#: Every kind the API serves from its cache: a replica must see all of them, including the
#: member shards other replicas wrote, or it answers from half a picture.
WATCHED = (c.WORKSPACE_PLURAL, c.GROUP_PLURAL, c.SHARD_PLURAL, c.USER_PLURAL)
#: The operator's status of a group or user is never served over SCIM: dropped as each object
#: is decoded, so a list of 100,000 never holds them all (a workspace's is read: token hashes).
STATUS_DROPPED = {c.GROUP_PLURAL: drop_status, c.USER_PLURAL: drop_status}


@dataclass
class ApiState:
    settings: ApiSettings
    directory: Directory = field(default_factory=Directory)
    api: client.ApiClient | None = None
    informers: list[Informer] = field(default_factory=list)
    limiter: RateLimiter = field(init=False)
    #: Concurrent writes to one group share one API-server write (see group_commit.py).
    group_commits: GroupCommit[tuple[dict[str, Any], bool]] = field(default_factory=GroupCommit)
    #: Names writes for the operator while a watch is down (built by ``start``).
    noter: WriteNoter | None = None
    _noter_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_per_second, self.settings.rate_burst)

    @property
    def started(self) -> bool:
        return self.api is not None

    def not_ready(self) -> str | None:
        """Why this replica must not serve (None when it may): a cache not yet synced, or a
        watch unheard for longer than ``max_watch_staleness`` (a revoked token may then still
        look valid here)."""
        if not self.informers or not all(i.synced.is_set() for i in self.informers):
            return "cache not synced"
        limit = self.settings.max_watch_staleness
        for informer in self.informers:
            silent = informer.health.silent_for()
            if silent > limit:
                return f"watch on {informer.plural} unheard for {silent:.0f}s (limit {limit:g}s)"
        return None

    def ready(self) -> bool:
        return self.not_ready() is None

    async def start(self, api: client.ApiClient) -> None:
        self.api = api
        # a healthy watch is ended by the server and re-opened well within the staleness limit
        watch_timeout = max(1, int(self.settings.max_watch_staleness / 3))
        for plural in WATCHED:
            informer = Informer(
                api, plural, self.directory, watch_timeout=watch_timeout, held=self.directory.holds,
                transform=STATUS_DROPPED.get(plural), kept=self.directory.kept,
                listing=self.directory.listing,
            )  # fmt: skip
            informer.start()
            self.informers.append(informer)
        self.noter = WriteNoter(api, self._watch_health, self.directory.workspace_in)
        self._noter_task = asyncio.create_task(self.noter.run(), name="write-notes")

    def _watch_health(self, plural: str) -> WatchHealth | None:
        return next((i.health for i in self.informers if i.plural == plural), None)

    async def stop(self) -> None:
        if self._noter_task is not None:
            self._noter_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._noter_task
        for informer in self.informers:
            await informer.stop()
        if self.api is not None:
            await self.api.close()
