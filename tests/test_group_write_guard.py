"""The member-add fast path: a group that never had shards is written without listing its
shards first, under a test of its object's labels; whoever spills members into a shard
marks the object (a label) before creating the shard. So a replica whose cache missed both the
shard and the mark still decides on what the API server holds. Appends to the group object
are guarded by its generation, which the operator's status and finalizer writes leave alone."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client, watch

from scim_api.layout import INLINE_MAX_MEMBERS
from scim_api.protocol.group_patch import GroupState
from scim_api.protocol.resources import LAST_MODIFIED
from scim_api.store import SHARDED, main_object_ops, on_generation, shard_replacement, unlisted_guard
from scim_core import constants as c
from scim_core.members import unpacked

from .conftest import ScimClient
from .helpers import custom, eventually
from .test_large_groups import GROUP, PATCH, _add, _hide_shards, _objects, _state, _stored, replica_b

__all__ = ["replica_b"]  # the fixture, shared with test_large_groups


def _obj(labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": "7", "generation": 3}
    if labels is not None:
        metadata["labels"] = labels
    return {"metadata": metadata}


@pytest.mark.parametrize(
    ("obj", "listed", "ops"),
    [
        (_obj({"a": "b"}), True, []),  # shards listed: as before
        (_obj({"a": "b"}), False, [{"op": "test", "path": "/metadata/labels", "value": {"a": "b"}}]),
        (_obj(), False, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]),
    ],
)
def test_unlisted_guard(obj: dict[str, Any], listed: bool, ops: list[dict[str, Any]]) -> None:
    assert unlisted_guard(obj, listed) == ops


def test_appends_to_the_group_object_are_guarded_by_its_generation() -> None:
    """The operator's finalizer and status writes move the resourceVersion, not the generation."""
    obj = _obj({})
    append: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/spec/members/-", "value": {"value": "u"}},
    ]
    removal: list[dict[str, Any]] = [
        {"op": "test", "path": "/spec/members/0/value", "value": "x"},
        {"op": "remove", "path": "/spec/members/0"},
    ]
    assert on_generation(obj, append) == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        append[1],
    ]
    assert on_generation(obj, removal) == removal
    assert on_generation(obj, []) == []


@pytest.mark.parametrize(
    ("labels", "first"), [({"x": "y"}, []), (None, [{"op": "add", "path": "/metadata/labels", "value": {}}])]
)
def test_the_mark_is_a_label(labels: dict[str, str] | None, first: list[dict[str, Any]]) -> None:
    state = GroupState("G")
    ops = main_object_ops(_obj(labels), state, state, False, mark=True)
    assert ops[: len(first) + 1] == [
        *first,
        {"op": "add", "path": "/metadata/labels/scim.optimaite.eu~1sharded", "value": "true"},
    ]


def test_a_shard_rewrite_is_a_put_guarded_by_the_version_read() -> None:
    """A shard rewritten whole goes out as a PUT (half the API server's work of a JSON Patch):
    it carries the resourceVersion read (the API server answers 409 if the shard moved since)
    and the metadata read at that version, drops a pre-packing ``members`` list and the
    managedFields, and stamps the last-modified time."""
    read: dict[str, Any] = {
        "apiVersion": c.API_VERSION,
        "kind": c.SHARD_KIND,
        "metadata": {
            "name": "g-2", "namespace": "ns", "resourceVersion": "41", "uid": "u-1",
            "labels": {c.GROUP_LABEL: "g"}, "annotations": {"keep": "me", LAST_MODIFIED: "old"},
            "ownerReferences": [c.owner_reference(c.GROUP_KIND, "g", "gu")], "finalizers": ["f"],
            "managedFields": [{"manager": "x"}],
        },
        "spec": {"group": "g", "members": [{"value": "a"}, {"value": "b"}]},
        "status": {"observedGeneration": 1},
    }  # fmt: skip
    members = [{"value": "a"}, {"value": "c", "display": "C"}]
    body = shard_replacement(read, members)
    meta = body["metadata"]
    assert meta["resourceVersion"] == "41" and meta["uid"] == "u-1" and "managedFields" not in meta
    assert meta["labels"] == read["metadata"]["labels"] and meta["finalizers"] == ["f"]
    assert meta["ownerReferences"] == read["metadata"]["ownerReferences"]
    assert meta["annotations"]["keep"] == "me" and meta["annotations"][LAST_MODIFIED] != "old"
    assert set(body["spec"]) == {"group", "packedMembers"} and "status" not in body
    assert unpacked(body)["spec"]["members"] == members
    assert read["metadata"]["annotations"][LAST_MODIFIED] == "old"  # the cached object is left as it was


