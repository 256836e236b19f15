"""Write notes against a real API server: while the API's watch of groups and users is down,
each SCIM write is named in its workspace's status, and an operator cache whose own watch of
them is stopped (as kube-apiserver refuses it while it rebuilds its watch cache after a
restart) gets each change by reading it by name: a member removed, a user deactivated (the
offboarding fast path is called) and a group deleted all reach it within seconds; once the
watches are back for the grace, the replica removes its notes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from kubernetes import client
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from starlette.testclient import TestClient

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_api.state import ApiState
from scim_core import constants as c
from scim_core.write_notes import FIELD, notes_in
from scim_devenv.controlplane import ControlPlane
from scim_operator.app import cluster_informers, follow_notes
from scim_operator.cache import ClusterCache

from .helpers import create_user, eventually, get_workspace, workspace_with_token

pytestmark = pytest.mark.cluster
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DOWN = (c.GROUP_PLURAL, c.USER_PLURAL)
REMOVE_U1 = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": 'members[value eq "u1"]'}]}
DEACTIVATE = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}


def watches_lost(state: ApiState) -> None:
    """The API replica's own watch of groups and users is lost, as the operator's is."""
    for informer in state.informers:
        if informer.plural in DOWN:
            informer.health.lost()


class OperatorCache:
    """The operator's cache, informers and notes follower on a loop of their own; the
    informers of groups and users stopped once listed, as if their watch were refused."""

    def __init__(self, kubeconfig: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.revoked: list[tuple[str, str]] = []
        self.cache = ClusterCache(on_revoke=self.revoked.append)
        self._kubeconfig = kubeconfig
        self._run(self._start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self) -> None:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=self._kubeconfig, client_configuration=conf)
        self.api = aclient.ApiClient(conf)
        self.informers = cluster_informers(self.api, self.cache)
        self.noted = follow_notes(self.api, self.cache, self.informers)
        for informer in self.informers:
            informer.start()
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers)), 30)
        assert self.cache.ready
        for informer in self.informers:
            if informer.plural in DOWN:
                await informer.stop()

    def close(self) -> None:
        async def stop() -> None:
            for informer in self.informers:
                await informer.stop()
            await self.noted.stop()
            await self.api.close()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_writes_made_while_the_watches_are_down_reach_the_operator_through_their_notes(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    operator_running: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = workspace_with_token(kube, namespace)
    for uid in ("u1", "u2"):
        create_user(kube, namespace, uid, f"{uid}@example.com")
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    state = ApiState(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(state.settings, state=state)) as tc:
        eventually(lambda: tc.get("/readyz").status_code == 200, timeout=30)
        eventually(lambda: tc.get(f"{c.SCIM_BASE_PATH}/Users/u2", headers=h).status_code == 200)
        body = {"displayName": "team", "members": [{"value": "u1"}, {"value": "u2"}]}
        gid = tc.post(f"{c.SCIM_BASE_PATH}/Groups", headers=h, json=body).json()["id"]
        key = (namespace, gid)
        ops = OperatorCache(str(control_plane.kubeconfig))
        try:
            eventually(lambda: len(ops.cache.group_members(key)) == 2)
            watches_lost(state)
            assert tc.patch(f"{c.SCIM_BASE_PATH}/Groups/{gid}", headers=h, json=REMOVE_U1).status_code in (
                200,
                204,
            )
            eventually(lambda: ops.cache.group_members(key) == [{"value": "u2"}], timeout=10)
            status = get_workspace(kube, namespace).get("status") or {}
            assert [n.name for n in notes_in(status)] == [gid] and state.noter is not None
            assert list(status[FIELD]) == [state.noter.replica]

            assert tc.patch(f"{c.SCIM_BASE_PATH}/Users/u2", headers=h, json=DEACTIVATE).status_code in (
                200,
                204,
            )
            eventually(lambda: (namespace, "u2") in ops.revoked, timeout=10)
            assert ops.cache.users[(namespace, "u2")]["spec"]["active"] is False

            # a deletion's answer names the version the group had before it, which the note of
            # the removal named too and the operator holds: the note says it is a deletion
            assert tc.delete(f"{c.SCIM_BASE_PATH}/Groups/{gid}", headers=h).status_code == 204
            eventually(
                lambda: (
                    key not in ops.cache.groups or ops.cache.groups[key]["metadata"].get("deletionTimestamp")
                ),
                timeout=10,
            )

            # the watches open again and stay open for the grace (shortened here from 60 s):
            # the replica's own loop (``WriteNoter.run``, every 5 s) removes its notes
            noter = state.noter
            noter._grace = 0.5
            for informer in state.informers:
                if informer.plural in DOWN:
                    informer.health.opened()

            def notes_left() -> dict[str, Any]:
                return dict((get_workspace(kube, namespace).get("status") or {}).get(FIELD) or {})

            assert noter.replica in notes_left()
            eventually(lambda: noter.replica not in notes_left(), timeout=20)
        finally:
            ops.close()


def test_two_api_replicas_notes_reach_both_operator_replicas(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    operator_running: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chart's topology: a removal answered by one API replica and a deactivation by the
    other, both while their watches are down, each under its own key of the workspace status;
    both operator replicas' caches (the leader's and the standby's) get both, and then the
    group's deletion answered by the second replica."""
    token = workspace_with_token(kube, namespace)
    for uid in ("u1", "u2"):
        create_user(kube, namespace, uid, f"{uid}@example.com")
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    h = {"Authorization": f"Bearer {token}"}
    states = [ApiState(ApiSettings(rate_per_second=1e6, rate_burst=1_000_000)) for _ in range(2)]
    with (
        TestClient(create_app(states[0].settings, state=states[0])) as a,
        TestClient(create_app(states[1].settings, state=states[1])) as b,
    ):
        for tc in (a, b):
            eventually(lambda tc=tc: tc.get(f"{c.SCIM_BASE_PATH}/Users/u2", headers=h).status_code == 200)
        body = {"displayName": "team", "members": [{"value": "u1"}, {"value": "u2"}]}
        gid = a.post(f"{c.SCIM_BASE_PATH}/Groups", headers=h, json=body).json()["id"]
        key = (namespace, gid)
        eventually(lambda: b.get(f"{c.SCIM_BASE_PATH}/Groups/{gid}", headers=h).status_code == 200)
        operators = [OperatorCache(str(control_plane.kubeconfig)) for _ in range(2)]
        try:
            for ops in operators:
                eventually(lambda ops=ops: len(ops.cache.group_members(key)) == 2)
            for name, state in zip(("api-a", "api-b"), states, strict=True):
                assert state.noter is not None
                state.noter.replica = name  # two pods; one process here
                watches_lost(state)
            assert a.patch(f"{c.SCIM_BASE_PATH}/Groups/{gid}", headers=h, json=REMOVE_U1).status_code in (
                200,
                204,
            )
            assert b.patch(f"{c.SCIM_BASE_PATH}/Users/u2", headers=h, json=DEACTIVATE).status_code in (
                200,
                204,
            )
            for ops in operators:
                eventually(lambda ops=ops: ops.cache.group_members(key) == [{"value": "u2"}], timeout=10)
                eventually(lambda ops=ops: (namespace, "u2") in ops.revoked, timeout=10)
            by_replica = (get_workspace(kube, namespace).get("status") or {})[FIELD]
            assert [n["name"] for n in by_replica["api-a"]] == [gid]
            assert [n["name"] for n in by_replica["api-b"]] == ["u2"]

            # the group deleted through the other replica than the one that changed it last:
            # its deletion (marked as one) reaches both operator caches too
            assert b.delete(f"{c.SCIM_BASE_PATH}/Groups/{gid}", headers=h).status_code == 204
            for ops in operators:
                eventually(
                    lambda ops=ops: (
                        key not in ops.cache.groups
                        or ops.cache.groups[key]["metadata"].get("deletionTimestamp")
                    ),
                    timeout=10,
                )
            by_replica = (get_workspace(kube, namespace).get("status") or {})[FIELD]
            assert [(n["name"], n.get("deleted")) for n in by_replica["api-b"]] == [("u2", None), (gid, True)]
        finally:
            for ops in operators:
                ops.close()
