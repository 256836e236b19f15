"""What an informer's cache keeps of a status: packed (the operator's groups and users) or
dropped (the API's), applied to each object as it is decoded, list item or watch event."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from scim_core import cached_status
from scim_core import informer as inf
from scim_core.cached_status import drop_status, pack_status, status_of

STATUS = {
    "observedGeneration": 3,
    "memberCount": 10,
    "roleBindings": ["ns/scim-g"],
    "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "1 RoleBindings"}],
}


def _obj(status: Any = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "g", "namespace": "ns"}, "spec": {"displayName": "G"}}
    if status is not None:
        obj["status"] = status
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return loaded


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (STATUS, orjson.dumps(STATUS)),  # packed: its JSON bytes
        ({}, {}),  # nothing to pack
        (None, None),  # no status at all: none added
    ],
)
def test_pack_status_keeps_the_status_as_its_json(status: Any, kept: Any) -> None:
    obj = _obj(status)
    assert pack_status(obj) is obj  # in place, as Slim
    assert obj.get("status") == kept
    assert obj["spec"] == {"displayName": "G"} and obj["metadata"]["name"] == "g"


def test_a_packed_status_costs_about_its_json() -> None:
    """orjson's own result keeps the whole buffer it wrote into (4 KB for a 547-byte status,
    twice what the decoded dicts cost): the packed copy is the JSON's size."""
    objs = [_obj(STATUS) for _ in range(200)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for obj in objs:
            pack_status(obj)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # only what pack_status allocated: the whole suite's other threads allocate meanwhile
    # (a CI run saw 269 bytes per object from all files)
    own = [tracemalloc.Filter(True, cached_status.__file__)]
    diff = after.filter_traces(own).compare_to(before.filter_traces(own), "filename")
    grown = sum(stat.size_diff for stat in diff) / len(objs)
    assert len(orjson.dumps(STATUS)) <= grown < len(orjson.dumps(STATUS)) + 100  # counted, and no more


@pytest.mark.parametrize("status", [STATUS, {}, None])
def test_drop_status_leaves_the_rest(status: Any) -> None:
    obj = _obj(status)
    assert drop_status(obj) is obj
    assert obj == {"metadata": {"name": "g", "namespace": "ns"}, "spec": {"displayName": "G"}}


@pytest.mark.parametrize(
    "obj",
    [
        pack_status(_obj(STATUS)),  # as the operator's informers cache it
        _obj(STATUS),  # put into a cache without the transform (tests, other callers)
    ],
)
def test_status_of_reads_either_shape_as_a_new_dict(obj: dict[str, Any]) -> None:
    first = status_of(obj)
    assert first == STATUS
    first["memberCount"] = 0  # the caller's to change: the cached object is not
    assert status_of(obj) == STATUS


@pytest.mark.parametrize("obj", [_obj(), _obj({}), {"status": None}])
def test_status_of_an_object_without_status_is_empty(obj: dict[str, Any]) -> None:
    assert status_of(obj) == {}


class Sink:
    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self.upserted: list[dict[str, Any]] = []

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        self.listed = objects

    def upsert(self, plural: str, obj: dict[str, Any]) -> None:
        self.upserted.append(obj)

    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


class Scripted(inf.Informer):
    """Two pages of two groups each, every one with a status (the HTTP part is exercised
    against a real API server in tests/test_informer_pages.py)."""

    def __init__(self, transform: Callable[[dict[str, Any]], dict[str, Any]] | None, log: list[str]) -> None:
        super().__init__(None, "scimgroups", Sink(), transform=transform)  # type: ignore[arg-type]
        self.log = log

    async def _page(self, token: str | None) -> dict[str, Any]:
        n = int(token or 0)
        self.log.append(f"page {n}")
        items = [
            {"metadata": {"name": f"g{n}{i}", "managedFields": [{}]}, "status": dict(STATUS)} for i in (0, 1)
        ]
        more = {"continue": "1"} if n == 0 else {}
        return {"kind": "ScimGroupList", "metadata": {"resourceVersion": "rv", **more}, "items": items}


def _logged(log: list[str], transform: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    def run(obj: dict[str, Any]) -> dict[str, Any]:
        assert "managedFields" not in obj["metadata"]  # after Slim
        log.append(f"transform {obj['metadata']['name']}")
        return transform(obj)

    return run


@pytest.mark.parametrize(
    ("transform", "kept"),
    [
        (pack_status, orjson.dumps(STATUS)),
        (drop_status, None),
    ],
)
def test_the_transform_runs_on_each_item_as_its_page_is_decoded(
    transform: Callable[[dict[str, Any]], dict[str, Any]], kept: Any
) -> None:
    log: list[str] = []
    informer = Scripted(_logged(log, transform), log)
    asyncio.run(informer._list())
    # page 0's items are transformed while page 1 is being fetched, not after the whole list
    assert log == ["page 0", "page 1", "transform g00", "transform g01", "transform g10", "transform g11"]
    listed = informer._sink.listed  # type: ignore[attr-defined]
    assert [o.get("status") for o in listed] == [kept] * 4
    assert [o["kind"] for o in listed] == ["ScimGroup"] * 4


@pytest.mark.parametrize(
    ("transform", "kept"), [(pack_status, orjson.dumps(STATUS)), (drop_status, None), (None, STATUS)]
)
def test_a_watch_event_is_transformed_too(
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None, kept: Any
) -> None:
    informer = Scripted(transform, [])
    event = {
        "type": "MODIFIED",
        "object": {"metadata": {"name": "g", "resourceVersion": "7"}, "status": dict(STATUS)},
    }
    assert informer._handle(event, "6") == "7"
    assert [o.get("status") for o in informer._sink.upserted] == [kept]  # type: ignore[attr-defined]
