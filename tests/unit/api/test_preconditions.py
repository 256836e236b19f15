"""If-Match against weak ETags built from generations (a group's shards count too)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.protocol.preconditions import PreconditionFailed, check_if_match, if_match_holds

OBJ: dict[str, Any] = {"metadata": {"generation": 7}}
SHARDS = [{"metadata": {"generation": 2}}, {"metadata": {"generation": 3}}]


@pytest.mark.parametrize(
    ("if_match", "shards"),
    [
        (None, []),
        ("*", []),
        (" * ", SHARDS),
        ('W/"7"', []),
        ('"7"', []),  # the weak prefix dropped
        ('W/"1", W/"7"', []),
        ('W/"7.5"', SHARDS),
    ],
)
def test_matches(if_match: str | None, shards: list[dict[str, Any]]) -> None:
    check_if_match(OBJ, if_match, shards)
    assert if_match_holds(OBJ, if_match, shards)


@pytest.mark.parametrize(
    ("if_match", "shards"),
    [('W/"6"', []), ('W/"7"', SHARDS), ('W/"7.4"', SHARDS), ("", []), ('W/"8", "9"', [])],
)
def test_mismatch_is_412(if_match: str, shards: list[dict[str, Any]]) -> None:
    with pytest.raises(PreconditionFailed) as err:
        check_if_match(OBJ, if_match, shards)
    assert err.value.status == 412
    assert not if_match_holds(OBJ, if_match, shards)
