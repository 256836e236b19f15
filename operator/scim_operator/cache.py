"""The operator's picture of the cluster, kept by informers (see ``scim_core.informer``):
workspaces, users, groups, member shards, namespace labels and the RoleBindings it manages.

Every change calls ``on_change`` with each group whose access it may affect, so one
reconcile per affected group follows; ``on_user_change`` and ``on_workspace_change`` do the
same for user and workspace status. Nothing is reconciled before every kind has been
listed once (``ready``): a half-loaded picture would look like "user gone, unbind them".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from typing import Any

from scim_core import constants as c
from scim_core.listing import Collected, Listing
from scim_core.member_index import NO_MEMBERS, MemberIndex, member_values
from scim_core.members import assemble_members
from scim_core.write_notes import NOTED_KINDS, older

GroupKey = tuple[str, str]  # (namespace, group name)
Obj = dict[str, Any]
NAMESPACES = "namespaces"
BINDINGS = "rolebindings"
KINDS = (c.WORKSPACE_PLURAL, c.USER_PLURAL, c.GROUP_PLURAL, c.SHARD_PLURAL, NAMESPACES, BINDINGS)
#: Objects read from a write note (ahead of their watch) and deletions learnt from one,
#: remembered so that a late event cannot take them back (each bound, the oldest forgotten).
AHEAD = 10_000


def _essence(obj: Obj) -> tuple[Any, ...]:
    """What a reconcile depends on (not status, not resourceVersion)."""
    md = obj["metadata"]
    return (obj.get("spec"), md.get("uid"), md.get("deletionTimestamp"), tuple(md.get("finalizers") or ()))


#: The ScimUser fields an RBAC subject is made of (``rbac.subject_for``; ``id`` never changes).
SUBJECT_FIELDS = ("subject", "userName", "externalId", "emails")


def may_lose_access(old: Obj, new: Obj | None) -> bool:
    """Can this change of an existing user take access away: deleted, deactivated, or a field
    their subject is made of changed? Only then does the revocation fast path plan their
    groups (a profile change of a user in a 50,000-member group must not plan it each time)."""
    if new is None:
        return True
    before, after = old.get("spec") or {}, new.get("spec") or {}
    if before.get("active", True) and not after.get("active", True):
        return True
    return any(before.get(f) != after.get(f) for f in SUBJECT_FIELDS)


def _rv(obj: Obj) -> str | None:
    rv: str | None = obj["metadata"].get("resourceVersion")
    return rv


def _key(obj: Obj) -> tuple[str, str]:
    md = obj["metadata"]
    return md.get("namespace", ""), md["name"]


def _remember(versions: dict[tuple[str, str, str], str], key: tuple[str, str, str], version: str) -> None:
    """``versions[key] = version``, forgetting the oldest entry past ``AHEAD``."""
    versions.pop(key, None)
    if len(versions) >= AHEAD:
        versions.pop(next(iter(versions)))
    versions[key] = version


class ClusterCache:
    def __init__(
        self,
        on_change: Callable[[GroupKey], None] = lambda key: None,
        on_user_change: Callable[[tuple[str, str]], None] = lambda key: None,
        on_workspace_change: Callable[[tuple[str, str]], None] = lambda key: None,
        on_revoke: Callable[[tuple[str, str]], None] | None = None,
        on_notes: Callable[[Obj], None] | None = None,
    ) -> None:
        self.on_change = on_change
        #: A workspace arrived once the cache is complete: the API's write notes in its status
        #: are followed (``noted_writes``).
        self.on_notes = on_notes
        #: (plural, namespace, name) -> the version read from a write note (``upsert_ahead``):
        #: older versions of it are ignored until its own watch or list reaches it
        self._ahead: dict[tuple[str, str, str], str] = {}
        #: (plural, namespace, name) -> a resourceVersion at or after which the object was
        #: deleted (``forget``): versions up to it are ignored
        self._tombstones: dict[tuple[str, str, str], str] = {}
        #: An existing user went, or changed in a way that may take access away
        #: (``may_lose_access``): instead of queueing their groups, hand the user to the
        #: revocation fast path, which queues the groups once it is done (``Revoker``).
        self.on_revoke = on_revoke
        self.on_user_change = on_user_change
        self.on_workspace_change = on_workspace_change
        self.synced: set[str] = set()
        self.workspaces: dict[str, dict[str, Obj]] = defaultdict(dict)  # ns -> name -> obj
        self.users: dict[tuple[str, str], Obj] = {}
        self.groups: dict[GroupKey, Obj] = {}
        self.shards: dict[GroupKey, dict[str, Obj]] = defaultdict(dict)  # (ns, group) -> shard name -> obj
        #: namespace -> member value -> the groups listing it, each with how many of the
        #: group's objects do (shared with the API's directory: ``scim_core.member_index``)
        self.member_index: dict[str, MemberIndex] = defaultdict(MemberIndex)
        self.namespaces: dict[str, dict[str, str]] = {}
        self.bindings: dict[GroupKey, dict[tuple[str, str], Obj]] = defaultdict(dict)

    # ------------------------------------------------------------------ queries

    @property
    def ready(self) -> bool:
        return self.synced.issuperset(KINDS)

    def workspace_spec(self, namespace: str) -> dict[str, Any] | None:
        found = self.workspaces.get(namespace) or {}
        live = [o for name, o in sorted(found.items()) if not o["metadata"].get("deletionTimestamp")]
        return dict(live[0].get("spec") or {}) if live else None

    def group_members(self, key: GroupKey) -> list[dict[str, Any]]:
        """Inline members first, then the shards' by numeric suffix (as the API lists them)."""
        return assemble_members(self.groups.get(key), self.shards.get(key, {}).values())

    def workspace_keys(self) -> list[tuple[str, str]]:
        return [(ns, name) for ns, by_name in self.workspaces.items() for name in by_name]

    def requeue_all(self) -> None:
        """Every group (and every group that still has bindings), user and workspace, once:
        when the cache first becomes complete, and when this replica becomes leader."""
        if not self.ready:
            return  # becoming ready calls this again
        for key in list(self.groups) + [k for k in self.bindings if k not in self.groups]:
            self.on_change(key)
        for user in list(self.users):
            self.on_user_change(user)
        for workspace in self.workspace_keys():
            self.on_workspace_change(workspace)

    def groups_of(self, key: tuple[str, str]) -> Collection[str]:
        """The names of the groups (in the user's namespace) listing the member ``key``."""
        namespace, value = key
        index = self.member_index.get(namespace)
        return index.groups_of(value) if index is not None else ()

    def groups_of_user(self, key: tuple[str, str]) -> int:
        return len(self.groups_of(key))

    def groups_in(self, namespace: str) -> list[GroupKey]:
        return [k for k in self.groups if k[0] == namespace]

    def count(self, plural: str, namespace: str) -> int:
        source = self.groups if plural == c.GROUP_PLURAL else self.users
        return sum(1 for k in source if k[0] == namespace)

    # ------------------------------------------------------------------ sink

    def replace_all(self, plural: str, objects: list[Obj]) -> None:
        """A complete list. The first of each kind loads it; once every kind is loaded, a
        relist (after ``410 Gone``) is applied as the changes it holds, so only the groups it
        really affects are queued, not all of them (which would put a fresh change behind
        100,000 no-op reconciles)."""
        if self.ready:
            self._relist(plural, objects)
            return
        for old in self._all(plural):
            self._remove(plural, old, notify=False)
        for obj in objects:
            self._put(plural, obj, notify=False)
        self.synced.add(plural)
        self.requeue_all()

    def listing(self, plural: str) -> Listing:
        """How a list of ``plural`` lands (``Informer(listing=…)``). A first list is loaded
        whole once complete (``replace_all``). A relist once every kind is loaded (after a
        ``410 Gone``: an API-server restart) is applied page by page as it arrives
        (:class:`_Relist`): a change made while the watch was down is reconciled when its page
        comes, not after the last of 100,000 objects."""
        if self.ready:
            return _Relist(self, plural)
        return Collected(self, plural)

    def upsert(self, plural: str, obj: Obj) -> None:
        self._put(plural, obj, notify=True)

    def kept(self, plural: str, obj: Obj) -> Obj | None:
        """The cached object under ``obj``'s key (``Informer(kept=…)``: a relist keeps it when
        it is at the listed resourceVersion). Namespaces are kept as their labels only: none."""
        ns, name = _key(obj)
        if plural == c.WORKSPACE_PLURAL:
            return self.workspaces.get(ns, {}).get(name)
        if plural == c.USER_PLURAL:
            return self.users.get((ns, name))
        if plural == c.GROUP_PLURAL:
            return self.groups.get((ns, name))
        if plural == c.SHARD_PLURAL:
            return self.shards.get((ns, (obj.get("spec") or {}).get("group", "")), {}).get(name)
        if plural == BINDINGS and (owner := self._binding_owner(obj)) is not None:
            return self.bindings.get(owner, {}).get((ns, name))
        return None

    def delete(self, plural: str, obj: Obj) -> None:
        self._remove(plural, obj, notify=True)

    def upsert_ahead(self, plural: str, obj: Obj) -> None:
        """``obj`` read by name from a write note (``noted_writes``): it may be ahead of its own
        watch, which will still deliver older versions (and a relist may hold one); those are
        ignored until the watch or a list reaches this version. A read older than the cached
        copy (the watch, working again, delivered a later write meanwhile) is dropped."""
        cached = self.kept(plural, obj)
        if self._outdated(plural, obj) or (cached is not None and older(_rv(obj), _rv(cached))):
            return
        self._put(plural, obj, notify=True)
        _remember(self._ahead, (plural, *_key(obj)), _rv(obj) or "")

    def forget(self, plural: str, obj: Obj, deleted_by: str) -> None:
        """``obj`` (the cached copy) was deleted at or before resourceVersion ``deleted_by``,
        learnt from a write note rather than from its watch: removed, and any version of it up
        to ``deleted_by`` that an event still brings is ignored."""
        _remember(self._tombstones, (plural, *_key(obj)), deleted_by)
        self._remove(plural, obj, notify=True)

    def _outdated(self, plural: str, obj: Obj) -> bool:
        """Is ``obj`` older than what a write note told the cache? Versions are compared as
        numbers only for the few objects read from a note, and only until their own watch has
        caught up (an etcd restored from a backup makes versions go back; nothing else here
        compares them)."""
        if plural not in NOTED_KINDS or not (self._ahead or self._tombstones):
            return False
        key, version = (plural, *_key(obj)), _rv(obj)
        ahead = self._ahead.get(key)
        if ahead is not None:
            if older(version, ahead):
                return True
            del self._ahead[key]  # the watch or a list has reached it
        deleted_by = self._tombstones.get(key)
        if deleted_by is not None:
            if version == deleted_by or older(version, deleted_by):
                return True
            del self._tombstones[key]  # made again since
        return False

    # ------------------------------------------------------------------ internals

    def _relist(self, plural: str, objects: list[Obj]) -> None:
        """Apply a complete list as events: changed or new objects, then the vanished ones."""
        relist = _Relist(self, plural)
        relist.add(objects)
        relist.done()

    def _all(self, plural: str) -> list[Obj]:
        if plural == c.WORKSPACE_PLURAL:
            return [o for by_name in self.workspaces.values() for o in by_name.values()]
        if plural == c.USER_PLURAL:
            return list(self.users.values())
        if plural == c.GROUP_PLURAL:
            return list(self.groups.values())
        if plural == c.SHARD_PLURAL:
            return [o for by_name in self.shards.values() for o in by_name.values()]
        if plural == NAMESPACES:
            return [{"metadata": {"name": n, "labels": labels}} for n, labels in self.namespaces.items()]
        return [o for by_name in self.bindings.values() for o in by_name.values()]

    def _notify(self, keys: Iterable[GroupKey]) -> None:
        for key in keys:
            self.on_change(key)

    def _membership(self, namespace: str, group: str, old: Obj | None, new: Obj | None, notify: bool) -> None:
        """Move one of a group's objects (the group's own, or a shard) in the member index;
        tell about users whose groups changed. Costs the members that changed in this object,
        never the group's others: a member moving to another object of the group (their events
        come in any order) is counted there, and only leaves when no object lists it."""
        before = member_values(old) if old is not None else NO_MEMBERS
        after = member_values(new) if new is not None else NO_MEMBERS
        joined, left = self.member_index[namespace].move(group, before, after)
        if notify and self.ready:
            for value in (*joined, *left):
                if (namespace, value) in self.users:
                    self.on_user_change((namespace, value))

    def _put(self, plural: str, obj: Obj, notify: bool) -> None:
        if self._outdated(plural, obj):
            return
        ns, name = _key(obj)
        affected: list[GroupKey] = []
        if plural == c.WORKSPACE_PLURAL:
            old = self.workspaces[ns].get(name)
            self.workspaces[ns][name] = obj
            if old is None or _essence(old) != _essence(obj):  # not for its status updates
                affected = self.groups_in(ns)
            if notify and self.ready:  # any change, status included (a hand-edit is undone)
                self.on_workspace_change((ns, name))
            if self.ready and self.on_notes is not None:
                self.on_notes(obj)
        elif plural == c.USER_PLURAL:
            old = self.users.get((ns, name))
            self.users[(ns, name)] = obj
            if old is None or _essence(old) != _essence(obj):
                affected = self._user_groups(
                    ns, name, revoke=notify and old is not None and may_lose_access(old, obj)
                )
                if notify and self.ready:
                    self.on_user_change((ns, name))
        elif plural == c.GROUP_PLURAL:
            old = self.groups.get((ns, name))
            self.groups[(ns, name)] = obj
            self._membership(ns, name, old, obj, notify)
            if old is None or _essence(old) != _essence(obj):  # our own status writes: nothing to do
                affected = [(ns, name)]
        elif plural == c.SHARD_PLURAL:
            group = (obj.get("spec") or {}).get("group", "")
            old = self.shards[(ns, group)].get(name)
            self.shards[(ns, group)][name] = obj
            self._membership(ns, group, old, obj, notify)
            affected = [(ns, group)]
        elif plural == NAMESPACES:
            labels = dict(obj["metadata"].get("labels") or {})
            changed = self.namespaces.get(name) != labels
            self.namespaces[name] = labels
            if changed:
                affected = self._selector_groups()
        else:
            owner = self._binding_owner(obj)
            if owner is not None:
                self.bindings[owner][(ns, name)] = obj
                affected = [owner]
        if notify and self.ready:
            self._notify(affected)

    def _remove(self, plural: str, obj: Obj, notify: bool) -> None:
        ns, name = _key(obj)
        affected: list[GroupKey] = []
        if plural == c.WORKSPACE_PLURAL:
            self.workspaces[ns].pop(name, None)
            affected = self.groups_in(ns)
        elif plural == c.USER_PLURAL:
            self.users.pop((ns, name), None)
            affected = self._user_groups(ns, name, revoke=notify)
        elif plural == c.GROUP_PLURAL:
            old = self.groups.pop((ns, name), None)
            self._membership(ns, name, old, None, notify)
            affected = [(ns, name)]
        elif plural == c.SHARD_PLURAL:
            group = (obj.get("spec") or {}).get("group", "")
            old = self.shards[(ns, group)].pop(name, None)
            self._membership(ns, group, old, None, notify)
            affected = [(ns, group)]
        elif plural == NAMESPACES:
            self.namespaces.pop(name, None)
            affected = self._selector_groups()
        else:
            owner = self._binding_owner(obj)
            if owner is not None:
                self.bindings[owner].pop((ns, name), None)
                affected = [owner]
        if notify and self.ready:
            self._notify(affected)

    def _user_groups(self, namespace: str, name: str, revoke: bool) -> list[GroupKey]:
        """The groups a user's change affects; none when the revocation fast path takes the
        change (it queues them itself, after its removals)."""
        if revoke and self.ready and self.on_revoke is not None:
            self.on_revoke((namespace, name))
            return []
        return [(namespace, g) for g in self.groups_of((namespace, name))]

    @staticmethod
    def _binding_owner(obj: Obj) -> GroupKey | None:
        labels = obj["metadata"].get("labels") or {}
        if c.WORKSPACE_LABEL in labels and c.GROUP_LABEL in labels:
            return labels[c.WORKSPACE_LABEL], labels[c.GROUP_LABEL]
        return None

    def _selector_groups(self) -> list[GroupKey]:
        out: list[GroupKey] = []
        for ns, by_name in self.workspaces.items():
            for ws in by_name.values():
                if any(
                    m.get("namespaceSelector") is not None
                    for m in (ws.get("spec") or {}).get("roleMappings") or []
                ):
                    out += self.groups_in(ns)
        return out


class _Relist:
    """A relist applied as events while its pages arrive: each new or changed object at once,
    the cached objects it no longer holds when it is done.

    The list is one snapshot, newer than anything cached of its kind (that kind's watch had
    stopped, and only its informer writes it), so an object applied from an early page is what
    the complete list would have applied; a list abandoned half-way (``410 Gone`` again) has
    applied real changes only, and the next one starts from them."""

    def __init__(self, cache: ClusterCache, plural: str) -> None:
        self._cache = cache
        self._plural = plural
        self._before = {_key(o): o for o in cache._all(plural)}

    def add(self, objects: list[Obj]) -> None:
        for obj in objects:
            old = self._before.pop(_key(obj), None)
            if old is None or _rv(old) != _rv(obj):
                self._cache._put(self._plural, obj, notify=True)

    def done(self) -> None:
        for gone in self._before.values():
            self._cache._remove(self._plural, gone, notify=True)
