"""The Revoker's gates (no API call involved): a standby only queues the user's groups; a
leader that loses the Lease before its first patch writes nothing and still queues them;
either way group reconciles are let go again (``wait_idle``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scim_core import constants as c
from scim_operator.cache import BINDINGS, KINDS, ClusterCache
from scim_operator.group_sync import GroupSync
from scim_operator.rbac import RBAC_API
from scim_operator.revocation import Revoker
from scim_operator.settings import OperatorSettings
from scim_operator.user_sync import UserSync

from .test_group_sync import Leader, NoApi, cache


def offboarded_cache() -> ClusterCache:
    """u1, deactivated, still named in the bindings of g1 and g2."""
    cc = ClusterCache()
    md = {"namespace": "ns", "resourceVersion": "1"}
    objects: dict[str, list[dict[str, Any]]] = {
        c.WORKSPACE_PLURAL: [
            {
                "metadata": {"name": "ws", "uid": "w", **md},
                "spec": {"roleMappings": [{"name": "m", "groups": {"pattern": ".*"}, "clusterRole": "view"}]},
            }
        ],
        c.USER_PLURAL: [
            {"metadata": {"name": "u1", "uid": "u", **md}, "spec": {"userName": "u1", "active": False}}
        ],
        c.GROUP_PLURAL: [
            {
                "metadata": {"name": g, "uid": g, **md},
                "spec": {"displayName": g, "members": [{"value": "u1"}]},
            }
            for g in ("g1", "g2")
        ],
        BINDINGS: [
            {
                "metadata": {
                    "name": f"scim-{g}-m",
                    **md,
                    "labels": {c.WORKSPACE_LABEL: "ns", c.GROUP_LABEL: g},
                },
                "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "apiGroup": RBAC_API, "name": "u1"}],
            }
            for g in ("g1", "g2")
        ],
    }
    for kind in KINDS:
        cc.replace_all(kind, objects.get(kind, []))
    return cc


@pytest.mark.parametrize(("leading", "checks"), [(False, 0), (True, 2)])
async def test_no_write_without_the_lease_and_the_groups_are_queued_anyway(
    leading: bool, checks: int
) -> None:
    queued: list[tuple[str, str]] = []
    leader = Leader(leading, writes_allowed=False)  # a leader that lost the Lease just now
    revoker = Revoker(NoApi(), OperatorSettings.from_env({}), offboarded_cache(), leader, queued.append)  # type: ignore[arg-type]
    assert await revoker.revoke(("ns", "u1")) is None
    assert leader.checks == checks  # one per planned patch, refused before any request
    assert queued == [("ns", "g1"), ("ns", "g2")]
    await asyncio.wait_for(revoker.wait_idle(), timeout=1)


async def test_group_and_user_reconciles_wait_for_the_hold() -> None:
    """What the Revoker's ``wait_idle`` is given to: nothing is written until it lets go."""
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    leader = Leader(True, writes_allowed=False)  # the first write would be counted
    cc = cache(True)
    settings = OperatorSettings.from_env({"SCIM_GRANT_SETTLE_SECONDS": "0"})  # writes at once
    groups = asyncio.create_task(GroupSync(NoApi(), settings, cc, leader, hold=hold).reconcile(("ns", "g")))  # type: ignore[arg-type]
    users = asyncio.create_task(UserSync(NoApi(), cc, leader, hold=hold).reconcile(("ns", "u1")))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not groups.done() and not users.done() and leader.checks == 0
    gate.set()
    assert await groups is None and await users is None
    assert leader.checks == 2  # each went on to its status write
