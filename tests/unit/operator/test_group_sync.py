"""GroupSync's leadership gate: a standby, or a cache not yet complete, drops the key without
any API call; losing the Lease mid-reconcile stops before the next write."""

from __future__ import annotations

import pytest

from scim_core import constants as c
from scim_operator.cache import KINDS, ClusterCache
from scim_operator.group_sync import GroupSync
from scim_operator.leader import NotLeader
from scim_operator.settings import OperatorSettings
from scim_operator.user_sync import UserSync


class NoApi:
    """Any use of the API client fails the test."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the API was used: {name}")


class Leader:
    def __init__(self, leading: bool, writes_allowed: bool = True) -> None:
        self.leading = leading
        self.writes_allowed = writes_allowed
        self.checks = 0

    def is_leader(self) -> bool:
        return self.leading

    def lapsed(self) -> bool:
        return False

    def check(self) -> None:
        self.checks += 1
        if not self.writes_allowed:
            raise NotLeader("lost it")


def cache(ready: bool) -> ClusterCache:
    cc = ClusterCache()
    group = {"metadata": {"name": "g", "namespace": "ns", "uid": "u", "resourceVersion": "1"}, "spec": {}}
    user = {"metadata": {"name": "u1", "namespace": "ns"}, "spec": {}}
    for kind in KINDS if ready else KINDS[:-1]:
        objects = {c.GROUP_PLURAL: [group], c.USER_PLURAL: [user]}.get(kind, [])
        cc.replace_all(kind, objects)
    return cc


@pytest.mark.parametrize(("ready", "leading"), [(False, True), (True, False), (False, False)])
async def test_dropped_without_api_calls(ready: bool, leading: bool) -> None:
    settings = OperatorSettings.from_env({})
    cc = cache(ready)
    assert await GroupSync(NoApi(), settings, cc, Leader(leading)).reconcile(("ns", "g")) is None  # type: ignore[arg-type]
    assert await UserSync(NoApi(), cc, Leader(leading)).reconcile(("ns", "u1")) is None  # type: ignore[arg-type]


async def test_losing_the_lease_mid_reconcile_stops_before_the_write() -> None:
    leader = Leader(leading=True, writes_allowed=False)
    sync = GroupSync(NoApi(), OperatorSettings.from_env({}), cache(True), leader)  # type: ignore[arg-type]
    assert await sync.reconcile(("ns", "g")) is None  # the status patch: the first write
    assert leader.checks == 1
