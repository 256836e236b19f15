"""Following the API's write notes (``scim_core.write_notes``): the objects an API replica
wrote while its watch of them was down, named in their workspace's status.

kube-apiserver refuses every watch of a kind while it rebuilds that kind's watch cache after
a restart (about 100 s at 100,000 groups), the operator's included; the workspaces' cache is
back in a moment. Each object a note names is read by name (served from etcd) and handed to
the cache as its watch would have delivered it, so its reconcile, or the offboarding fast
path, runs within a second or two of the write instead of after the rebuild and a relist.
The cache ignores a version older than one read from a note (``ClusterCache._outdated``): the watch
and the relist that come later cannot take it back.

Both replicas follow the notes (a standby keeps its cache as current as the leader's); only
the leader writes, as for any change the cache hears of."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from scim_core.write_notes import NOTED_KINDS, Note, notes_in, older

from .cache import ClusterCache

log = logging.getLogger(__name__)
Obj = dict[str, Any]
#: Reads by name at once, at most (a replica's notes are up to 256 objects).
CONCURRENCY = 16
#: Tries of a read by name (the API server may shed load: 429), 0.2 s apart doubling.
READ_TRIES = 5
RETRY_SECONDS = 0.2
#: Notes remembered as followed (the oldest forgotten first: a note seen again is read again).
REMEMBERED = 20_000

Reader = Callable[[str, str, str], Awaitable[Obj | None]]
Decoders = Mapping[str, Callable[[Obj], Obj]]


class NotedWrites:
    def __init__(
        self, cache: ClusterCache, read: Reader, decoders: Mapping[str, Callable[[Obj], Obj]]
    ) -> None:
        """``read(plural, namespace, name)``: the object as stored now, None when absent;
        ``decoders[plural]``: what the cache keeps of it (its informer's ``decode``)."""
        self._cache = cache
        self._read = read
        self._decoders = decoders
        self._followed: dict[tuple[str, str, str], tuple[str, bool]] = {}
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, workspace: Obj) -> None:
        """A workspace arrived: follow each note in its status not followed yet."""
        md = workspace["metadata"]
        namespace, deleted_by = md.get("namespace", ""), str(md.get("resourceVersion") or "")
        for note in notes_in(workspace.get("status")):
            key = (note.plural, namespace, note.name)
            followed = (note.resource_version, note.deleted)
            if self._followed.get(key) == followed or self._holds(namespace, note):
                continue
            if len(self._followed) >= REMEMBERED:
                self._followed.pop(next(iter(self._followed)))
            self._followed[key] = followed
            task = asyncio.create_task(self._follow(namespace, note, deleted_by), name=f"note-{note.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _cached(self, namespace: str, note: Note) -> tuple[Obj | None, str]:
        """The cached copy of the noted object and its version (shards: never found here,
        their key needs their group)."""
        cached = self._cache.kept(note.plural, {"metadata": {"namespace": namespace, "name": note.name}})
        return cached, "" if cached is None else str(cached["metadata"].get("resourceVersion") or "")

    def _holds(self, namespace: str, note: Note) -> bool:
        """The cache has the noted version already, or a later one (never for a deletion: it
        names the version before it, which the cache may hold)."""
        if note.deleted:
            return False
        cached, version = self._cached(namespace, note)
        noted = note.resource_version
        return cached is not None and (version == noted or older(noted, version))

    async def _follow(self, namespace: str, note: Note, deleted_by: str) -> None:
        """Read the noted object; the cache takes it, or forgets it when it is gone (the note,
        in a workspace at ``deleted_by``, was written after the deletion)."""
        for attempt in range(READ_TRIES):
            try:
                async with self._limit:
                    obj = await self._read(note.plural, namespace, note.name)
                break
            except Exception as exc:  # the watch and relist bring it anyway; a later note retries
                if attempt == READ_TRIES - 1:
                    self._followed.pop((note.plural, namespace, note.name), None)
                    log.warning("write note %s %s/%s not read: %s", note.plural, namespace, note.name, exc)
                    return
                await asyncio.sleep(RETRY_SECONDS * 2**attempt)
        if obj is None:  # gone; unless what is cached is newer than the note (made again since)
            cached, version = self._cached(namespace, note)
            if cached is not None and not older(deleted_by, version):
                self._cache.forget(note.plural, cached, deleted_by)
            return
        obj.setdefault("kind", NOTED_KINDS[note.plural])  # a list's items carry no kind
        self._cache.upsert_ahead(note.plural, self._decoders[note.plural](obj))
        log.info(
            "write note followed: %s %s/%s at %s", note.plural, namespace, note.name, note.resource_version
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
