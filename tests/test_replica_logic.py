"""Pure logic behind "replicas are one service": watch health, the member budget of a list
page, and the directory's view of shards (fast, no cluster)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scim_api.directory import Directory
from scim_api.routers.common import within_budget
from scim_core import constants as c
from scim_core.informer import WatchHealth


@pytest.mark.parametrize(
    ("heard_at", "now", "silent"), [(None, 5.0, math.inf), (10.0, 10.0, 0.0), (10.0, 42.5, 32.5)]
)
def test_watch_health_silence(heard_at: float | None, now: float, silent: float) -> None:
    clock = [heard_at or 0.0]
    health = WatchHealth(clock=lambda: clock[0])
    if heard_at is not None:
        health.heard()
    clock[0] = now
    assert health.silent_for() == silent


@pytest.mark.parametrize(
    ("costs", "budget", "kept"),
    [
        ([], 5, 0),
        ([10], 5, 1),  # one group over budget is still returned: paging always advances
        ([3, 3, 3], 5, 1),
        ([2, 3, 4], 5, 2),
        ([0, 0, 0], 0, 3),
        ([1, 1, 1], 100, 3),
    ],
)
def test_list_page_member_budget(costs: list[int], budget: int, kept: int) -> None:
    page = [f"g{i}" for i in range(len(costs))]
    cost = dict(zip(page, costs, strict=True))
    assert within_budget(page, cost.__getitem__, budget) == page[:kept]


def _group(name: str, members: list[str], rv: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)},
        "spec": {"displayName": name, "members": [{"value": m} for m in members]},
    }


def _shard(name: str, group: str, members: list[str], rv: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)},
        "spec": {"group": group, "members": [{"value": m} for m in members]},
    }


def test_directory_shards_from_watch_events() -> None:
    """Shards arrive by watch in any order, even before their group; members are inline
    first, then shards in numeric order; an older event never replaces a newer one."""
    d = Directory()
    d.upsert(c.SHARD_PLURAL, _shard("g-10", "g", ["z"]))
    d.upsert(c.SHARD_PLURAL, _shard("g-2", "g", ["y"], rv=5))
    assert "g" in d.group_table("ns").member_of["y"] and "g" not in d.group_table("ns").by_id
    d.upsert(c.GROUP_PLURAL, _group("g", ["a"]))
    assert [m["value"] for m in d.group_members("ns", d.group_table("ns").by_id["g"])] == ["a", "y", "z"]
    d.upsert(c.SHARD_PLURAL, _shard("g-2", "g", ["old"], rv=4))
    assert d.member_count("ns", d.group_table("ns").by_id["g"]) == 3
    d.delete(c.SHARD_PLURAL, _shard("g-10", "g", ["z"]))
    assert "z" not in d.group_table("ns").member_of
    d.replace_all(c.SHARD_PLURAL, [_shard("g-1", "g", ["w"])])  # a relist
    assert d.group_table("ns").member_of.get("y") is None
    assert [s["metadata"]["name"] for s in d.shards_of("ns", "g")] == ["g-1"]
