"""Naming this replica's writes in its workspace's status while its watch of their kind is
down (``scim_core.write_notes``): the operator, whose own watch of them is refused just as
long, reads what is named by name and reconciles it, instead of waiting for kube-apiserver to
rebuild its watch cache (about 100 s at 100,000 groups).

Only then: while a kind's watch is open (and ``grace`` seconds after it opened again) a write
costs nothing more. A request waits for the note of its write to be stored (so an answer that
says "done" means the operator can find it); the notes of concurrent writes in one workspace
share one status patch. A note that cannot be stored is logged, never an error to the IdP:
the write itself stands, and the operator's relist brings it anyway."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client

from scim_core import constants as c
from scim_core.informer import WatchHealth
from scim_core.kube import patch_status
from scim_core.timestamps import format_utc
from scim_core.write_notes import NOTED_KINDS, Note, appended, stale_replicas, status_patch

log = logging.getLogger(__name__)
#: Writes are still noted this long after the watch of their kind is open again: the
#: operator relists after the same restart and may not have reached them yet (its relist
#: of 100,000 groups takes 30-40 s).
GRACE_SECONDS = 60.0
#: A note not stored within this long is given up (the request it holds is answered).
STORE_TIMEOUT_SECONDS = 5.0
#: How often the notes of a replica whose watches are back are looked at for removal.
CLEAR_PERIOD_SECONDS = 5.0


def replica_name() -> str:
    """This process among the API's replicas: pod name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class WriteNoter:
    def __init__(
        self,
        api: client.ApiClient,
        health_of: Callable[[str], WatchHealth | None],
        workspace_of: Callable[[str], dict[str, Any] | None],
        replica: str | None = None,
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._health_of = health_of
        self._workspace_of = workspace_of
        self.replica = replica or replica_name()
        self._grace = grace
        self._clock = clock
        self._now = now
        self._notes: dict[str, list[Note]] = {}  # namespace -> this replica's notes
        self._recorded: dict[str, int] = defaultdict(int)  # notes taken, per namespace
        self._stored: dict[str, int] = defaultdict(int)  # of which stored (or given up)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._last_note = -math.inf

    def wanted(self, plural: str) -> bool:
        """Is this replica's watch of ``plural`` down, or back for less than the grace?"""
        health = self._health_of(plural)
        return plural in NOTED_KINDS and health is not None and health.unwatched(self._grace)

    async def wrote(
        self, namespace: str, plural: str, obj: dict[str, Any] | None, deleted: bool = False
    ) -> None:
        """``obj`` was just written (``deleted``: deleted): note it if the watch of ``plural``
        is down, and return once the note is stored (at once otherwise)."""
        if obj is None or not self.wanted(plural):
            return
        md = obj.get("metadata") or {}
        note = Note(
            plural,
            str(md.get("name")),
            str(md.get("resourceVersion") or ""),
            format_utc(self._now()),
            deleted,
        )
        self._notes[namespace] = appended(self._notes.get(namespace, ()), [note])
        self._recorded[namespace] += 1
        self._last_note = self._clock()
        await self._store_up_to(namespace, self._recorded[namespace])

    async def _store_up_to(self, namespace: str, wanted: int) -> None:
        """One status patch at a time per workspace: whoever takes the lock stores every note
        taken so far, so notes taken while a patch is in flight share the next one."""
        async with self._locks[namespace]:
            if self._stored[namespace] >= wanted:
                return
            taken = self._recorded[namespace]
            await self._patch(namespace, self._notes.get(namespace))
            self._stored[namespace] = taken

    async def _patch(self, namespace: str, notes: list[Note] | None) -> bool:
        """Set this replica's notes (None: remove them), and remove those other replicas
        left an hour ago or more (``write_notes.STALE_AFTER``)."""
        workspace = self._workspace_of(namespace)
        if workspace is None:
            log.warning("write notes: no workspace in %s to note writes in", namespace)
            return False
        name = workspace["metadata"]["name"]
        try:
            stale = stale_replicas(workspace.get("status"), self.replica, self._now())
            patch = status_patch(self.replica, notes, stale)
            write = patch_status(self._api, c.WORKSPACE_PLURAL, namespace, name, patch)
            await asyncio.wait_for(write, STORE_TIMEOUT_SECONDS)
        except Exception as exc:  # the write stands; the operator's relist brings it anyway
            log.warning("write notes of %s in %s/%s not stored: %s", self.replica, namespace, name, exc)
            return False
        return True

    async def clear(self) -> None:
        """Remove this replica's notes once every noted kind has been watched again for the
        grace and the last note is as old (the operator has had them long enough)."""
        if not self._notes or any(self.wanted(p) for p in NOTED_KINDS):
            return
        if self._clock() - self._last_note < self._grace:
            return
        for namespace in list(self._notes):
            async with self._locks[namespace]:
                if await self._patch(namespace, None):
                    self._notes.pop(namespace, None)

    async def run(self, period: float = CLEAR_PERIOD_SECONDS) -> None:
        while True:
            await asyncio.sleep(period)
            await self.clear()


async def note(
    noter: WriteNoter | None, namespace: str, plural: str, obj: dict[str, Any] | None, deleted: bool = False
) -> None:
    """``noter.wrote``, for a store that may have none (unit tests build stores bare)."""
    if noter is not None:
        await noter.wrote(namespace, plural, obj, deleted)
