"""KEP-1623 conditions: transitions keep their time unless the status changes."""

from __future__ import annotations

from typing import Any

import pytest

from scim_operator.conditions import same_conditions, set_condition

OLD = "2020-01-01T00:00:00Z"


def _cond(type_: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": "R",
        "message": "m",
        "lastTransitionTime": OLD,
        **extra,
    }


@pytest.mark.parametrize(
    ("existing", "status", "keeps_time"),
    [
        ([_cond("Ready", "True")], True, True),  # same status: time kept
        ([_cond("Ready", "True")], False, False),  # flipped: new time
        ([_cond("Ready", "True")], None, False),  # Unknown
        ([], True, False),  # new condition
        ([{"type": "Ready", "status": "True"}], True, False),  # no time recorded: set one
    ],
)
def test_transition_time(existing: list[dict[str, Any]], status: bool | None, keeps_time: bool) -> None:
    out = set_condition(existing, "Ready", status, "Why", "msg", 3)
    (ready,) = out
    assert (ready["lastTransitionTime"] == OLD) is keeps_time
    assert ready["status"] == {True: "True", False: "False", None: "Unknown"}[status]
    assert ready["observedGeneration"] == 3 and ready["reason"] == "Why"


def test_other_conditions_kept_sorted_and_input_untouched() -> None:
    existing = [_cond("Synced", "True"), _cond("Ready", "False")]
    out = set_condition(existing, "Ready", True, "Ok", "x" * 40000, None)
    assert [c["type"] for c in out] == ["Ready", "Synced"]
    assert "observedGeneration" not in out[0] and len(out[0]["message"]) == 32768
    assert existing[1]["status"] == "False"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (None, [], True),
        ([_cond("A", "True"), _cond("B", "True")], [_cond("B", "True"), _cond("A", "True")], True),
        ([_cond("A", "True")], [_cond("A", "False")], False),
    ],
)
def test_same_conditions_ignores_order(
    a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None, same: bool
) -> None:
    assert same_conditions(a, b) is same
