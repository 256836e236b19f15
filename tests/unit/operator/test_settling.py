"""Grants wait for a group's changes to settle; the wait is bounded, and 0 turns it off."""

from __future__ import annotations

import pytest

from scim_operator.settling import Settling, settle

QUIET, LONGEST = 0.25, 2.0


def test_a_first_grant_waits_the_quiet_time() -> None:
    wait, state = settle(None, 1, 100.0, QUIET, LONGEST)
    assert wait == pytest.approx(QUIET) and state == Settling(1, 100.0, 100.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [(100.1, 0.15), (100.2, 0.05), (100.25, 0.0), (100.9, 0.0)],
)
def test_the_same_plan_waits_out_the_rest(now: float, expected: float) -> None:
    wait, state = settle(Settling(1, 100.0, 100.0), 1, now, QUIET, LONGEST)
    assert wait == pytest.approx(expected)
    assert (state is None) == (expected == 0.0)  # forgotten once it writes


def test_a_changed_plan_starts_the_quiet_time_again_but_keeps_its_start() -> None:
    wait, state = settle(Settling(1, 100.0, 100.0), 2, 100.2, QUIET, LONGEST)
    assert wait == pytest.approx(QUIET) and state == Settling(2, 100.2, 100.0)


@pytest.mark.parametrize(("now", "expected"), [(101.9, 0.1), (102.0, 0.0), (105.0, 0.0)])
def test_a_group_that_keeps_changing_waits_no_longer_than_longest(now: float, expected: float) -> None:
    """A new plan every 0.2 s would wait for ever: the wait ends ``longest`` after it began."""
    wait, state = settle(Settling(1, now - 0.1, 100.0), 2, now, QUIET, LONGEST)
    assert wait == pytest.approx(expected)
    assert (state is None) == (expected == 0.0)


def test_zero_quiet_time_never_waits() -> None:
    assert settle(None, 1, 100.0, 0.0, LONGEST) == (0.0, None)
    assert settle(Settling(1, 100.0, 100.0), 1, 100.0, 0.0, LONGEST) == (0.0, None)
