"""The informer's paged list against the real API server: with pages of 3 (asked for one
ahead, cached in chunks of 2), a list of many pages hands the sink every object once, with
the list's resourceVersion for the watch; the directory built from it answers lookups."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from scim_api.directory import Directory
from scim_core import constants as c
from scim_core import informer as inf
from scim_devenv.controlplane import ControlPlane

from .helpers import custom

pytestmark = pytest.mark.cluster


class Collect:
    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.directory = Directory()

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.directory.replace_all(plural, objects)

    def upsert(self, plural: str, obj: dict[str, Any]) -> None: ...
    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


def test_a_list_of_many_pages_holds_every_object_once(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inf, "LIST_PAGE", 3)
    monkeypatch.setattr(inf, "SLIM_CHUNK", 2)
    names = [f"g{i:02d}" for i in range(11)]
    for name in names:
        body = {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
                "spec": {"displayName": f"Team {name}", "members": [{"value": "u1"}]}}  # fmt: skip
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, body)

    async def run() -> tuple[str, inf.Informer, Collect]:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=conf)
        sink = Collect()
        async with aclient.ApiClient(conf) as api:
            informer = inf.Informer(api, c.GROUP_PLURAL, sink)
            return await informer._list(), informer, sink

    rv, informer, sink = asyncio.run(run())
    ours = [o for o in sink.objects if o["metadata"]["namespace"] == namespace]
    assert sorted(o["metadata"]["name"] for o in ours) == names
    assert all(o["kind"] == c.GROUP_KIND and "managedFields" not in o["metadata"] for o in ours)
    assert int(rv) >= max(int(o["metadata"]["resourceVersion"]) for o in ours)
    assert informer.lists == 1
    table = sink.directory.group_table(namespace)
    assert table.ids == names and table.lookup("displayName", "team G07") == {"g07"}
    assert set(table.member_of["u1"]) == set(names)


def test_a_relist_keeps_the_cached_copy_of_what_did_not_change(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str
) -> None:
    """After ``410 Gone`` the informer lists again; what kept its resourceVersion stays the
    object the directory already held (no second copy decoded), a change and a deletion land."""
    api = custom(kube)
    for name in ("g0", "g1", "g2"):
        body = {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
                "spec": {"displayName": f"Team {name}", "members": [{"value": "u1"}]}}  # fmt: skip
        api.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, body)

    async def run() -> tuple[dict[str, Any], dict[str, Any], int]:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=conf)
        directory = Directory()
        async with aclient.ApiClient(conf) as aapi:
            informer = inf.Informer(aapi, c.GROUP_PLURAL, directory, kept=directory.kept)
            await informer._list()
            before = dict(directory.group_table(namespace).by_id)
            api.patch_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, "g1", {"spec": {"displayName": "Renamed"}}
            )
            api.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, "g2")
            await informer._list()
            return before, dict(directory.group_table(namespace).by_id), informer.lists

    before, after, lists = asyncio.run(run())
    assert lists == 2 and sorted(after) == ["g0", "g1"]
    assert after["g0"] is before["g0"]  # unchanged: the very object cached by the first list
    assert after["g1"] is not before["g1"] and after["g1"]["spec"]["displayName"] == "Renamed"
