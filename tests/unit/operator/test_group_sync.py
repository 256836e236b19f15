"""GroupSync's leadership gate: a standby, or a cache not yet complete, drops the key without
any API call; losing the Lease mid-reconcile stops before the next write."""

from __future__ import annotations

import asyncio
import dataclasses

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
    settings = OperatorSettings.from_env({"SCIM_GRANT_SETTLE_SECONDS": "0"})  # the status write at once
    sync = GroupSync(NoApi(), settings, cache(True), leader)  # type: ignore[arg-type]
    assert await sync.reconcile(("ns", "g")) is None  # the status patch: the first write
    assert leader.checks == 1


# ---------------------------------------------------------------- grants wait, removals do not

MAPPED = {"roleMappings": [{"name": "m", "groups": {"pattern": ".*"}, "clusterRole": "view"}]}


class Events:
    def post(self, *args: object) -> bool:
        return True


class Recording(GroupSync):
    """A GroupSync whose writes are recorded, not sent."""

    def __init__(self, settings: OperatorSettings, cc: ClusterCache) -> None:
        super().__init__(NoApi(), settings, cc, Leader(True), events=Events())  # type: ignore[arg-type]
        self.applied: list[dict[str, object]] = []
        self.statuses = 0

    async def _apply(self, manifest: dict[str, object]) -> None:  # type: ignore[override]
        self.applied.append(manifest)

    async def _write_status(self, *args: object) -> None:  # type: ignore[override]
        self.statuses += 1


def mapped_cache(members: list[str], reconciled: bool = False) -> ClusterCache:
    """Users u1, u2 (active), a mapping of every group to view, a group ``g`` with ``members``
    whose spec changed since its status was written (``reconciled``: it did not)."""
    cc = ClusterCache()
    objects: dict[str, list[dict[str, object]]] = {
        c.WORKSPACE_PLURAL: [{"metadata": {"name": "ws", "namespace": "ns"}, "spec": MAPPED}],
        c.USER_PLURAL: [
            {"metadata": {"name": u, "namespace": "ns", "uid": u}, "spec": {"userName": u, "active": True}}
            for u in ("u1", "u2")
        ],
        c.GROUP_PLURAL: [
            {
                "metadata": {
                    "name": "g",
                    "namespace": "ns",
                    "uid": "g",
                    "resourceVersion": "1",
                    "generation": 2,
                },
                "spec": {"displayName": "g", "members": [{"value": m} for m in members]},
                **({"status": {"observedGeneration": 2}} if reconciled else {}),
            }
        ],
    }
    for kind in KINDS:
        cc.replace_all(kind, objects.get(kind, []))
    return cc


async def binding_for(cc: ClusterCache, names: list[str]) -> None:
    """Put the group's binding, naming ``names``, in the cache as the API server would list it."""
    sync = Recording(dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=0), cc)
    await sync.reconcile(("ns", "g"))
    (manifest,) = sync.applied
    live = {**manifest, "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n}
                                     for n in names]}  # fmt: skip
    live["metadata"] = {**manifest["metadata"], "resourceVersion": "5"}  # type: ignore[dict-item]
    cc.upsert("rolebindings", live)


async def test_a_grant_waits_until_the_group_settles_then_writes_once() -> None:
    cc = mapped_cache(["u1"])
    settings = dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=0.05)
    sync = Recording(settings, cc)
    wait = await sync.reconcile(("ns", "g"))
    assert wait == pytest.approx(0.05)  # the whole quiet time
    assert (sync.applied, sync.statuses) == ([], 0)  # nothing written while it settles
    await asyncio.sleep(0.06)
    assert await sync.reconcile(("ns", "g")) is None
    assert len(sync.applied) == 1 and sync.statuses == 1
    assert sync._settling == {}  # forgotten once written


async def test_a_removal_never_waits() -> None:
    cc = mapped_cache(["u1"])
    await binding_for(cc, ["u1", "u2"])  # u2 was removed from the group: the binding still names them
    sync = Recording(dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=30), cc)
    assert await sync.reconcile(("ns", "g")) is None
    (manifest,) = sync.applied
    assert [s["name"] for s in manifest["subjects"]] == ["u1"]  # type: ignore[index]


async def test_a_status_alone_waits_too_and_nothing_to_write_never_waits() -> None:
    cc = mapped_cache(["u1"])
    await binding_for(cc, ["u1"])  # the binding is right: only the status is to be written
    sync = Recording(dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=30), cc)
    wait = await sync.reconcile(("ns", "g"))
    assert isinstance(wait, float) and wait > 0 and (sync.applied, sync.statuses) == ([], 0)
    sync._status_patch = lambda *args: ({}, None)  # type: ignore[method-assign]  # the status is right
    assert await sync.reconcile(("ns", "g")) is None and sync._settling == {}


async def test_a_group_whose_spec_did_not_change_writes_at_once() -> None:
    """Its status is of its generation: what changed is elsewhere (a user activated, a mapping
    added, a cold start over statuses of an older shape), not an IdP's burst to this group."""
    settings = dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=30)
    sync = Recording(settings, mapped_cache(["u1"], reconciled=True))
    assert await sync.reconcile(("ns", "g")) is None and len(sync.applied) == 1


async def test_zero_turns_the_wait_off() -> None:
    sync = Recording(
        dataclasses.replace(OperatorSettings.from_env({}), grant_settle_seconds=0), mapped_cache(["u1", "u2"])
    )
    assert await sync.reconcile(("ns", "g")) is None
    assert len(sync.applied) == 1 and sync.statuses == 1
