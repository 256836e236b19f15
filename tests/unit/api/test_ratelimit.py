"""The per-token token bucket (``ratelimit.py``)."""

from __future__ import annotations


def test_rate_limiter_bucket() -> None:
    from scim_api.ratelimit import RateLimiter

    rl = RateLimiter(rate=2.0, burst=3)
    assert [rl.retry_after("t", now=0.0) for _ in range(3)] == [None, None, None]
    assert rl.retry_after("t", now=0.0) == 1
    assert rl.retry_after("other", now=0.0) is None  # per token
    assert rl.retry_after("t", now=0.6) is None  # refilled
