"""The watch-fed directory: token hashes, late events (``directory.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.directory import Directory
from scim_core import constants as c


def test_expired_token_hashes_are_not_accepted() -> None:
    from scim_api.directory import Directory
    from scim_core import constants as c
    from scim_core.tokens import token_sha256

    d = Directory()
    ws = {
        "metadata": {"namespace": "ns", "name": "ws", "resourceVersion": "1"},
        "status": {
            "tokenHashes": [
                {"sha256": token_sha256("live"), "fingerprint": "f1", "notAfter": "2999-01-01T00:00:00Z"},
                {"sha256": token_sha256("old"), "fingerprint": "f2", "notAfter": "2000-01-01T00:00:00Z"},
            ]
        },
    }
    d.replace_all(c.WORKSPACE_PLURAL, [ws])
    assert d.workspace_for_token_hash(token_sha256("live")) is not None
    assert d.workspace_for_token_hash(token_sha256("old")) is None  # expired
    assert d.workspace_for_token_hash(token_sha256("unknown")) is None
    d.delete(c.WORKSPACE_PLURAL, ws)
    assert d.workspace_for_token_hash(token_sha256("live")) is None  # revoked with its workspace


def test_directory_ignores_late_events_after_own_delete() -> None:
    from scim_api.directory import Table

    t = Table(("displayName",))
    obj = {"metadata": {"name": "g1", "resourceVersion": "10"}, "spec": {"displayName": "A"}}
    t.put(obj)
    t.forget("g1", 12)
    t.put({"metadata": {"name": "g1", "resourceVersion": "11"}, "spec": {"displayName": "A"}})  # late
    assert "g1" not in t.by_id and t.lookup("displayName", "a") == set()


def test_index_holds_one_id_or_a_set_and_drops_status() -> None:
    """A value held by one object is stored as its id (no set per unique value); two objects
    with the same value (case-insensitively) share a set until one goes."""
    from scim_api.directory import Table

    t = Table(("displayName",))

    def put(name: str, display: str, rv: str) -> None:
        t.put(
            {
                "metadata": {"name": name, "resourceVersion": rv},
                "spec": {"displayName": display},
                "status": {"x": 1},
            }
        )

    put("g1", "Ops", "1")
    put("g1", "Ops", "2")  # the same object again
    assert t.lookup("displayName", "OPS") == {"g1"} and "status" not in t.by_id["g1"]
    put("g2", "ops", "3")
    put("g3", "ops", "4")
    assert t.lookup("displayName", "ops") == {"g1", "g2", "g3"}
    t.remove("g1")
    t.remove("g2")
    assert t.lookup("displayName", "ops") == {"g3"} and t.index["displayName"]["ops"] == "g3"
    put("g3", "Dev", "5")
    assert t.lookup("displayName", "ops") == set() and t.lookup("displayName", "dev") == {"g3"}


def _obj(name: str, members: list[str], rv: int, group: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"members": [{"value": m} for m in members]}
    spec.update({"group": group} if group else {"displayName": name})
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)}, "spec": spec}


@pytest.mark.parametrize("into_shard", [True, False], ids=["object-to-shard", "shard-to-object"])
@pytest.mark.parametrize("gaining_first", [True, False], ids=["gain-first", "loss-first"])
def test_a_member_moving_between_group_object_and_shard_stays_indexed(
    into_shard: bool, gaining_first: bool
) -> None:
    """A group's object and its shards are written concurrently, so their watch events come
    in any order: a member moving from one to the other keeps the group in ``member_of``
    (the User's ``groups`` and member filters read it), and a member leaving every object
    of the group leaves it."""
    from scim_api.directory import Directory
    from scim_core import constants as c

    d = Directory()
    holder, other = ("u1", "u3"), ("u2",)  # u1 starts in the first, moves to the second
    first, second = (c.GROUP_PLURAL, "g"), (c.SHARD_PLURAL, "g-1")
    if not into_shard:
        first, second = second, first

    def put(where: tuple[str, str], members: tuple[str, ...], rv: int) -> None:
        plural, name = where
        d.upsert(plural, _obj(name, list(members), rv, group="g" if plural == c.SHARD_PLURAL else None))

    put(first, holder, 1)
    put(second, other, 1)
    moves = [lambda: put(second, (*other, "u1"), 2), lambda: put(first, ("u3",), 2)]
    for move in moves if gaining_first else reversed(moves):
        move()
    table = d.group_table("ns")
    assert set(table.member_of["u1"]) == {"g"}
    assert [m["value"] for m in d.group_members("ns", table.by_id["g"])].count("u1") == 1
    put(second, other, 3)  # u1 leaves the group altogether
    assert "u1" not in table.member_of
    assert set(table.member_of["u2"]) == set(table.member_of["u3"]) == {"g"}
    d.delete(second[0], _obj(second[1], list(other), 4, group="g" if second[0] == c.SHARD_PLURAL else None))
    assert "u2" not in table.member_of


def test_shard_changes_move_only_the_members_that_changed_and_echoes_are_skipped() -> None:
    """A shard event links and unlinks only what changed; the watch's echo of a version
    already held (the API's own write) is skipped."""
    from scim_api.directory import Directory
    from scim_core import constants as c

    def shard(rv: str, *values: str, deleting: bool = False) -> dict[str, Any]:
        metadata: dict[str, Any] = {"namespace": "ns", "name": "g-1", "resourceVersion": rv}
        if deleting:
            metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": metadata, "spec": {"group": "g", "members": [{"value": v} for v in values]}}

    d = Directory()
    d.upsert(c.SHARD_PLURAL, shard("5", "a", "b"))
    member_of = d.group_table("ns").member_of
    assert member_of == {"a": {"g": 1}, "b": {"g": 1}}
    d.upsert(c.SHARD_PLURAL, shard("6", "b", "c"))
    assert member_of == {"b": {"g": 1}, "c": {"g": 1}}
    echo = shard("6", "x")  # same version: the one already held
    d.upsert(c.SHARD_PLURAL, echo)
    assert d.shards_of("ns", "g")[0]["spec"]["members"] == [{"value": "b"}, {"value": "c"}]
    d.upsert(c.SHARD_PLURAL, shard("4", "z"))  # older: ignored
    assert member_of == {"b": {"g": 1}, "c": {"g": 1}}
    d.upsert(c.SHARD_PLURAL, shard("7", "b", "c", deleting=True))
    assert member_of == {} and d.shards_of("ns", "g") == []
    d.upsert(c.SHARD_PLURAL, shard("8", "d", deleting=True))  # never held: nothing to unlink
    assert member_of == {} and d.shards_of("ns", "g") == []


def test_the_directory_says_which_shard_versions_it_holds() -> None:
    """What the API's shard informer skips before decoding: a version already held (the echo
    of its own write) or an older one; never a newer version, another shard or another kind."""
    from scim_api.directory import Directory
    from scim_core import constants as c

    def shard(rv: str, name: str = "g-1") -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}, "spec": {"group": "g"}}

    d = Directory()
    assert not d.holds(c.SHARD_PLURAL, shard("5"))
    d.upsert(c.SHARD_PLURAL, {**shard("6"), "spec": {"group": "g", "members": [{"value": "a"}]}})
    assert d.holds(c.SHARD_PLURAL, shard("6")) and d.holds(c.SHARD_PLURAL, shard("5"))
    assert not d.holds(c.SHARD_PLURAL, shard("7")) and not d.holds(c.SHARD_PLURAL, shard("6", "g-2"))
    assert not d.holds(c.GROUP_PLURAL, shard("6"))


@pytest.mark.parametrize(
    ("kind", "cached"),
    [
        (c.GROUP_PLURAL, _obj("g1", ["u1"], 3)),
        (c.USER_PLURAL, {"metadata": {"namespace": "ns", "name": "u1", "resourceVersion": "3"}, "spec": {}}),
        (c.SHARD_PLURAL, _obj("g1-1", ["u1"], 3, group="g1")),
        (
            c.WORKSPACE_PLURAL,
            {"metadata": {"namespace": "ns", "name": "ws", "resourceVersion": "3"}, "spec": {}},
        ),
    ],
)
def test_kept_is_the_cached_object_under_a_listed_objects_key(kind: str, cached: dict[str, Any]) -> None:
    """What a relist may keep instead of its fresh decode (the informer compares versions)."""
    d = Directory()
    d.replace_all(kind, [cached])
    asked = {"metadata": {**cached["metadata"], "resourceVersion": "9"}, "spec": cached["spec"]}
    assert d.kept(kind, asked) is cached
    assert d.kept(kind, {**asked, "metadata": {**asked["metadata"], "namespace": "other"}}) is None
    assert d.kept("rolebindings", asked) is None and "other" not in d.groups and "other" not in d.shards
