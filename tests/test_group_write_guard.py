"""The member-add fast path: a group that never had shards is written without listing its
shards first, under a test of its object's resourceVersion; whoever spills members into a
shard marks the object in the same write. So a replica whose cache missed both the shard
and the mark still decides on what the API server holds."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from scim_api.layout import INLINE_MAX_MEMBERS
from scim_api.store import SHARDED, shard_guard

from .conftest import ScimClient
from .helpers import eventually
from .test_large_groups import GROUP, PATCH, _add, _hide_shards, _objects, _state, _stored, replica_b

__all__ = ["replica_b"]  # the fixture, shared with test_large_groups


def _version(rv: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv, **({"annotations": annotations} if annotations else {})}}


@pytest.mark.parametrize(
    ("obj", "listed", "has_shards", "ops"),
    [
        (_version("7"), True, False, []),  # listed, nothing sharded: as before
        (_version("7"), False, False, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]),
        (
            _version("7"),
            True,
            True,
            [{"op": "add", "path": "/metadata/annotations/scim.optimaite.eu~1sharded", "value": "true"}],
        ),
        (_version("7", {SHARDED: "true"}), True, True, []),  # marked once
    ],
)
def test_shard_guard(obj: dict[str, Any], listed: bool, has_shards: bool, ops: list[dict[str, Any]]) -> None:
    assert shard_guard(obj, listed, has_shards) == ops


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
    assert SHARDED not in (full["metadata"].get("annotations") or {})
    _add(scim, gid, ["sh-1", "sh-2"])  # no room left inline: a shard, and the object marked
    group, shards = _objects(kube, ns, gid)
    assert shards and group["metadata"]["annotations"][SHARDED] == "true"
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
