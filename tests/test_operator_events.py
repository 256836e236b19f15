"""The operator's Events against the real API server: however many come at once (a large first
sync writes a RoleBinding, and an Event, per group), no more than the limiter's bound are in
flight, counted at the HTTP client (requests sent and not yet answered), not by the limiter
itself; what would queue beyond its capacity is dropped and counted; the composition root
gives the group reconciles, the Revoker and the workspace reconciles one limiter; and a
workspace's Events (tokens, refused patterns) go through it, posted only while leading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client as kclient
from kubernetes_asyncio import client
from prometheus_client import REGISTRY

from scim_core import constants as c
from scim_core.kube import api_client
from scim_devenv.controlplane import ControlPlane
from scim_operator import app
from scim_operator.events import EventPoster, event_limiter
from scim_operator.settings import OperatorSettings
from scim_operator.workspace_mappings import role_mappings_condition

from .helpers import custom, eventually

pytestmark = pytest.mark.cluster
DROPPED = "scim_operator_events_dropped_total"


class InFlight:
    """Event POSTs this client has sent and not yet had answered, now and at most."""

    def __init__(self, api: client.ApiClient) -> None:
        self.now = self.peak = self.sent = 0
        inner = api.rest_client.request

        async def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            counted = method == "POST" and url.endswith("/events")
            if counted:
                self.sent += 1
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                return await inner(method, url, *args, **kwargs)
            finally:
                if counted:
                    self.now -= 1

        api.rest_client.request = request


@pytest.fixture
async def api(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[client.ApiClient]:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    api = await api_client(user_agent="scim-operator/test-events")
    yield api
    await api.close()


def _group(kube: kclient.ApiClient, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.GROUP_KIND,
        "metadata": {"name": "g"},
        "spec": {"displayName": "G"},
    }
    made: dict[str, Any] = custom(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, body
    )
    return made


def _posted(kube: kclient.ApiClient, namespace: str, reason: str) -> int:
    events = kclient.CoreV1Api(kube).list_namespaced_event(namespace).items
    return sum(1 for e in events if e.reason == reason)


async def test_many_events_in_flight_never_exceed_the_bound(
    api: client.ApiClient, kube: kclient.ApiClient, namespace: str
) -> None:
    group = _group(kube, namespace)
    seen = InFlight(api)
    limiter = event_limiter(concurrency=3, capacity=1000)
    events = EventPoster(api, limiter)
    for i in range(300):  # a first sync's worth, all at once
        assert events.post(group, "Normal", "RoleBindingCreated", f"Created RoleBinding {i}")
    assert seen.sent <= 3  # nothing waits for them: they go out in the background
    await asyncio.wait_for(limiter.drain(), timeout=120)
    assert seen.sent == 300 and seen.now == 0
    assert seen.peak == 3  # the bound, reached, and never passed
    assert eventually(lambda: _posted(kube, namespace, "RoleBindingCreated") == 300)


async def test_events_beyond_the_capacity_are_dropped_and_counted(
    api: client.ApiClient, kube: kclient.ApiClient, namespace: str
) -> None:
    group = _group(kube, namespace)
    seen = InFlight(api)
    limiter = event_limiter(concurrency=2, capacity=50)
    events = EventPoster(api, limiter)
    before = REGISTRY.get_sample_value(DROPPED) or 0.0
    accepted = [
        events.post(group, "Normal", "AccessRevoked", f"Removed from {i} RoleBindings") for i in range(200)
    ]
    assert accepted == [True] * 50 + [False] * 150
    assert REGISTRY.get_sample_value(DROPPED) == before + 150
    await asyncio.wait_for(limiter.drain(), timeout=60)
    assert seen.sent == 50 and seen.peak == 2
    assert eventually(lambda: _posted(kube, namespace, "AccessRevoked") == 50)


class Standby:
    def is_leader(self) -> bool:
        return False

    def lapsed(self) -> bool:
        return False

    def check(self) -> None:
        raise AssertionError("not asked")


async def test_a_replica_that_no_longer_leads_posts_no_queued_event(
    api: client.ApiClient, kube: kclient.ApiClient, namespace: str
) -> None:
    group = _group(kube, namespace)
    seen = InFlight(api)
    limiter = event_limiter(concurrency=2, capacity=50)
    events = EventPoster(api, limiter, leader=Standby())
    assert all(events.post(group, "Normal", "RoleBindingCreated", f"Created {i}") for i in range(10))
    await asyncio.wait_for(limiter.drain(), timeout=60)
    assert seen.sent == 0 and _posted(kube, namespace, "RoleBindingCreated") == 0


async def test_group_reconciles_and_the_revoker_share_one_limiter(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    operator = await app.build(OperatorSettings.from_env({}))
    try:
        assert operator.group_sync.events is operator.revoker.events is operator.events
        assert operator.workspace_sync.events is operator.events
        assert operator.events.leader is operator.leader
        assert operator.events.limiter.capacity == 1000
    finally:
        await operator.api.close()


class Leading(Standby):
    def is_leader(self) -> bool:
        return True


def _refusing_workspace(namespace: str) -> dict[str, Any]:
    """A workspace whose one role mapping RE2 refuses (over its memory budget). Never stored:
    an Event needs only its namespace."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.WORKSPACE_KIND,
        "metadata": {"name": "ws", "namespace": namespace, "uid": "ws-uid", "generation": 1},
        "spec": {
            "roleMappings": [{"name": "huge", "groups": {"pattern": "\\pL{1000}"}, "clusterRole": "view"}]
        },
    }


@pytest.mark.parametrize(("leader", "posted"), [(Leading(), 1), (Standby(), 0)], ids=["leader", "standby"])
async def test_workspace_events_go_through_the_limiter_only_while_leading(
    api: client.ApiClient, kube: kclient.ApiClient, namespace: str, leader: Standby, posted: int
) -> None:
    seen = InFlight(api)
    limiter = event_limiter(concurrency=2, capacity=50)
    events = EventPoster(api, limiter, leader=leader)
    conditions = role_mappings_condition(events, _refusing_workspace(namespace), [])
    assert [(x["type"], x["status"], x["reason"]) for x in conditions] == [
        ("RoleMappingsValid", "False", "InvalidPattern")
    ]  # the condition, the record, whether or not the Event goes out
    assert seen.sent == 0 and limiter.held == 1  # queued, not awaited by the reconcile
    await asyncio.wait_for(limiter.drain(), timeout=60)
    assert seen.sent == posted
    assert eventually(lambda: _posted(kube, namespace, "InvalidPattern") == posted)
