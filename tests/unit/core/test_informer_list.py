"""The informer's list: pages asked for one ahead, no garbage collection while a page is
decoded and cached, nothing left in flight when a list fails."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from scim_core import informer as inf
from scim_core.listing import Listing


class Cyclic:
    """A weakly referenceable object in a reference cycle."""

    def __init__(self, cycle: list[Any]) -> None:
        self.cycle = cycle
        cycle.append(self)


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_sections_nest_and_restore_the_collector_as_they_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        first, second = inf.gc_paused(), inf.gc_paused()
        first.__enter__()
        second.__enter__()  # a second informer's list opens while the first is open
        assert not gc.isenabled()
        first.__exit__(None, None, None)  # the first ends first: still paused for the second
        assert not gc.isenabled()
        kept = [object()]  # a container allocated while paused, alive when the last closes
        garbage: list[Any] = []
        garbage.append(garbage)  # a cycle left by someone else meanwhile
        cycle = weakref.ref(Cyclic(garbage))
        del garbage
        second.__exit__(None, None, None)
        assert gc.isenabled() is enabled
        assert cycle() is None  # collected before the freeze, not frozen for good
        assert gc.get_freeze_count() >= len(kept)  # what lives is out of the collector's way
        with pytest.raises(RuntimeError), inf.gc_paused():
            raise RuntimeError("boom")
        assert gc.isenabled() is enabled
    finally:
        gc.unfreeze()  # this test process's objects back in the collector's generations
        (gc.enable if was else gc.disable)()


def test_the_collector_is_paused_while_a_list_runs() -> None:
    seen: list[bool] = []

    class Watching(Paged):
        def _logged_slim(self, obj: dict[str, Any]) -> dict[str, Any]:
            seen.append(gc.isenabled())
            return obj

    was = gc.isenabled()
    gc.enable()
    try:
        asyncio.run(Watching(2, [])._list())
        assert seen == [False, False] and gc.isenabled()
    finally:
        gc.unfreeze()  # this test process's objects back in the collector's generations
        (gc.enable if was else gc.disable)()


class Sink:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.objects: list[dict[str, Any]] = []

    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None:
        self.log.append(f"replace {len(objects)}")
        self.objects = objects

    def upsert(self, plural: str, obj: dict[str, Any]) -> None: ...
    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


class Paged(inf.Informer):
    """An informer whose pages come from a script (the HTTP part is exercised against a real
    API server in tests/test_informer_pages.py); ``fail`` makes that page raise."""

    def __init__(
        self,
        pages: int,
        log: list[str],
        fail: dict[int, Exception] | None = None,
        kept: dict[str, dict[str, Any]] | None = None,
        listing: Callable[[str], Listing] | None = None,
    ) -> None:
        found = kept or {}
        super().__init__(
            None,  # type: ignore[arg-type]
            "scimgroups",
            Sink(log),
            kept=lambda _p, o: found.get(o["metadata"]["name"]),
            listing=listing,
        )
        self.pages, self.log, self.fail = pages, log, fail or {}
        self.cancelled: list[int] = []
        self._slim = self._logged_slim  # type: ignore[assignment]

    def _logged_slim(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.log.append(f"slim {obj['metadata']['name']}")
        return obj

    async def _page(self, token: str | None) -> dict[str, Any]:
        n = int(token or 0)
        self.log.append(f"ask {n}")
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.append(n)
            raise
        if n in self.fail:
            raise self.fail[n]
        more = {"continue": str(n + 1)} if n + 1 < self.pages else {}
        return {"kind": "ScimGroupList", "metadata": {"resourceVersion": f"rv{n}", **more},
                "items": [{"metadata": {"name": f"p{n}", "resourceVersion": f"{n + 1}"}}]}  # fmt: skip


def test_the_next_page_is_asked_for_before_this_one_is_cached() -> None:
    log: list[str] = []
    informer = Paged(3, log)
    assert asyncio.run(informer._list()) == "rv2"
    assert log == ["ask 0", "ask 1", "slim p0", "ask 2", "slim p1", "slim p2", "replace 3"]
    assert informer.lists == 1 and informer.health.silent_for() < 60
    assert [o["kind"] for o in informer._sink.objects] == ["ScimGroup"] * 3  # type: ignore[attr-defined]


class Logged:
    """A sink's listing that logs what it is handed."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def add(self, objects: list[dict[str, Any]]) -> None:
        self.log.append("add " + " ".join(o["metadata"]["name"] for o in objects))

    def done(self) -> None:
        self.log.append("done")


