"""Write notes: the objects an API replica wrote while its watch of their kind was down.

After an API-server restart, kube-apiserver refuses every watch of a kind (429) until it has
rebuilt that kind's watch cache from etcd: about 9 s at 10,000 groups, about 100 s at 100,000
(docs/benchmarks.md). No watcher hears of a write in that window, so the operator could not
reconcile it (or take access away) until then. A workspace is one small object whose cache is
rebuilt in a moment, and the operator watches it: the API names each object it writes in that
window in its workspace's status (``status.unwatchedWrites``: replica -> notes), and the
operator reads those objects by name (a read by name is served from etcd, never from the
watch cache). Pure: the shape of the notes and the rules both sides share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import constants as c
from .timestamps import parse_time

#: The workspace status field: API replica -> its notes, newest last.
FIELD = "unwatchedWrites"
#: Notes one replica keeps (the oldest go first): 256 notes are about 25 KB of status.
LIMIT = 256
#: Another replica's notes are removed (by whichever replica next stores its own) once its
#: newest is this old: a replica that stopped, or was killed, inside an outage leaves them.
STALE_AFTER = timedelta(hours=1)
#: The kinds a note may name (plural -> kind): what the API writes and the operator reconciles.
NOTED_KINDS = {c.GROUP_PLURAL: c.GROUP_KIND, c.SHARD_PLURAL: c.SHARD_KIND, c.USER_PLURAL: c.USER_KIND}


@dataclass(frozen=True)
class Note:
    """One object written: its kind (plural), name, the resourceVersion written, and when
    (``timestamps.UTC_FORMAT``). ``deleted``: the write was its deletion, whose answer carries
    the version the object had before (the same version a note of its last change named, so
    without the mark a reader holding that version would take the deletion as read)."""

    plural: str
    name: str
    resource_version: str
    time: str = ""
    deleted: bool = False

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.plural,
            "name": self.name,
            "resourceVersion": self.resource_version,
            "time": self.time,
        }
        if self.deleted:
            out["deleted"] = True
        return out


def appended(notes: Iterable[Note], new: Iterable[Note], limit: int = LIMIT) -> list[Note]:
    """``notes`` then ``new``, one note per object (its latest write), the last ``limit``."""
    latest: dict[tuple[str, str], Note] = {}
    for note in (*notes, *new):
        latest.pop((note.plural, note.name), None)  # re-inserted last: newest last
        latest[(note.plural, note.name)] = note
    return list(latest.values())[-limit:]


def notes_in(status: Mapping[str, Any] | None) -> list[Note]:
    """Every replica's notes in a workspace status (malformed entries skipped)."""
    out: list[Note] = []
    by_replica = (status or {}).get(FIELD) or {}
    if not isinstance(by_replica, Mapping):
        return out
    for entries in by_replica.values():
        for e in entries if isinstance(entries, list) else ():
            if isinstance(e, Mapping) and e.get("kind") in NOTED_KINDS and e.get("name"):
                version, time = str(e.get("resourceVersion") or ""), str(e.get("time") or "")
                out.append(Note(str(e["kind"]), str(e["name"]), version, time, e.get("deleted") is True))
    return out


def stale_replicas(status: Mapping[str, Any] | None, own: str, now: datetime) -> list[str]:
    """The other replicas whose newest note is ``STALE_AFTER`` old (or has no time)."""
    by_replica = (status or {}).get(FIELD) or {}
    if not isinstance(by_replica, Mapping):
        return []
    stale = []
    for replica, entries in by_replica.items():
        times = [parse_time(str(e.get("time") or "")) for e in entries or () if isinstance(e, Mapping)]
        newest = max((t for t in times if t is not None), default=None)
        if replica != own and (newest is None or now - newest >= STALE_AFTER):
            stale.append(str(replica))
    return stale


def status_patch(replica: str, notes: list[Note] | None, stale: Iterable[str] = ()) -> dict[str, Any]:
    """The status merge patch that sets (or, with None, removes) ``replica``'s notes, removes
    the ``stale`` replicas' and leaves every other replica's alone."""
    patch: dict[str, Any] = {r: None for r in stale}
    patch[replica] = None if notes is None else [n.entry() for n in notes]
    return {FIELD: patch}


def older(version: str | None, than: str | None) -> bool:
    """Is ``version`` strictly older than ``than``? Both must be numbers (etcd's revisions,
    as every resourceVersion here is); anything else is never called older."""
    if not version or not than or not version.isdigit() or not than.isdigit():
        return False
    return int(version) < int(than)
