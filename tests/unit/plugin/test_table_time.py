"""Plain tables and human times of ``kubectl scim``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scim_kubectl import table
from scim_kubectl.timefmt import relative, span

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_table_aligns_columns_without_trailing_spaces() -> None:
    out = table.render(["NAME", "X"], [["a", ""], ["longer", "yes"]])
    assert out.splitlines() == ["NAME    X", "a", "longer  yes"]


def test_table_with_no_rows_is_the_header() -> None:
    assert table.render(["A", "BB"], []) == "A  BB"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (0.5, "0s"), (1, "1s"), (59, "59s"), (90, "1m"), (3600, "1h"), (86399, "23h"),
     (90 * 86400, "90d"), (-120, "2m")],
)  # fmt: skip
def test_span(seconds: float, expected: str) -> None:
    assert span(seconds) == expected


@pytest.mark.parametrize(
    ("when", "missing", "expected"),
    [
        (None, "-", "-"),
        (None, "never", "never"),
        (NOW + timedelta(days=89, hours=3), "-", "in 89d"),
        (NOW - timedelta(minutes=5), "-", "5m ago"),
        (NOW, "-", "0s ago"),
    ],
)
def test_relative(when: datetime | None, missing: str, expected: str) -> None:
    assert relative(when, NOW, missing) == expected
