"""Token strength: the entropy estimate behind ``weakness``."""

from __future__ import annotations

import math

import pytest

from scim_core import tokens


@pytest.mark.parametrize(
    ("token", "bits"),
    [
        ("", 0.0),  # nothing to measure
        ("a", 0.0),
        ("aaaaaaaa", 0.0),  # one symbol carries no information
        ("ab", 2.0),
        ("abcd", 8.0),
        ("aabb", 4.0),
        ("abcdefghijklmnop", 64.0),
    ],
)
def test_estimated_entropy_bits(token: str, bits: float) -> None:
    assert tokens.estimated_entropy_bits(token) == pytest.approx(bits)


def test_generated_tokens_clear_the_entropy_floor() -> None:
    token = tokens.generate_token()
    assert tokens.estimated_entropy_bits(token) >= tokens.MIN_ENTROPY_BITS
    assert tokens.weakness(token) is None
    assert math.isfinite(tokens.estimated_entropy_bits(token))
