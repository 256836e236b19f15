"""ClusterCache: which keys each change queues, readiness gating, member assembly."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core import constants as c
from scim_operator.cache import BINDINGS, KINDS, NAMESPACES, ClusterCache


class Recorder:
    def __init__(self) -> None:
        self.groups: list[tuple[str, str]] = []
        self.users: list[tuple[str, str]] = []
        self.workspaces: list[tuple[str, str]] = []

    def cache(self) -> ClusterCache:
        return ClusterCache(self.groups.append, self.users.append, self.workspaces.append)

    def clear(self) -> None:
        self.groups.clear(), self.users.clear(), self.workspaces.clear()


def obj(name: str, ns: str = "ns", spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", **meta}, "spec": spec or {}}


def group(name: str, *members: str, **spec: Any) -> dict[str, Any]:
    return obj(name, spec={"displayName": name, "members": [{"value": m} for m in members], **spec})


def binding(name: str, group_name: str, ns: str = "ns") -> dict[str, Any]:
    labels = {c.WORKSPACE_LABEL: "ns", c.GROUP_LABEL: group_name}
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def ready_cache(rec: Recorder, **initial: list[dict[str, Any]]) -> ClusterCache:
    cache = rec.cache()
    for kind in KINDS:
        assert not cache.ready
        cache.replace_all(kind, initial.get(kind, []))
    assert cache.ready
    return cache


def test_nothing_is_queued_before_every_kind_is_listed() -> None:
    rec = Recorder()
    cache = rec.cache()
    cache.replace_all(c.GROUP_PLURAL, [group("g1", "u1")])
    cache.upsert(c.GROUP_PLURAL, group("g2"))
    assert rec.groups == []
    for kind in KINDS:
        cache.replace_all(kind, cache._all(kind))
    assert sorted(set(rec.groups)) == [("ns", "g1"), ("ns", "g2")]


def test_requeue_all_covers_groups_orphan_bindings_users_and_workspaces() -> None:
    rec = Recorder()
    cache = ready_cache(
        rec,
        **{
            c.GROUP_PLURAL: [group("g1", "u1")],
            c.USER_PLURAL: [obj("u1")],
            c.WORKSPACE_PLURAL: [obj("ws")],
            BINDINGS: [binding("scim-gone-m", "gone")],
        },
    )
    rec.clear()
    cache.requeue_all()
    assert rec.groups == [("ns", "g1"), ("ns", "gone")]
    assert rec.users == [("ns", "u1")]
    assert rec.workspaces == [("ns", "ws")]


@pytest.mark.parametrize(
    ("change", "queued"),
    [
        ("group-spec", [("ns", "g1")]),
        ("group-status", []),  # our own status write: nothing to do
        ("user-spec", [("ns", "g1"), ("ns", "g2")]),
        ("user-status", []),
        ("shard", [("ns", "g1")]),
        ("workspace-spec", [("ns", "g1"), ("ns", "g2")]),
        ("binding-edited", [("ns", "g2")]),
        ("unlabelled-binding", []),
        ("namespace-labels-no-selector", []),
    ],
)
def test_changes_queue_the_groups_they_affect(change: str, queued: list[tuple[str, str]]) -> None:
    rec = Recorder()
    cache = ready_cache(
        rec,
        **{
            c.GROUP_PLURAL: [group("g1", "u1"), group("g2", "u1")],
            c.USER_PLURAL: [obj("u1", spec={"userName": "a"})],
            c.WORKSPACE_PLURAL: [obj("ws", spec={"displayName": "W"})],
            NAMESPACES: [{"metadata": {"name": "ns", "labels": {}}}],
        },
    )
    rec.clear()
    if change == "group-spec":
        cache.upsert(c.GROUP_PLURAL, group("g1", "u1", "u2"))
    elif change == "group-status":
        cache.upsert(c.GROUP_PLURAL, {**group("g1", "u1"), "status": {"memberCount": 1}})
    elif change == "user-spec":
        cache.upsert(c.USER_PLURAL, obj("u1", spec={"userName": "a", "active": False}))
    elif change == "user-status":
        cache.upsert(c.USER_PLURAL, {**obj("u1", spec={"userName": "a"}), "status": {"groups": 2}})
    elif change == "shard":
        cache.upsert(c.SHARD_PLURAL, obj("g1-1", spec={"group": "g1", "members": [{"value": "u9"}]}))
    elif change == "workspace-spec":
        cache.upsert(c.WORKSPACE_PLURAL, obj("ws", spec={"displayName": "W2"}))
    elif change == "binding-edited":
        cache.upsert(BINDINGS, binding("scim-g2-m", "g2"))
    elif change == "unlabelled-binding":
        cache.upsert(BINDINGS, {"metadata": {"name": "x", "namespace": "ns", "labels": {}}})
    elif change == "namespace-labels-no-selector":
        cache.upsert(NAMESPACES, {"metadata": {"name": "ns", "labels": {"team": "a"}}})
    assert sorted(set(rec.groups)) == queued


def test_user_membership_index_and_user_queue() -> None:
    rec = Recorder()
    cache = ready_cache(rec, **{c.GROUP_PLURAL: [group("g1", "u1")], c.USER_PLURAL: [obj("u1"), obj("u2")]})
    rec.clear()
    cache.upsert(c.GROUP_PLURAL, group("g1", "u2"))  # u1 out, u2 in
    assert sorted(rec.users) == [("ns", "u1"), ("ns", "u2")]
    assert cache.groups_of_user(("ns", "u1")) == 0 and cache.groups_of_user(("ns", "u2")) == 1
    cache.delete(c.GROUP_PLURAL, group("g1", "u2"))
    assert cache.groups_of_user(("ns", "u2")) == 0


@pytest.mark.parametrize("shard_first", [True, False])
def test_a_member_moving_between_group_object_and_shard_stays_indexed(shard_first: bool) -> None:
    """Writes to a group's objects are concurrent, so their events come in any order: a member
    moved from the group object into a shard must keep the group in its index, or deactivating
    that user would not queue the group (and its binding would keep them)."""
    rec = Recorder()
    shard = obj("g1-1", spec={"group": "g1", "members": [{"value": "u2"}]})
    cache = ready_cache(
        rec,
        **{c.GROUP_PLURAL: [group("g1", "u1", "u3")], c.SHARD_PLURAL: [shard], c.USER_PLURAL: [obj("u1")]},
    )
    moved = obj("g1-1", spec={"group": "g1", "members": [{"value": "u2"}, {"value": "u1"}]})
    steps = [(c.SHARD_PLURAL, moved), (c.GROUP_PLURAL, group("g1", "u3"))]
    for plural, changed in steps if shard_first else reversed(steps):
        cache.upsert(plural, changed)
    assert cache.groups_of_user(("ns", "u1")) == 1
    rec.clear()
    cache.upsert(c.USER_PLURAL, {**obj("u1"), "spec": {"active": False}})
    assert rec.groups == [("ns", "g1")]
    # and a member really leaving every object of the group leaves the index
    cache.upsert(c.SHARD_PLURAL, obj("g1-1", spec={"group": "g1", "members": [{"value": "u2"}]}))
    assert cache.groups_of_user(("ns", "u1")) == 0


@pytest.mark.parametrize("gain_first", [True, False])
@pytest.mark.parametrize("into_shard", [True, False])
def test_a_member_moving_either_way_notifies_only_when_the_group_really_changes(
    into_shard: bool, gain_first: bool
) -> None:
    """Both directions, both event orders (the per-group counting of ``MemberIndex``): the
    user stays in the group throughout, and their status is queued only for a real change."""
    rec = Recorder()
    shard = obj("g1-1", spec={"group": "g1", "members": [{"value": "u2"}]})
    holder, other = (c.GROUP_PLURAL, "g1"), (c.SHARD_PLURAL, "g1-1")
    if not into_shard:
        holder, other = other, holder

    def put(where: tuple[str, str], *members: str) -> None:
        plural, name = where
        spec = {"members": [{"value": m} for m in members]}
        if plural == c.SHARD_PLURAL:
            spec["group"] = "g1"
        cache.upsert(plural, obj(name, spec=spec))

    cache = ready_cache(
        rec, **{c.GROUP_PLURAL: [group("g1")], c.SHARD_PLURAL: [shard], c.USER_PLURAL: [obj("u1")]}
    )
    put(holder, "u1", "u3")
    put(other, "u2")
    rec.clear()
    steps = [lambda: put(other, "u2", "u1"), lambda: put(holder, "u3")]
    seen = []
    for step in steps if gain_first else reversed(steps):
        step()
        seen.append(cache.groups_of_user(("ns", "u1")))
    # gained first: never out of the group; lost first: out for a moment, and told both times
    assert seen == ([1, 1] if gain_first else [0, 1])
    assert rec.users == ([] if gain_first else [("ns", "u1"), ("ns", "u1")])


def test_a_shard_event_costs_its_own_members_not_the_groups() -> None:
    """A shard losing a member of a 50,000-member group must not assemble the other 45,000
    to find out whether the member moved (it did: its count in the index says so)."""
    rec = Recorder()
    shards = [
        obj(f"g1-{n}", spec={"group": "g1", "members": [{"value": f"s{n}-{i}"} for i in range(50)]})
        for n in range(1, 11)
    ]
    users = [obj("s1-0"), obj("s1-1")]
    cache = ready_cache(
        rec, **{c.GROUP_PLURAL: [group("g1", "s1-1")], c.SHARD_PLURAL: shards, c.USER_PLURAL: users}
    )
    rec.clear()

    def assembled(*_: Any) -> Any:
        raise AssertionError("a shard event assembled the whole group")

    cache.group_members = assembled  # type: ignore[method-assign]
    members = [{"value": f"s1-{i}"} for i in range(2, 50)]  # s1-0 leaves, s1-1 moved to the group
    cache.upsert(c.SHARD_PLURAL, obj("g1-1", spec={"group": "g1", "members": members}))
    assert cache.groups_of_user(("ns", "s1-0")) == 0 and cache.groups_of_user(("ns", "s1-1")) == 1
    assert rec.users == [("ns", "s1-0")] and rec.groups == [("ns", "g1")]
    cache.delete(c.SHARD_PLURAL, obj("g1-2", spec={"group": "g1", "members": []}))
    assert cache.groups_of_user(("ns", "s2-0")) == 0


def test_every_workspace_change_queues_the_workspace() -> None:
    rec = Recorder()
    cache = ready_cache(rec, **{c.WORKSPACE_PLURAL: [obj("ws")]})
    rec.clear()
    cache.upsert(c.WORKSPACE_PLURAL, {**obj("ws"), "status": {"groups": 0}})
    assert rec.workspaces == [("ns", "ws")]


def test_group_members_inline_then_shards_by_suffix() -> None:
    rec = Recorder()
    shards = [obj(f"g1-{n}", spec={"group": "g1", "members": [{"value": f"s{n}"}]}) for n in (10, 2, 1)]
    cache = ready_cache(rec, **{c.GROUP_PLURAL: [group("g1", "a")], c.SHARD_PLURAL: shards})
    assert [m["value"] for m in cache.group_members(("ns", "g1"))] == ["a", "s1", "s2", "s10"]


def test_workspace_spec_skips_deleted_and_counts() -> None:
    rec = Recorder()
    cache = ready_cache(
        rec,
        **{
            c.WORKSPACE_PLURAL: [obj("a", spec={"x": 1}, deletionTimestamp="now"), obj("b", spec={"x": 2})],
            c.GROUP_PLURAL: [group("g1"), group("g2")],
        },
    )
    assert cache.workspace_spec("ns") == {"x": 2}
    assert cache.workspace_spec("other") is None
    assert cache.count(c.GROUP_PLURAL, "ns") == 2 and cache.count(c.USER_PLURAL, "ns") == 0


SELECTING_WS = obj(
    "ws", spec={"roleMappings": [{"name": "m", "namespaceSelector": {"matchLabels": {"t": "a"}}}]}
)
PLAIN_WS = obj("ws", spec={"roleMappings": [{"name": "m"}]})


def _populated(rec: Recorder, workspace: dict[str, Any] = PLAIN_WS) -> ClusterCache:
    cache = ready_cache(
        rec,
        **{
            c.GROUP_PLURAL: [group("g1", "u1"), group("g2", "u1")],
            c.SHARD_PLURAL: [obj("g1-1", spec={"group": "g1", "members": [{"value": "u9"}]})],
            c.USER_PLURAL: [obj("u1", spec={"userName": "a"})],
            c.WORKSPACE_PLURAL: [workspace],
            NAMESPACES: [{"metadata": {"name": "app", "labels": {"t": "a"}}}],
            BINDINGS: [binding("scim-g2-m", "g2")],
        },
    )
    rec.clear()
    return cache


@pytest.mark.parametrize(
    ("plural", "deleted", "queued"),
    [
        (c.WORKSPACE_PLURAL, PLAIN_WS, [("ns", "g1"), ("ns", "g2")]),
        (c.USER_PLURAL, obj("u1"), [("ns", "g1"), ("ns", "g2")]),
        (c.USER_PLURAL, obj("u-in-no-group"), []),
        (c.GROUP_PLURAL, group("g1", "u1"), [("ns", "g1")]),
        (c.SHARD_PLURAL, obj("g1-1", spec={"group": "g1"}), [("ns", "g1")]),
        (NAMESPACES, {"metadata": {"name": "app"}}, []),  # no workspace selects namespaces
        (BINDINGS, binding("scim-g2-m", "g2"), [("ns", "g2")]),
        (BINDINGS, {"metadata": {"name": "x", "namespace": "ns", "labels": {}}}, []),
        (BINDINGS, {"metadata": {"name": "x", "namespace": "ns"}}, []),
    ],
)
def test_deletions_queue_the_groups_they_affect(
    plural: str, deleted: dict[str, Any], queued: list[tuple[str, str]]
) -> None:
    rec = Recorder()
    cache = _populated(rec)
    cache.delete(plural, deleted)
    assert sorted(set(rec.groups)) == queued


def test_deletions_drop_the_object_from_the_cache() -> None:
    rec = Recorder()
    cache = _populated(rec)
    assert cache.workspace_spec("ns") == PLAIN_WS["spec"]
    assert [m["value"] for m in cache.group_members(("ns", "g1"))] == ["u1", "u9"]
    cache.delete(c.SHARD_PLURAL, obj("g1-1", spec={"group": "g1"}))
    assert [m["value"] for m in cache.group_members(("ns", "g1"))] == ["u1"]
    cache.delete(c.WORKSPACE_PLURAL, PLAIN_WS)
    assert cache.workspace_spec("ns") is None
    cache.delete(c.USER_PLURAL, obj("u1"))
    assert cache.count(c.USER_PLURAL, "ns") == 0
    cache.delete(BINDINGS, binding("scim-g2-m", "g2"))
    assert cache.bindings[("ns", "g2")] == {}
    cache.delete(NAMESPACES, {"metadata": {"name": "app"}})
    assert "app" not in cache.namespaces


@pytest.mark.parametrize(
    ("labels", "queued"),
    [
        ({"t": "a"}, []),  # unchanged labels: nothing to do
        ({"t": "b"}, [("ns", "g1"), ("ns", "g2")]),
        (None, [("ns", "g1"), ("ns", "g2")]),  # labels removed
    ],
)
def test_namespace_label_changes_queue_groups_of_selecting_workspaces(
    labels: dict[str, str] | None, queued: list[tuple[str, str]]
) -> None:
    rec = Recorder()
    cache = _populated(rec, SELECTING_WS)
    cache.upsert(NAMESPACES, {"metadata": {"name": "app", "labels": labels}})
    assert sorted(set(rec.groups)) == queued
    assert cache.namespaces["app"] == (labels or {})


def test_namespace_deletion_queues_groups_of_selecting_workspaces_only() -> None:
    rec = Recorder()
    cache = _populated(rec, SELECTING_WS)
    cache.delete(NAMESPACES, {"metadata": {"name": "app"}})
    assert sorted(set(rec.groups)) == [("ns", "g1"), ("ns", "g2")]
    assert "app" not in cache.namespaces


def at(o: dict[str, Any], rv: str) -> dict[str, Any]:
    o["metadata"]["resourceVersion"] = rv
    return o


def _relisted_cache(rec: Recorder) -> tuple[ClusterCache, list[dict[str, Any]]]:
    """A ready cache of groups g1, g2, g3 (each with member u1) and user u1, all at version 1,
    its notifications cleared: the state before an API-server restart."""
    groups = [at(group(n, "u1"), "1") for n in ("g1", "g2", "g3")]
    cache = ready_cache(rec, **{c.GROUP_PLURAL: list(groups), c.USER_PLURAL: [at(obj("u1"), "1")]})
    rec.clear()
    return cache, groups


def test_a_relist_queues_only_what_it_changed() -> None:
    """After 410 Gone each informer lists again: unchanged objects queue nothing (a fresh
    change must not wait behind every group), changed and vanished ones queue as events."""

    rec = Recorder()
    cache, (g1, _, _) = _relisted_cache(rec)
    cache.replace_all(c.GROUP_PLURAL, [g1, at(group("g2", "u1", "u2"), "5")])  # g3 deleted meanwhile
    assert sorted(rec.groups) == [("ns", "g2"), ("ns", "g3")]
    assert ("ns", "g3") not in cache.groups and cache.group_members(("ns", "g2"))[-1] == {"value": "u2"}
    rec.clear()
    cache.replace_all(c.USER_PLURAL, [at(obj("u1"), "1")])
    assert rec.groups == rec.users == []


def test_a_relists_changes_land_as_its_pages_arrive_and_its_removals_when_it_is_done() -> None:
    """After an API-server restart each informer lists again: a change made meanwhile is
    reconciled when its page comes, not after the whole list; what the list no longer holds
    goes when it is done; a list abandoned half-way removes nothing."""

    rec = Recorder()
    cache, _ = _relisted_cache(rec)
    abandoned = cache.listing(c.GROUP_PLURAL)
    abandoned.add([at(group("g1", "u1", "u3"), "6")])  # its page came, then 410 Gone again
    assert rec.groups == [("ns", "g1")] and cache.group_members(("ns", "g1"))[-1] == {"value": "u3"}
    assert ("ns", "g3") in cache.groups
    rec.clear()
    relist = cache.listing(c.GROUP_PLURAL)
    relist.add([cache.groups[("ns", "g1")]])  # kept as cached: no event
    assert rec.groups == []
    relist.add([at(group("g2", "u1", "u2"), "5")])
    assert rec.groups == [("ns", "g2")] and cache.group_members(("ns", "g2"))[-1] == {"value": "u2"}
    assert ("ns", "g3") in cache.groups  # maybe on a later page until the list is done
    relist.done()
    assert rec.groups == [("ns", "g2"), ("ns", "g3")] and ("ns", "g3") not in cache.groups


def test_a_first_list_is_loaded_whole_once_it_is_complete() -> None:
    rec = Recorder()
    cache = rec.cache()
    listing = cache.listing(c.GROUP_PLURAL)
    listing.add([group("g1", "u1")])
    assert cache.groups == {} and rec.groups == []
    listing.done()
    assert list(cache.groups) == [("ns", "g1")] and c.GROUP_PLURAL in cache.synced


def shard(name: str, group_name: str, *members: str) -> dict[str, Any]:
    return obj(name, spec={"group": group_name, "members": [{"value": m} for m in members]})


@pytest.mark.parametrize(
    ("kind", "cached", "asked"),
    [
        (c.WORKSPACE_PLURAL, obj("ws"), obj("ws")),
        (c.USER_PLURAL, obj("u1"), obj("u1")),
        (c.GROUP_PLURAL, group("g1", "u1"), group("g1")),
        (c.SHARD_PLURAL, shard("g1-1", "g1", "u1"), shard("g1-1", "g1")),
        (BINDINGS, binding("b1", "g1"), binding("b1", "g1")),
    ],
)
def test_kept_is_the_cached_object_under_a_listed_objects_key(
    kind: str, cached: dict[str, Any], asked: dict[str, Any]
) -> None:
    """What a relist may keep instead of its fresh decode (the informer compares versions)."""
    cache = ready_cache(Recorder(), **{kind: [cached]})
    assert cache.kept(kind, asked) is cached
    other = {**asked, "metadata": {**asked["metadata"], "namespace": "elsewhere"}}
    assert cache.kept(kind, other) is None
    assert (
        "elsewhere" not in cache.workspaces and ("elsewhere", "g1") not in cache.shards
    )  # looked up, not made


def test_namespaces_are_never_kept_they_are_cached_as_labels() -> None:
    cache = ready_cache(Recorder(), **{NAMESPACES: [{"metadata": {"name": "ns", "labels": {"a": "b"}}}]})
    assert cache.kept(NAMESPACES, {"metadata": {"name": "ns"}}) is None


def test_a_version_older_than_the_cached_one_never_takes_the_cache_back() -> None:
    """A write note puts a group ahead of its watch; the watch and relist that come later
    with older versions change nothing (a member removed must not come back meanwhile)."""
    rec = Recorder()
    cache, _ = _relisted_cache(rec)
    cache.upsert_ahead(c.GROUP_PLURAL, at(group("g1"), "9"))  # read by name: u1 removed
    cache.upsert_ahead(c.GROUP_PLURAL, at(group("g1", "u1"), "8"))  # an older note's read, late
    rec.clear()
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u1", "u2"), "8"))  # the watch, late
    relist = cache.listing(c.GROUP_PLURAL)
    relist.add([at(group("g1", "u1"), "7")])
    relist.done()
    assert cache.group_members(("ns", "g1")) == [] and ("ns", "g1") not in rec.groups
    cache.upsert(c.GROUP_PLURAL, at(group("g1"), "9"))  # the watch reaches it: no more comparing
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u3"), "5"))  # (etcd restored from a backup)
    assert cache.group_members(("ns", "g1")) == [{"value": "u3"}]


def test_versions_are_compared_only_for_objects_a_note_put_ahead() -> None:
    """An etcd restored from a backup makes versions go back: the cache takes what its watch
    brings, except for an object read from a write note until its watch reaches it."""
    cache, _ = _relisted_cache(Recorder())
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u2"), "0"))
    assert cache.group_members(("ns", "g1")) == [{"value": "u2"}]
    cache.upsert_ahead(c.GROUP_PLURAL, at(group("g2", "u3"), "7"))
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u4"), "0"))  # another object: not compared
    assert cache.group_members(("ns", "g1")) == [{"value": "u4"}]


def test_a_forgotten_object_stays_gone_until_a_newer_version_of_it_comes() -> None:
    rec = Recorder()
    cache, _ = _relisted_cache(rec)
    cache.forget(c.GROUP_PLURAL, cache.groups[("ns", "g1")], "20")
    assert ("ns", "g1") not in cache.groups and rec.groups == [("ns", "g1")]
    for late in ("19", "20"):
        cache.upsert(c.GROUP_PLURAL, at(group("g1", "u1"), late))
        assert ("ns", "g1") not in cache.groups
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u1"), "21"))  # made again, later
    cache.upsert(c.GROUP_PLURAL, at(group("g1", "u2"), "3"))  # its tombstone is gone with it
    assert cache.group_members(("ns", "g1")) == [{"value": "u2"}]


def test_tombstones_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scim_operator.cache.AHEAD", 2)
    cache, _ = _relisted_cache(Recorder())
    for name in ("g1", "g2", "g3"):
        cache.forget(c.GROUP_PLURAL, cache.groups[("ns", name)], "20")
    cache.upsert(c.GROUP_PLURAL, at(group("g1"), "5"))  # its tombstone was the oldest
    cache.upsert(c.GROUP_PLURAL, at(group("g2"), "5"))
    assert ("ns", "g1") in cache.groups and ("ns", "g2") not in cache.groups


def test_workspaces_are_handed_to_the_notes_follower_once_the_cache_is_complete() -> None:
    seen: list[str] = []
    cache = ClusterCache(on_notes=lambda ws: seen.append(ws["metadata"]["name"]))
    cache.replace_all(c.WORKSPACE_PLURAL, [obj("ws1")])
    for kind in KINDS:
        cache.replace_all(kind, cache._all(kind))
    assert seen == []
    cache.upsert(c.WORKSPACE_PLURAL, obj("ws2"))
    assert seen == ["ws2"]


def test_a_note_read_older_than_the_cached_copy_is_dropped() -> None:
    """The watch, working again, delivered a later write while the note's read was on its
    way: the read must not take the cache back (it would stay there, nothing follows)."""
    rec = Recorder()
    cache, _ = _relisted_cache(rec)
    cache.upsert(c.GROUP_PLURAL, at(group("g1"), "9"))  # the watch: u1 removed
    rec.clear()
    cache.upsert_ahead(c.GROUP_PLURAL, at(group("g1", "u1"), "8"))
    assert cache.group_members(("ns", "g1")) == [] and rec.groups == []
