"""The informer's list against the real API server: streamed (``sendInitialEvents``, the
default) or, where the API server does not offer that, in pages (here of 3, asked for one
ahead, cached in chunks of 2). Either way the sink gets every object once, with the list's
resourceVersion to watch from; the directory built from it answers lookups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from scim_api.directory import Directory
from scim_core import constants as c
from scim_core import informer as inf
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds

from .helpers import custom

pytestmark = pytest.mark.cluster

NAMES = [f"g{i:02d}" for i in range(11)]


class Collect:
    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.upserted: list[tuple[str, str]] = []
        self.heard = asyncio.Event()
        self.directory = Directory()

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.directory.replace_all(plural, objects)

    def upsert(self, plural: str, obj: dict[str, Any]) -> None:
        self.upserted.append((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        self.heard.set()

    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


def create_groups(kube: client.ApiClient, namespace: str, names: list[str]) -> None:
    for name in names:
        body = {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
                "spec": {"displayName": f"Team {name}", "members": [{"value": "u1"}]}}  # fmt: skip
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, body)


def list_once(cp: ControlPlane, times: int = 1) -> tuple[str, inf.Informer, Collect]:
    """``times`` complete lists by one informer; the last one's resourceVersion."""

    async def run() -> tuple[str, inf.Informer, Collect]:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=conf)
        sink = Collect()
        async with aclient.ApiClient(conf) as api:
            informer = inf.Informer(api, c.GROUP_PLURAL, sink)
            rv = ""
            for _ in range(times):
                rv = await informer._list()
            return rv, informer, sink

    return asyncio.run(run())


def assert_listed(rv: str, informer: inf.Informer, sink: Collect, namespace: str, lists: int = 1) -> None:
    ours = [o for o in sink.objects if o["metadata"]["namespace"] == namespace]
    assert sorted(o["metadata"]["name"] for o in ours) == NAMES
    assert all(o["kind"] == c.GROUP_KIND and "managedFields" not in o["metadata"] for o in ours)
    assert int(rv) >= max(int(o["metadata"]["resourceVersion"]) for o in ours)
    assert informer.lists == lists
    table = sink.directory.group_table(namespace)
    assert table.ids == NAMES and table.lookup("displayName", "team G07") == {"g07"}
    assert set(table.member_of["u1"]) == set(NAMES)


def test_a_list_of_many_pages_holds_every_object_once(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inf, "LIST_PAGE", 3)
    monkeypatch.setattr(inf, "SLIM_CHUNK", 2)
    monkeypatch.setattr(inf.Informer, "streaming", False)
    create_groups(kube, namespace, NAMES)
    assert_listed(*list_once(control_plane), namespace)


def test_a_streamed_list_holds_every_object_once(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(inf, "SLIM_CHUNK", 2)
    create_groups(kube, namespace, NAMES)
    with caplog.at_level(logging.INFO, logger=inf.__name__):
        rv, informer, sink = list_once(control_plane)
    assert_listed(rv, informer, sink, namespace)
    assert informer.streaming and "(streamed)" in caplog.text


def test_the_watch_goes_on_from_a_streamed_list(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str
) -> None:
    """Nothing written between the list's snapshot and the watch is lost, nothing listed is
    heard again: the watch starts at the closing bookmark's resourceVersion."""
    create_groups(kube, namespace, NAMES[:2])

    async def run() -> Collect:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=conf)
        sink = Collect()
        async with aclient.ApiClient(conf) as api:
            informer = inf.Informer(api, c.GROUP_PLURAL, sink)
            informer.start()
            try:
                await asyncio.wait_for(informer.synced.wait(), 60)
                await asyncio.to_thread(create_groups, kube, namespace, NAMES[2:4])
                while len([ns for ns, _ in sink.upserted if ns == namespace]) < 2:
                    sink.heard.clear()
                    await asyncio.wait_for(sink.heard.wait(), 30)
                assert informer.lists == 1
            finally:
                await informer.stop()
        return sink

    sink = asyncio.run(run())
    assert (
        sorted(o["metadata"]["name"] for o in sink.objects if o["metadata"]["namespace"] == namespace)
        == NAMES[:2]
    )
    assert [name for ns, name in sink.upserted if ns == namespace] == NAMES[2:4]


@pytest.fixture(scope="module")
def unstreamed() -> Iterator[ControlPlane]:
    """An API server that does not stream lists (Kubernetes' WatchList feature off)."""
    with ControlPlane(apiserver_flags=("--feature-gates=WatchList=false",)) as cp:
        install_crds(cp)
        yield cp


def test_an_api_server_that_does_not_stream_lists_is_listed_in_pages(
    unstreamed: ControlPlane, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inf, "LIST_PAGE", 3)
    kube = config.new_client_from_config(config_file=str(unstreamed.kubeconfig))
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ns")))
    create_groups(kube, "ns", NAMES)
    with caplog.at_level(logging.INFO, logger=inf.__name__):
        rv, informer, sink = list_once(unstreamed, times=2)
    assert_listed(rv, informer, sink, "ns", lists=2)
    assert not informer.streaming  # refused once, then not asked again
    assert caplog.text.count("not streamed here") == 1 and caplog.text.count("(in pages)") == 2
    kube.close()
