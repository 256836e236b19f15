"""What one ScimMemberShard event costs the caches, by group size (``python -m bench.cache_events``).

A member leaves a 5,000-member shard of a group of 5,000 to 100,000 members, once per event,
in the operator's ``ClusterCache`` and the API's ``Directory`` (both keep the shared per-group
``MemberIndex``). The cost should depend on the shard's size, not the group's: the operator
used to assemble the whole group on such an event (8-22 ms of CPU at 50,000 members against
3.3-4.9 ms at 5,000; docs/operator.md). No control plane; CPU time of this process (less
noisy than wall time on a busy machine), one line per size with the load average."""

from __future__ import annotations

import os
import time
from typing import Any

from scim_api.directory import Directory
from scim_core import constants as c
from scim_operator.cache import KINDS, ClusterCache

SHARD_MEMBERS = 5000
EVENTS = int(os.environ.get("BENCH_EVENTS", "20"))
SIZES = (5_000, 50_000, 100_000)


def _shard(n: int, values: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": f"g-{n}", "namespace": "ns", "uid": f"s{n}", "resourceVersion": str(n + 10)},
        "spec": {"group": "g", "members": [{"value": v} for v in values]},
    }


def _objects(size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    group = {
        "metadata": {"name": "g", "namespace": "ns", "uid": "g", "resourceVersion": "1"},
        "spec": {"displayName": "G", "members": []},
    }
    shards = [
        _shard(n, [f"u{n}-{i}" for i in range(SHARD_MEMBERS)]) for n in range(1, size // SHARD_MEMBERS + 1)
    ]
    return group, shards


def _events() -> list[dict[str, Any]]:
    """Shard g-1 losing one more member each time (resourceVersions go up, as they do)."""
    values = [f"u1-{i}" for i in range(SHARD_MEMBERS)]
    events = [_shard(1, values[k + 1 :]) for k in range(EVENTS)]
    for k, event in enumerate(events):
        event["metadata"]["resourceVersion"] = str(1_000_000 + k)
    return events


def operator_ms(size: int) -> float:
    group, shards = _objects(size)
    cache = ClusterCache()
    for kind in KINDS:
        cache.replace_all(kind, {c.GROUP_PLURAL: [group], c.SHARD_PLURAL: shards}.get(kind, []))
    events = _events()
    started = time.process_time()
    for event in events:
        cache.upsert(c.SHARD_PLURAL, event)
    return (time.process_time() - started) / len(events) * 1000


def api_ms(size: int) -> float:
    group, shards = _objects(size)
    directory = Directory()
    directory.replace_all(c.GROUP_PLURAL, [group])
    directory.replace_all(c.SHARD_PLURAL, shards)
    events = _events()
    started = time.process_time()
    for event in events:
        directory.upsert(c.SHARD_PLURAL, event)
    return (time.process_time() - started) / len(events) * 1000


def main() -> None:
    print(
        f"one shard event ({SHARD_MEMBERS:,}-member shard, one member leaves), mean of {EVENTS}, CPU time of this process"
    )
    for size in SIZES:
        operator, api = operator_ms(size), api_ms(size)
        print(
            f"group of {size:>7,} members: operator {operator:6.2f} ms, API {api:6.2f} ms"
            f"  (load {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
