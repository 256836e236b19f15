"""Following the API's write notes: each named object is read by name once and lands in the
cache as its watch would have delivered it; one gone is forgotten; a failed read is retried
when the note is seen again."""

from __future__ import annotations

import asyncio
from typing import Any

from scim_core import constants as c
from scim_core.write_notes import Note, status_patch
from scim_operator.cache import KINDS, ClusterCache
from scim_operator.noted_writes import NotedWrites

from .test_cache import Recorder, at, group, obj

G, U = c.GROUP_PLURAL, c.USER_PLURAL


class Store:
    """What a read by name finds, and every read made."""

    def __init__(self, **objects: dict[str, Any]) -> None:
        self.objects = objects
        self.reads: list[str] = []
        self.fail = False

    async def read(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        if self.fail:
            raise ConnectionError("refused")
        found = self.objects.get(name)
        return None if found is None else dict(found)


def workspace(rv: str, *notes: Note) -> dict[str, Any]:
    return at(obj("ws", status=None) | {"status": status_patch("api-1", list(notes))}, rv)


async def follower(store: Store) -> tuple[ClusterCache, NotedWrites, Recorder]:
    rec = Recorder()
    cache = rec.cache()
    initial = {G: [at(group("g1", "u1"), "1")], U: [at(obj("u1"), "1")], c.WORKSPACE_PLURAL: [workspace("1")]}
    for kind in KINDS:
        cache.replace_all(kind, initial.get(kind, []))
    rec.clear()
    decoded = lambda o: {**o, "decoded": True}  # noqa: E731
    noted = NotedWrites(cache, store.read, {G: decoded, U: decoded, c.SHARD_PLURAL: decoded})
    cache.on_notes = noted.seen
    return cache, noted, rec


async def settle(noted: NotedWrites) -> None:
    """Every read started has landed."""
    await asyncio.gather(*list(noted._tasks))


async def test_a_noted_object_is_read_by_name_and_lands_in_the_cache_as_an_event() -> None:
    store = Store(g1=at(group("g1", "u1", "u2"), "5"))
    cache, noted, rec = await follower(store)
    cache.upsert(c.WORKSPACE_PLURAL, workspace("6", Note(G, "g1", "5")))
    await settle(noted)
    assert store.reads == ["g1"] and rec.groups == [("ns", "g1")]
    assert cache.groups[("ns", "g1")]["decoded"] and cache.groups[("ns", "g1")]["kind"] == c.GROUP_KIND
    cache.upsert(c.WORKSPACE_PLURAL, workspace("7", Note(G, "g1", "5")))  # seen again: not read again
    await settle(noted)
    assert store.reads == ["g1"]


async def test_a_note_of_a_version_the_cache_holds_or_passed_is_not_read() -> None:
    store = Store()
    cache, noted, _ = await follower(store)
    cache.upsert(G, at(group("g1", "u1"), "8"))
    cache.upsert(
        c.WORKSPACE_PLURAL, workspace("9", Note(G, "g1", "8"), Note(G, "g1", "7"), Note(U, "u1", "1"))
    )
    await settle(noted)
    assert store.reads == []


async def test_a_noted_object_that_is_gone_is_forgotten_and_its_late_events_ignored() -> None:
    store = Store()
    cache, noted, rec = await follower(store)
    cache.upsert(c.WORKSPACE_PLURAL, workspace("12", Note(G, "g1", "11"), Note(U, "nobody", "3")))
    await settle(noted)
    assert ("ns", "g1") not in cache.groups and rec.groups == [("ns", "g1")]
    cache.upsert(G, at(group("g1", "u1"), "10"))  # the watch, late
    assert ("ns", "g1") not in cache.groups


async def test_a_failed_read_is_retried_when_the_note_is_seen_again(monkeypatch: Any) -> None:
    monkeypatch.setattr("scim_operator.noted_writes.RETRY_SECONDS", 0.0)
    store = Store(u1=at(obj("u1", spec={"active": False}), "4"))
    store.fail = True
    cache, noted, rec = await follower(store)
    cache.upsert(c.WORKSPACE_PLURAL, workspace("5", Note(U, "u1", "4")))
    await settle(noted)
    assert cache.users[("ns", "u1")]["metadata"]["resourceVersion"] == "1"
    store.fail = False
    cache.upsert(c.WORKSPACE_PLURAL, workspace("6", Note(U, "u1", "4")))
    await settle(noted)
    assert store.reads == ["u1"] * 6 and cache.users[("ns", "u1")]["spec"] == {"active": False}
    assert rec.users == [("ns", "u1")]


async def test_the_notes_remembered_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr("scim_operator.noted_writes.REMEMBERED", 1)
    store = Store()
    cache, noted, _ = await follower(store)
    cache.upsert(c.WORKSPACE_PLURAL, workspace("5", Note(G, "a", "4"), Note(G, "b", "4")))
    cache.upsert(c.WORKSPACE_PLURAL, workspace("6", Note(G, "a", "4"), Note(G, "b", "4")))
    await settle(noted)
    assert store.reads.count("a") == 2


async def test_an_object_gone_at_its_read_but_made_again_since_stays() -> None:
    store = Store()
    cache, noted, _ = await follower(store)
    cache.upsert(U, at(obj("u1", spec={"userName": "again"}), "30"))  # made again after the note
    cache.upsert(c.WORKSPACE_PLURAL, workspace("20", Note(U, "u1", "19")))
    await settle(noted)
    assert store.reads == [] and cache.users[("ns", "u1")]["spec"] == {"userName": "again"}
    cache.upsert(c.WORKSPACE_PLURAL, workspace("40", Note(G, "g1", "35")))  # g1 cached at 1
    cache.upsert(G, at(group("g1", "u1"), "45"))  # made again before the read's 404 landed
    await settle(noted)
    assert ("ns", "g1") in cache.groups


async def test_a_deletion_noted_at_a_version_the_cache_holds_is_still_read_and_forgotten() -> None:
    """A deletion's answer names the version the object had before it: the version the note of
    its last change named, which the cache holds. Taken as read, the deleted group stayed in
    the cache (and its bindings) until the relist; marked ``deleted``, it is read and forgotten."""
    store = Store()  # gone
    cache, noted, rec = await follower(store)
    cache.upsert(c.WORKSPACE_PLURAL, workspace("2", Note(G, "g1", "1")))  # its last change: held
    await settle(noted)
    assert store.reads == []
    cache.upsert(c.WORKSPACE_PLURAL, workspace("3", Note(G, "g1", "1", deleted=True)))
    await settle(noted)
    assert store.reads == ["g1"] and ("ns", "g1") not in cache.groups and rec.groups == [("ns", "g1")]
    cache.upsert(c.WORKSPACE_PLURAL, workspace("4", Note(G, "g1", "1", deleted=True)))  # seen again
    await settle(noted)
    assert store.reads == ["g1"]
