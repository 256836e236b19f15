"""WriteNoter: writes are named for the operator only while a watch is down (and its grace);
concurrent writes share one status patch; a note never fails a request; a replica's notes
are removed once its watches have been back for the grace."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from scim_api.write_noter import WriteNoter, note
from scim_core import constants as c
from scim_core.informer import WatchHealth
from scim_core.write_notes import Note

G = c.GROUP_PLURAL


class Recording(WriteNoter):
    """Stores nothing: records each status patch (the notes it would set, or None)."""

    def __init__(self, clock: list[float], health: WatchHealth, ok: bool = True) -> None:
        super().__init__(
            api=None,  # type: ignore[arg-type]
            health_of=lambda plural: health if plural == G else None,
            workspace_of=lambda ns: {"metadata": {"name": "ws"}},
            replica="api-1",
            grace=60.0,
            clock=lambda: clock[0],
            now=lambda: datetime(2026, 11, 29, 12, tzinfo=UTC),
        )
        self.patches: list[list[Note] | None] = []
        self.ok = ok

    async def _patch(self, namespace: str, notes: list[Note] | None) -> bool:
        self.patches.append(None if notes is None else list(notes))
        await asyncio.sleep(0.01)  # a patch in flight: others queue behind it
        return self.ok


def written(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


@pytest.fixture
def health(clock: list[float]) -> WatchHealth:
    health = WatchHealth(clock=lambda: clock[0])
    health.opened()
    return health


async def test_nothing_is_noted_while_the_watch_is_open(clock: list[float], health: WatchHealth) -> None:
    noter = Recording(clock, health)
    await noter.wrote("ns", G, written("g1", "5"))
    await noter.wrote("ns", c.USER_PLURAL, written("u1", "6"))  # no informer known: not noted
    assert noter.patches == [] and not noter.wanted(c.WORKSPACE_PLURAL)


async def test_concurrent_writes_while_the_watch_is_down_share_a_patch(
    clock: list[float], health: WatchHealth
) -> None:
    noter = Recording(clock, health)
    health.lost()
    await asyncio.gather(*(noter.wrote("ns", G, written(f"g{i}", str(i))) for i in range(10)))
    assert len(noter.patches) == 2  # the first alone, the nine that queued behind it together
    assert [n.name for n in noter.patches[-1] or []] == [f"g{i}" for i in range(10)]
    clock[0] = 10.0
    health.opened()  # back: still noted for the grace (the operator may still be relisting)
    await note(noter, "ns", G, written("g1", "20"))
    assert (noter.patches[-1] or [])[-1] == Note(G, "g1", "20", "2026-11-29T12:00:00Z") and len(
        noter.patches[-1] or []
    ) == 10
    await note(None, "ns", G, written("g1", "21"))  # a store built without a noter


async def test_a_note_not_stored_fails_no_request_and_the_next_write_stores_all(
    clock: list[float], health: WatchHealth
) -> None:
    noter = Recording(clock, health, ok=False)
    health.lost()
    await noter.wrote("ns", G, written("g1", "5"))
    noter.ok = True
    await noter.wrote("ns", G, written("g2", "6"))
    assert [n.name for n in noter.patches[-1] or []] == ["g1", "g2"]


async def test_notes_are_removed_once_the_watch_and_the_last_note_are_a_grace_old(
    clock: list[float], health: WatchHealth
) -> None:
    noter = Recording(clock, health)
    await noter.clear()  # nothing noted: nothing to remove
    health.lost()
    await noter.wrote("ns", G, written("g1", "5"))
    await noter.clear()
    clock[0] = 30.0
    health.opened()
    await noter.wrote("ns", G, written("g2", "6"))
    clock[0] = 89.0
    await noter.clear()  # the watch is back for 59 s
    assert noter.patches[-1] is not None
    clock[0] = 95.0
    await noter.clear()
    assert noter.patches[-1] is None
    patches = len(noter.patches)
    await noter.clear()
    assert len(noter.patches) == patches


async def noted_then_watched(clock: list[float], health: WatchHealth) -> Recording:
    """A noter that noted one write while the watch was down, the watch back long since."""
    noter = Recording(clock, health)
    health.lost()
    await noter.wrote("ns", G, written("g1", "5"))
    health.opened()
    clock[0] = 200.0
    return noter


async def test_a_failed_removal_is_tried_again(clock: list[float], health: WatchHealth) -> None:
    noter = await noted_then_watched(clock, health)
    noter.ok = False
    await noter.clear()
    noter.ok = True
    await noter.clear()
    assert noter.patches[-2:] == [None, None]


async def test_a_patch_without_a_workspace_or_an_api_server_fails_quietly() -> None:
    lonely = WriteNoter(None, lambda p: None, lambda ns: None, replica="r")  # type: ignore[arg-type]
    assert not await lonely._patch("ns", [])
    broken = WriteNoter(object(), lambda p: None, lambda ns: {"metadata": {"name": "ws"}})  # type: ignore[arg-type]
    assert not await broken._patch("ns", [])


async def test_run_clears_each_period(clock: list[float], health: WatchHealth) -> None:
    noter = await noted_then_watched(clock, health)
    task = asyncio.create_task(noter.run(period=0.001))
    for _ in range(50):
        await asyncio.sleep(0.005)
        if noter.patches[-1] is None:
            break
    task.cancel()
    assert noter.patches[-1] is None
