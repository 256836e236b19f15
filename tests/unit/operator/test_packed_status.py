"""A reconcile reads a cached status packed (as the operator's informers keep it:
``scim_core.cached_status``) as it reads a decoded one: over an unchanged status it writes
nothing (a cold start over a reconciled workspace makes no write), and a changed one is
written as before."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core import constants as c
from scim_core.cached_status import pack_status
from scim_operator import group_sync, user_sync
from scim_operator.cache import BINDINGS, KINDS, ClusterCache
from scim_operator.group_sync import GroupSync
from scim_operator.planning import plan_cached_group
from scim_operator.settings import OperatorSettings
from scim_operator.user_sync import UserSync

NS = "ns"
WORKSPACE = {"roleMappings": [{"name": "m", "groups": {"pattern": "Team .*"}, "clusterRole": "view"}]}


class NoApi:
    """Any use of the API client fails the test (a binding write, a finalizer patch)."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the API was used: {name}")


class Leader:
    def is_leader(self) -> bool:
        return True

    def lapsed(self) -> bool:
        return False

    def check(self) -> None:
        pass


def _group(name: str, display: str, members: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {"displayName": display, "members": [{"value": m} for m in members]},
    }


def _user(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "generation": 2,
        },
        "spec": {"userName": f"{name}@example.com", "active": True},
    }


def _cache(settings: OperatorSettings) -> ClusterCache:
    """A reconciled workspace: a mapped group with its binding in place, an unmapped group,
    their users; statuses not written yet."""
    cc = ClusterCache()
    groups = [_group("g-team", "Team A", ["u1", "u2"]), _group("g-other", "Other", ["u2", "gone"])]
    objects: dict[str, list[dict[str, Any]]] = {
        c.WORKSPACE_PLURAL: [{"metadata": {"name": "ws", "namespace": NS, "uid": "w"}, "spec": WORKSPACE}],
        c.GROUP_PLURAL: groups,
        c.USER_PLURAL: [_user("u1"), _user("u2")],
    }
    for kind in KINDS:
        if kind != BINDINGS:
            cc.replace_all(kind, objects.get(kind, []))
    bindings = []
    for group in groups:
        key = (NS, group["metadata"]["name"])
        for binding in plan_cached_group(cc, settings, key, group)[1].bindings:
            bindings.append(binding.manifest(NS, key[1], group["metadata"]["uid"]))
    assert len(bindings) == 1  # the mapped group's
    cc.replace_all(BINDINGS, bindings)
    return cc


class Writes:
    """The status patches a reconcile sends (``patch_status``), by object."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        monkeypatch.setattr(group_sync, "patch_status", self.patch_status)
        monkeypatch.setattr(user_sync, "patch_status", self.patch_status)

    async def patch_status(self, api: Any, plural: str, ns: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append((plural, name, patch))


def _stored(cached: dict[str, Any], patch: dict[str, Any], packed: bool) -> dict[str, Any]:
    """The object as the watch hands it back after the status merge patch, as cached."""
    status = {**dict(cached.get("status") or {}), **patch}
    new = {**cached, "status": status, "metadata": {**cached["metadata"], "resourceVersion": "2"}}
    return pack_status(new) if packed else new


@pytest.mark.parametrize("packed", [True, False])
async def test_an_unchanged_status_is_not_written_again(
    packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OperatorSettings.from_env({"SCIM_GRANT_SETTLE_SECONDS": "0"})  # writes at once
    cc = _cache(settings)
    writes = Writes(monkeypatch)
    groups = GroupSync(NoApi(), settings, cc, Leader())  # type: ignore[arg-type]
    users = UserSync(NoApi(), cc, Leader())  # type: ignore[arg-type]
    keys = [(NS, "g-team"), (NS, "g-other")]
    for key in keys:
        assert await groups.reconcile(key) is None
    for key in [(NS, "u1"), (NS, "u2")]:
        assert await users.reconcile(key) is None
    assert [(p, n) for p, n, _ in writes.patches] == [
        (c.GROUP_PLURAL, "g-team"), (c.GROUP_PLURAL, "g-other"), (c.USER_PLURAL, "u1"), (c.USER_PLURAL, "u2"),
    ]  # fmt: skip
    team_patch = writes.patches[0][2]
    assert team_patch["roleBindings"] == [f"{ns}/{name}" for ns, name in cc.bindings[keys[0]]]
    for plural, name, patch in writes.patches:  # the watch brings each write back
        cache = cc.groups if plural == c.GROUP_PLURAL else cc.users
        cc.upsert(plural, _stored(cache[(NS, name)], patch, packed))
        assert isinstance(cache[(NS, name)]["status"], bytes if packed else dict)
    writes.patches.clear()
    for key in keys:  # a cold start over this: every group and user checked, nothing written
        assert await groups.reconcile(key) is None
    for key in [(NS, "u1"), (NS, "u2")]:
        assert await users.reconcile(key) is None
    assert writes.patches == []


@pytest.mark.parametrize("packed", [True, False])
async def test_a_changed_status_is_written_from_the_packed_one(
    packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OperatorSettings.from_env({})
    cc = _cache(settings)
    writes = Writes(monkeypatch)
    users = UserSync(NoApi(), cc, Leader())  # type: ignore[arg-type]
    await users.reconcile((NS, "u2"))
    (_, _, patch) = writes.patches.pop()
    assert patch["groups"] == 2
    stale = _stored(cc.users[(NS, "u2")], {**patch, "groups": 5}, packed)  # hand-edited
    cc.upsert(c.USER_PLURAL, stale)
    await users.reconcile((NS, "u2"))
    assert [p for _, _, p in writes.patches] == [{"groups": 2}]  # only what differs
