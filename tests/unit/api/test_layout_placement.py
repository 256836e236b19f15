"""Where members are stored: the group object or its shards (``layout.py``)."""

from __future__ import annotations

import json

from scim_api.layout import SHARD_MAX_BYTES, Slot, plan_members


def test_layout_places_a_batch_in_one_object() -> None:
    slots = [Slot(None, [{"value": f"i{i}"} for i in range(1000)], "1"), Slot("g-1", [{"value": "s0"}], "2")]
    wanted = {m["value"]: None for s in slots for m in s.members} | {f"n{i}": None for i in range(100)}
    writes = plan_members(slots, wanted, lambda i: f"g-{2 + i}")
    assert [w.name for w in writes] == ["g-1"]  # inline is full: the whole batch goes to the shard
    assert sum(1 for op in writes[0].ops if op["op"] == "add") == 100


def test_layout_removal_touches_only_its_object() -> None:
    slots = [Slot(None, [{"value": "a"}, {"value": "b"}], "1"), Slot("g-1", [{"value": "c"}], "2")]
    writes = plan_members(slots, {"a": None, "b": None}, lambda i: f"g-{2 + i}")
    assert [w.name for w in writes] == ["g-1"]
    assert writes[0].ops == [
        {"op": "test", "path": "/spec/members/0/value", "value": "c"},
        {"op": "remove", "path": "/spec/members/0"},
    ]


def test_layout_new_shards_respect_size() -> None:
    wanted = {f"user-{i:06d}-" + "x" * 200: "d" * 200 for i in range(6000)}
    writes = plan_members([Slot(None, [], "1")], wanted, lambda i: f"g-{1 + i}")
    assert all(w.create for w in writes) and len(writes) >= 3
    for w in writes:
        assert len(json.dumps(w.members)) < SHARD_MAX_BYTES * 1.1