def test_each_page_goes_to_the_sinks_listing_as_it_arrives() -> None:
    log: list[str] = []
    informer = Paged(3, log, listing=lambda plural: Logged(log))
    assert asyncio.run(informer._list()) == "rv2"
    assert log == [
        "ask 0",
        "ask 1",
        "slim p0",
        "add p0",
        "ask 2",
        "slim p1",
        "add p1",
        "slim p2",
        "add p2",
        "done",
    ]


def test_a_pages_young_garbage_is_collected_when_the_page_is_done() -> None:
    """The collector stays off during the list, but the cycles a page left behind are gone
    before the next page is cached, not all at the end of the list."""
    left: list[weakref.ref[Cyclic]] = []
    alive_at: list[list[bool]] = []

    class Littering(Paged):
        def _logged_slim(self, obj: dict[str, Any]) -> dict[str, Any]:
            alive_at.append([ref() is not None for ref in left])
            left.append(weakref.ref(Cyclic([])))
            return obj

    was = gc.isenabled()
    gc.enable()
    try:
        asyncio.run(Littering(3, [])._list())
        assert alive_at == [[], [False], [False, False]]
        assert all(ref() is None for ref in left) and gc.isenabled()
    finally:
        gc.unfreeze()  # this test process's objects back in the collector's generations
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("error", [inf._Gone(), RuntimeError("list: HTTP 500")])
def test_a_page_that_fails_fails_the_list_and_nothing_is_cached(error: Exception) -> None:
    log: list[str] = []
    with pytest.raises(type(error)):
        asyncio.run(Paged(4, log, {2: error})._list())
    assert "replace" not in " ".join(log) and "ask 3" not in log


def test_a_list_that_stops_half_way_leaves_no_request_in_flight() -> None:
    log: list[str] = []
    informer = Paged(3, log)

    def broken(obj: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("cannot cache this")

    informer._slim = broken  # type: ignore[assignment]
    with pytest.raises(ValueError, match="cannot cache"):
        asyncio.run(informer._list())
    assert informer.cancelled == [1]  # page 1 was in flight: cancelled and awaited


def test_slim_keeps_a_one_key_member_without_value_as_it_is() -> None:
    """Members of one key each take the fast path only when that key is ``value``."""
    slim = inf.Slim()
    slim({"metadata": {"name": "a"}, "spec": {"members": [{"value": "u1"}]}})
    odd = {"display": "no value"}
    b = slim({"metadata": {"name": "b"}, "spec": {"members": [{"value": "u1"}, odd]}})
    assert b["spec"]["members"] == [{"value": "u1"}, odd] and b["spec"]["members"][1] is odd


@pytest.mark.parametrize(
    ("cached", "reused"),
    [
        ({"metadata": {"name": "p0", "resourceVersion": "1"}}, True),  # the listed version
        ({"metadata": {"name": "p0", "resourceVersion": "0"}}, False),  # an older one
        ({"metadata": {"name": "p0"}}, False),  # no version to compare
        (None, False),  # not cached
    ],
)
def test_a_relist_keeps_the_sinks_copy_of_an_object_at_the_listed_version(
    cached: dict[str, Any] | None, reused: bool
) -> None:
    """After ``410 Gone`` the list holds the sink's object itself, not a second decoded copy,
    when nothing changed it; the first list never asks (the sink is empty then)."""
    log: list[str] = []
    informer = Paged(2, log, kept={"p0": cached} if cached is not None else {})
    asyncio.run(informer._list())
    assert [line for line in log if line.startswith("slim")] == ["slim p0", "slim p1"]
    log.clear()
    asyncio.run(informer._list())
    assert [line for line in log if line.startswith("slim")] == ([] if reused else ["slim p0"]) + ["slim p1"]
    first = informer._sink.objects[0]  # type: ignore[attr-defined]
    assert (first is cached) is reused and first["metadata"]["name"] == "p0"
    assert informer.lists == 2
