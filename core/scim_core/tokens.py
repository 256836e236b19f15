"""Workspace bearer tokens: generation, strength checks, hashing, durations.

Shared by the operator (which generates tokens and publishes hashes) and the API (which
authenticates against those hashes). The token itself never leaves its Secret.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections import Counter
from datetime import timedelta

TOKEN_PREFIX = "scim_"
TOKEN_BYTES = 32  # 256 random bits
MIN_TOKEN_LENGTH = 32
MIN_ENTROPY_BITS = 128.0

#: Longest duration a workspace may set (100 years): every expiry stays a representable date.
MAX_DURATION_DAYS = 36500

_DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def generate_token() -> str:
    """A new URL-safe token carrying 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(sha256_hex: str) -> str:
    """A short, public handle for a token (safe to show in status and logs)."""
    return "sha256:" + sha256_hex[:16]


def estimated_entropy_bits(token: str) -> float:
    """Shannon entropy of the characters times the length: a cheap upper bound that
    catches short, repetitive or low-variety hand-made tokens."""
    if not token:
        return 0.0
    counts = Counter(token)
    n = len(token)
    per_char = -sum((k / n) * math.log2(k / n) for k in counts.values())
    return per_char * n


def weakness(token: str) -> str | None:
    """Why a token is too weak to accept, or None when it is acceptable."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"token is {len(token)} characters long; at least {MIN_TOKEN_LENGTH} are required"
    if not token.isprintable() or any(ch.isspace() for ch in token):
        return "token contains whitespace or control characters"
    bits = estimated_entropy_bits(token)
    if bits < MIN_ENTROPY_BITS:
        return f"token has about {bits:.0f} bits of entropy; at least {MIN_ENTROPY_BITS:.0f} are required"
    return None


def parse_duration(text: str) -> timedelta:
    """Parse the CRD's duration strings: ``90d``, ``24h``, ``30m``, ``45s``."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}; use a number followed by s, m, h or d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION_DAYS * _UNITS["d"]:
        raise ValueError(f"duration {text!r} is longer than the maximum {MAX_DURATION_DAYS}d")
    return timedelta(seconds=seconds)
