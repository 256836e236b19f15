"""The API's in-memory view of the cluster: workspaces by token hash, and per workspace
namespace its groups and users with the indexes the SCIM filters need.

Fed by informers (watch events) and by the API's own writes (read-your-writes); an
object never goes back to an older resourceVersion.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scim_core import constants as c
from scim_core.listing import Collected, Listing
from scim_core.member_index import NO_MEMBERS, MemberIndex, member_values
from scim_core.members import assemble_members, shard_order
from scim_core.timestamps import parse_time

Obj = dict[str, Any]


def resource_version(obj: Obj) -> int:
    """An object's resourceVersion as a number (etcd revisions are), 0 when absent."""
    return _rv(obj)


def _rv(obj: Obj) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return 0


def _add(index: dict[str, str | set[str]], key: str, oid: str) -> None:
    """``oid`` holds ``key`` in ``index`` (see ``Table.index``)."""
    bucket = index.get(key)
    if bucket is None:
        index[key] = oid
    elif isinstance(bucket, set):
        bucket.add(oid)
    elif bucket != oid:
        index[key] = {bucket, oid}


@dataclass
class Table:
    """Objects of one kind in one namespace, with case-insensitive attribute indexes."""

    indexed: tuple[str, ...]
    track_members: bool = False
    #: id -> resourceVersion at which this replica deleted it (late older events are ignored)
    tombstones: dict[str, int] = field(default_factory=dict)
    by_id: dict[str, Obj] = field(default_factory=dict)
    #: member value -> ids of the groups listing it (for a User's ``groups``), each with how
    #: many of the group's objects (the group, its shards) list it: a member moving between
    #: two of them is linked by one event and unlinked by the other, in either order, and
    #: must stay indexed (a plain set lost it when the gain came first). Shared with the
    #: operator's cache (``scim_core.member_index``).
    member_of: MemberIndex = field(default_factory=MemberIndex)
    ids: list[str] = field(default_factory=list)  # sorted: the stable listing order
    #: attribute -> lowercased value -> the id holding it, or a set when several do (most
    #: values are unique: a set per value would cost 200 bytes each, 60 MB at 100,000 groups)
    index: dict[str, dict[str, str | set[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {attr: {} for attr in self.indexed}

    def _keys(self, obj: Obj) -> dict[str, str]:
        spec = obj.get("spec") or {}
        return {a: str(spec[a]).lower() for a in self.indexed if spec.get(a) is not None}

    def put(self, obj: Obj) -> None:
        if "status" in obj:  # the operator's status is never served over SCIM: not kept
            obj = {k: v for k, v in obj.items() if k != "status"}
        oid = obj["metadata"]["name"]
        if obj["metadata"].get("deletionTimestamp"):
            self.remove(oid)  # being deleted (finalizer pending): gone for SCIM
            return
        if _rv(obj) <= self.tombstones.get(oid, -1):
            return  # an event from before our own delete arrived late: do not resurrect
        old = self.by_id.get(oid)
        if old is not None:
            if _rv(obj) < _rv(old):
                return
            self._unindex(oid, old)
            if self.track_members:  # only the members that changed (see ``MemberIndex``)
                self.member_of.move(oid, member_values(old), member_values(obj))
        else:
            bisect.insort(self.ids, oid)
        self.by_id[oid] = obj
        for attr, key in self._keys(obj).items():
            _add(self.index[attr], key, oid)
        if self.track_members and old is None:
            self.member_of.move(oid, NO_MEMBERS, member_values(obj))

    def fill(self, objects: Iterable[Obj]) -> None:
        """Load a whole list into this new table (``load`` then ``loaded``)."""
        if self.by_id:
            raise ValueError("fill needs an empty table")
        self.load(objects)
        self.loaded()

    def load(self, objects: Iterable[Obj]) -> None:
        """Part of a list into this table while it is being built (not served yet), one page
        at a time as the pages arrive: what ``put`` of each object gives, but without a sorted
        insert per object (``loaded`` sorts the ids once) and with each index added to in one
        loop per page (the start of an API over 100,000 groups: no per-object checks a new
        table cannot fail). A name listed twice or an object being deleted (never both in one
        list from the API server) takes ``put``'s own path."""
        by_id = self.by_id
        new: list[tuple[str, Obj]] = []
        for obj in objects:
            metadata = obj["metadata"]
            oid = metadata["name"]
            if oid in by_id or metadata.get("deletionTimestamp"):
                self._index_new(new)  # what came before it indexed first, as ``put`` would have
                new = []
                self.put(obj)  # its sorted insert into ``ids`` is redone by ``loaded``
                continue
            if "status" in obj:  # the operator's status is never served over SCIM: not kept
                obj = {k: v for k, v in obj.items() if k != "status"}
            by_id[oid] = obj
            new.append((oid, obj))
        self._index_new(new)

    def _index_new(self, new: list[tuple[str, Obj]]) -> None:
        """Objects just added to ``by_id`` (none of them there before) added to the indexes."""
        for attr in self.indexed:
            attr_index = self.index[attr]
            for oid, obj in new:
                value = (obj.get("spec") or {}).get(attr)
                if value is not None:
                    _add(attr_index, str(value).lower(), oid)
        if self.track_members:
            self.member_of.fill((oid, member_values(obj)) for oid, obj in new)

    def loaded(self) -> Table:
        """The table complete: its listing order sorted once."""
        self.ids = sorted(self.by_id)
        return self

    def forget(self, oid: str, resource_version: int) -> None:
        """Our own delete: drop it now and ignore any older event still on its way."""
        if len(self.tombstones) > 10_000:
            self.tombstones.clear()
        self.tombstones[oid] = resource_version
        self.remove(oid)

    def remove(self, oid: str) -> None:
        old = self.by_id.pop(oid, None)
        if old is None:
            return
        self._unindex(oid, old)
        if self.track_members:
            self.member_of.move(oid, member_values(old), NO_MEMBERS)
        pos = bisect.bisect_left(self.ids, oid)
        if pos < len(self.ids) and self.ids[pos] == oid:
            del self.ids[pos]

    def _unindex(self, oid: str, old: Obj) -> None:
        for attr, key in self._keys(old).items():
            bucket = self.index[attr].get(key)
            if bucket == oid:
                del self.index[attr][key]
            elif isinstance(bucket, set):
                bucket.discard(oid)
                if len(bucket) == 1:
                    self.index[attr][key] = next(iter(bucket))

    def lookup(self, attr: str, value: str) -> set[str]:
        bucket = self.index[attr].get(value.lower())
        if bucket is None:
            return set()
        return {bucket} if isinstance(bucket, str) else set(bucket)


@dataclass(frozen=True)
class WorkspaceRef:
    namespace: str
    name: str


#: The kinds kept in per-namespace tables (indexed, loaded page by page).
TABLE_KINDS = (c.GROUP_PLURAL, c.USER_PLURAL)


class Directory:
    """Everything the API reads, kept in step with the cluster."""

    GROUP_INDEXES = ("displayName", "externalId")
    USER_INDEXES = ("userName", "externalId")

    def __init__(self) -> None:
        self.workspaces: dict[tuple[str, str], Obj] = {}
        self._tokens: dict[str, tuple[WorkspaceRef, datetime]] = {}
        self.groups: dict[str, Table] = {}
        self.users: dict[str, Table] = {}
        #: namespace -> group id -> shard name -> ScimMemberShard
        self.shards: dict[str, dict[str, dict[str, Obj]]] = {}

    # ------------------------------------------------------------------ sink for informers

    def replace_all(self, plural: str, objects: list[Obj]) -> None:
        if plural in TABLE_KINDS:
            listing = _TablesListing(self, plural)
            listing.add(objects)
            listing.done()
        elif plural == c.SHARD_PLURAL:
            for ns_shards in self.shards.values():
                for by_name in ns_shards.values():
                    for shard in list(by_name.values()):
                        self._shard_members(shard, add=False)
            self.shards = {}
            for obj in objects:
                self.upsert(plural, obj)
        elif plural == c.WORKSPACE_PLURAL:
            self.workspaces = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
            self._rebuild_tokens()

    def listing(self, plural: str) -> Listing:
        """A list of ``plural`` received page by page (``Informer(listing=…)``): groups and
        users are loaded into new tables as the pages arrive, which replace the old ones when
        it is done; the few shards and workspaces are replaced at once."""
        if plural in TABLE_KINDS:
            return _TablesListing(self, plural)
        return Collected(self, plural)

    def replace_tables(self, plural: str, tables: dict[str, Table]) -> None:
        """The group or user tables, one per namespace, replaced by new complete ones."""
        if plural == c.GROUP_PLURAL:
            self.groups = tables
            for ns_shards in self.shards.values():  # shard members survive a group relist
                for by_name in ns_shards.values():
                    for shard in by_name.values():
                        self._shard_members(shard, add=True)
        else:
            self.users = tables

    def workspace_in(self, namespace: str) -> Obj | None:
        """The workspace of ``namespace`` (the first by name, should an admin make two)."""
        names = sorted(name for ns, name in self.workspaces if ns == namespace)
        return self.workspaces[(namespace, names[0])] if names else None

    def holds(self, plural: str, obj: Obj) -> bool:
        """A shard at this version or a later one is cached already (the watch's echo of the
        API's own write): its informer need not decode the event. Other kinds: never."""
        if plural != c.SHARD_PLURAL:
            return False
        gid = (obj.get("spec") or {}).get("group", "")
        cached = (
            self.shards.get(obj["metadata"].get("namespace", ""), {})
            .get(gid, {})
            .get(obj["metadata"]["name"])
        )
        return cached is not None and _rv(obj) <= _rv(cached)

    def kept(self, plural: str, obj: Obj) -> Obj | None:
        """The cached object under ``obj``'s key (``Informer(kept=…)``: a relist keeps it when
        it is at the listed resourceVersion instead of holding a second copy)."""
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        if plural == c.SHARD_PLURAL:
            return self.shards.get(ns, {}).get((obj.get("spec") or {}).get("group", ""), {}).get(name)
        if plural == c.WORKSPACE_PLURAL:
            return self.workspaces.get((ns, name))
        tables = {c.GROUP_PLURAL: self.groups, c.USER_PLURAL: self.users}.get(plural, {})
        table = tables.get(ns)
        return table.by_id.get(name) if table is not None else None

    def upsert(self, plural: str, obj: Obj) -> None:
        ns = obj["metadata"]["namespace"]
        if plural == c.SHARD_PLURAL:
            gid = (obj.get("spec") or {}).get("group", "")
            by_name = self.shards.setdefault(ns, {}).setdefault(gid, {})
            old = by_name.get(obj["metadata"]["name"])
            if old is not None and _rv(obj) <= _rv(old):
                return  # older, or the watch's echo of our own write (5,000 members: skip it)
            if obj["metadata"].get("deletionTimestamp"):
                if old is not None:
                    self._shard_members(old, add=False)
                by_name.pop(obj["metadata"]["name"], None)
                return
            by_name[obj["metadata"]["name"]] = obj
            before = member_values(old) if old is not None else NO_MEMBERS
            self._move_shard_members(ns, gid, before, member_values(obj))
            return
        if plural == c.WORKSPACE_PLURAL:
            key = (ns, obj["metadata"]["name"])
            old = self.workspaces.get(key)
            if old is None or _rv(obj) >= _rv(old):
                self.workspaces[key] = obj
                self._rebuild_tokens()
        elif plural == c.GROUP_PLURAL:
            self.groups.setdefault(ns, Table(self.GROUP_INDEXES, track_members=True)).put(obj)
        elif plural == c.USER_PLURAL:
            self.users.setdefault(ns, Table(self.USER_INDEXES)).put(obj)

    def delete(self, plural: str, obj: Obj) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if plural == c.SHARD_PLURAL:
            gid = (obj.get("spec") or {}).get("group", "")
            old = self.shards.get(ns, {}).get(gid, {}).pop(name, None)
            if old is not None:
                self._shard_members(old, add=False)
            return
        if plural == c.WORKSPACE_PLURAL:
            self.workspaces.pop((ns, name), None)
            self._rebuild_tokens()
        elif plural == c.GROUP_PLURAL and ns in self.groups:
            self.groups[ns].remove(name)
        elif plural == c.USER_PLURAL and ns in self.users:
            self.users[ns].remove(name)

    # ------------------------------------------------------------------ authentication

    def _rebuild_tokens(self) -> None:
        """Hash -> workspace. A hash published by two workspaces is accepted by neither:
        it cannot tell them apart (the operator refuses it in both, too)."""
        tokens: dict[str, tuple[WorkspaceRef, datetime]] = {}
        shared: set[str] = set()
        for (ns, name), ws in self.workspaces.items():
            for entry in (ws.get("status") or {}).get("tokenHashes") or []:
                not_after = parse_time(entry.get("notAfter"))
                sha = entry.get("sha256")
                if not_after is not None and isinstance(sha, str):
                    if sha in tokens and tokens[sha][0] != WorkspaceRef(ns, name):
                        shared.add(sha)
                    tokens[sha] = (WorkspaceRef(ns, name), not_after)
        for sha in shared:
            del tokens[sha]
        self._tokens = tokens

    def workspace_for_token_hash(self, sha256_hex: str) -> WorkspaceRef | None:
        """The workspace a token hash belongs to, if it is published and not expired.

        The lookup is keyed by SHA-256 of the presented token, so its timing depends on a
        digest the caller cannot steer, never on how much of a real token they guessed."""
        found = self._tokens.get(sha256_hex)
        if found is None:
            return None
        ref, not_after = found
        if not_after <= datetime.now(UTC):
            return None
        return ref

    def _shard_members(self, shard: Obj, add: bool) -> None:
        ns = shard["metadata"]["namespace"]
        gid = (shard.get("spec") or {}).get("group", "")
        values = member_values(shard)
        self._move_shard_members(ns, gid, NO_MEMBERS if add else values, values if add else NO_MEMBERS)

    def _move_shard_members(self, ns: str, gid: str, before: Set[str], after: Set[str]) -> None:
        """The reverse index after a shard changed from listing ``before`` to ``after``: only
        the values that left or arrived are touched (set differences in C, not 5,000 links)."""
        table = self.groups.setdefault(ns, Table(self.GROUP_INDEXES, track_members=True))
        table.member_of.move(gid, before, after)

    def shards_of(self, namespace: str, gid: str) -> list[Obj]:
        """The group's shards, in name order."""
        by_name = self.shards.get(namespace, {}).get(gid, {})
        return [by_name[k] for k in sorted(by_name, key=shard_order)]

    def group_members(self, namespace: str, group: Obj) -> list[Obj]:
        """All members of a group: inline first, then each shard's."""
        return assemble_members(group, self.shards_of(namespace, group["metadata"]["name"]))

    def member_count(self, namespace: str, group: Obj) -> int:
        """How many members ``group_members`` would assemble, without assembling them."""
        count = len((group.get("spec") or {}).get("members") or [])
        for shard in self.shards.get(namespace, {}).get(group["metadata"]["name"], {}).values():
            count += len((shard.get("spec") or {}).get("members") or [])
        return count

    def group_table(self, namespace: str) -> Table:
        return self.groups.get(namespace) or Table(self.GROUP_INDEXES, track_members=True)

    def user_table(self, namespace: str) -> Table:
        return self.users.get(namespace) or Table(self.USER_INDEXES)


class _TablesListing:
    """A list of groups or users loaded into new tables, one per namespace, page by page
    (``Table.load``); they replace the directory's when the list is done."""

    def __init__(self, directory: Directory, plural: str) -> None:
        self._directory = directory
        self._plural = plural
        self._indexes = directory.GROUP_INDEXES if plural == c.GROUP_PLURAL else directory.USER_INDEXES
        self._tables: dict[str, Table] = {}

    def add(self, objects: list[Obj]) -> None:
        by_namespace: dict[str, list[Obj]] = {}
        for obj in objects:
            by_namespace.setdefault(obj["metadata"]["namespace"], []).append(obj)
        for ns, listed in by_namespace.items():
            table = self._tables.get(ns)
            if table is None:
                table = self._tables[ns] = Table(self._indexes, track_members=self._plural == c.GROUP_PLURAL)
            table.load(listed)

    def done(self) -> None:
        self._directory.replace_tables(self._plural, {ns: t.loaded() for ns, t in self._tables.items()})
