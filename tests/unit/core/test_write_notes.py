"""Write notes: their shape in the workspace status and the version order both sides share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_core import constants as c
from scim_core.informer import WatchHealth
from scim_core.resources import ScimWorkspaceStatus
from scim_core.write_notes import (
    FIELD,
    LIMIT,
    STALE_AFTER,
    Note,
    appended,
    notes_in,
    older,
    stale_replicas,
    status_patch,
)

G, U = c.GROUP_PLURAL, c.USER_PLURAL


def test_appended_keeps_one_note_per_object_newest_last_and_the_last_limit() -> None:
    notes = appended([], [Note(G, "a", "1"), Note(U, "a", "2"), Note(G, "b", "3")])
    assert appended(notes, [Note(G, "a", "4")]) == [Note(U, "a", "2"), Note(G, "b", "3"), Note(G, "a", "4")]
    many = appended([], [Note(G, f"g{i}", str(i)) for i in range(LIMIT + 10)])
    assert len(many) == LIMIT and many[0].name == "g10" and many[-1].name == f"g{LIMIT + 9}"
    assert appended(many, [], limit=2) == many[-2:]


def test_a_status_patch_sets_or_removes_one_replicas_notes_and_validates() -> None:
    patch = status_patch("api-1", [Note(G, "g1", "7", "2026-11-29T10:00:00Z")])
    entry = {"kind": G, "name": "g1", "resourceVersion": "7", "time": "2026-11-29T10:00:00Z"}
    assert patch == {FIELD: {"api-1": [entry]}}
    stored = ScimWorkspaceStatus.model_validate(patch).model_dump(mode="json", exclude_none=True)
    assert stored == patch
    assert status_patch("api-1", None, ["api-0"]) == {FIELD: {"api-0": None, "api-1": None}}


def test_a_deletion_is_marked_and_read_back_so() -> None:
    """A deletion names the version before it: only the mark tells it from the last change."""
    gone = Note(G, "g1", "7", "2026-11-29T10:00:00Z", deleted=True)
    patch = status_patch("api-1", [gone, Note(U, "u1", "8", "2026-11-29T10:00:00Z")])
    assert [e.get("deleted") for e in patch[FIELD]["api-1"]] == [True, None]  # absent unless deleted
    stored = ScimWorkspaceStatus.model_validate(patch).model_dump(mode="json", exclude_none=True)
    assert stored == patch
    assert [n.deleted for n in notes_in(stored)] == [True, False]
    assert [n.deleted for n in notes_in({FIELD: {"a": [{"kind": G, "name": "g", "deleted": "yes"}]}})] == [
        False
    ]


NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _at(moment: datetime) -> dict[str, str]:
    return {"kind": G, "name": "g", "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.mark.parametrize(
    ("by_replica", "stale"),
    [
        (None, []),
        ("junk", []),
        ({"me": [_at(NOW - 2 * STALE_AFTER)]}, []),  # its own: removed by itself
        ({"a": [_at(NOW - STALE_AFTER), _at(NOW - timedelta(minutes=59))]}, []),  # the newest counts
        ({"a": [_at(NOW - STALE_AFTER)], "b": [_at(NOW)]}, ["a"]),
        ({"a": [{"kind": G, "name": "g"}], "b": None, "c": ["junk"]}, ["a", "b", "c"]),  # no time at all
    ],
)
def test_other_replicas_notes_are_stale_once_their_newest_is_an_hour_old(
    by_replica: Any, stale: list[str]
) -> None:
    status = None if by_replica is None else {FIELD: by_replica}
    assert stale_replicas(status, "me", NOW) == stale


@pytest.mark.parametrize(
    ("status", "notes"),
    [
        (None, []),
        ({}, []),
        ({FIELD: "junk"}, []),
        ({FIELD: {"a": "junk"}}, []),
        ({FIELD: {"a": [{"kind": "secrets", "name": "x"}, "junk", {"kind": G}]}}, []),
        (
            {FIELD: {"a": [{"kind": G, "name": "g1", "resourceVersion": "5"}], "b": None}},
            [Note(G, "g1", "5")],
        ),
        (
            {FIELD: {"a": [{"kind": U, "name": "u1", "time": "t"}], "b": [{"kind": G, "name": "g"}]}},
            [Note(U, "u1", "", "t"), Note(G, "g", "")],
        ),
    ],
)
def test_notes_in_reads_every_replicas_well_formed_notes(
    status: dict[str, Any] | None, notes: list[Note]
) -> None:
    assert notes_in(status) == notes


@pytest.mark.parametrize(
    ("version", "than", "is_older"),
    [
        ("9", "10", True),
        ("10", "9", False),
        ("10", "10", False),
        ("", "10", False),
        ("9", None, False),
        ("a", "b", False),
    ],
)
def test_only_numeric_versions_are_ever_called_older(version: str, than: str | None, is_older: bool) -> None:
    assert older(version, than) is is_older


def test_a_watch_is_unwatched_from_its_loss_until_open_again_for_the_grace() -> None:
    clock = [0.0]
    health = WatchHealth(clock=lambda: clock[0])
    assert not health.unwatched(60)  # never lost: a start's first list is no outage
    health.opened()
    health.lost()
    assert health.unwatched(60)
    clock[0] = 100.0
    health.opened()
    clock[0] = 159.0
    health.opened()  # each re-open of a healthy watch keeps its first time
    assert health.unwatched(60)
    clock[0] = 160.0
    assert not health.unwatched(60)