@pytest.mark.cluster
def test_a_replica_that_missed_the_spill_rereads_before_writing(
    scim: ScimClient, replica_b: ScimClient, kube: client.ApiClient
) -> None:
    ns = scim.namespace
    gid = scim.create_group("Spilling")["id"]
    inline = [f"in-{i:04d}" for i in range(INLINE_MAX_MEMBERS)]
    _add(scim, gid, inline)
    table = _state(replica_b).directory.group_table(ns)

    def filled() -> dict[str, Any] | None:
        obj = table.by_id.get(gid)
        return obj if obj and len(obj["spec"].get("members") or []) == INLINE_MAX_MEMBERS else None

    full = eventually(filled, timeout=10)
    assert SHARDED not in (full["metadata"].get("labels") or {})
    _add(scim, gid, ["sh-1", "sh-2"])  # no room left inline: a shard, and the object marked
    group, shards = _objects(kube, ns, gid)
    assert shards and group["metadata"]["labels"][SHARDED] == "true"
    eventually(lambda: _state(replica_b).directory.shards_of(ns, gid), timeout=10)

    def lag() -> None:  # B holds the object as it was before the spill, and no shard
        _hide_shards(replica_b, gid)
        table.remove(gid)
        table.put(full)

    lag()  # an add of a member only the unseen shard holds: B lists before spilling, stored once
    ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "sh-2"}]}]}
    assert replica_b.patch(f"/Groups/{gid}", ops).status_code == 204
    assert sorted(_values(kube, ns, gid)) == sorted([*inline, "sh-1", "sh-2"])

    lag()  # a replacement: the shard's members go too
    body = {"schemas": [GROUP], "displayName": "Spilling", "members": [{"value": "only"}]}
    r = replica_b.put(f"/Groups/{gid}", body)
    assert r.status_code == 200, r.text
    assert _stored(kube, ns, gid) == {"only"}


def _values(kube: client.ApiClient, namespace: str, gid: str) -> list[str]:
    """Every stored member value, duplicates included."""
    group, shards = _objects(kube, namespace, gid)
    return [m["value"] for o in (group, *shards) for m in o["spec"].get("members") or []]


def _history(
    kube: client.ApiClient, namespace: str, plural: str, since: str
) -> list[tuple[int, str, dict[str, Any]]]:
    """(resourceVersion, event type, object) of every change to ``plural`` in ``namespace``
    after resourceVersion ``since``, as the API server's watch replays them."""
    stream = watch.Watch().stream(
        custom(kube).list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, plural,
        resource_version=since, timeout_seconds=1,
    )  # fmt: skip
    return [(int(e["object"]["metadata"]["resourceVersion"]), e["type"], e["object"]) for e in stream]


@pytest.mark.cluster
@pytest.mark.parametrize(("first", "then"), [(INLINE_MAX_MEMBERS + 50, 0), (INLINE_MAX_MEMBERS, 5)])
def test_the_mark_lands_before_the_first_shard_is_created(
    scim: ScimClient, kube: client.ApiClient, first: int, then: int
) -> None:
    """The order the guard rests on (docs/api.md), as the API server recorded it: the group
    object's write that adds the SHARDED label has a lower resourceVersion (etcd revision)
    than the creation of the group's first ScimMemberShard, whether one request spills
    (``first`` past the inline room) or a later one does (``then``)."""
    ns = scim.namespace
    gid = scim.create_group("Ordered")["id"]
    since = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, gid)
    since_rv = since["metadata"]["resourceVersion"]
    _add(scim, gid, [f"m-{i:04d}" for i in range(first)])
    if then:
        _add(scim, gid, [f"n-{i:04d}" for i in range(then)])
    group, shards = _objects(kube, ns, gid)
    assert shards and group["metadata"]["labels"][SHARDED] == "true"
    marks = [
        rv
        for rv, _, obj in _history(kube, ns, c.GROUP_PLURAL, since_rv)
        if obj["metadata"]["name"] == gid and SHARDED in (obj["metadata"].get("labels") or {})
    ]
    created = [
        rv
        for rv, kind, obj in _history(kube, ns, c.SHARD_PLURAL, since_rv)
        if kind == "ADDED" and obj["spec"]["group"] == gid
    ]
    assert marks and created, (marks, created)
    assert min(marks) < min(created), (
        f"the first shard (rv {min(created)}) came before the mark (rv {min(marks)})"
    )
