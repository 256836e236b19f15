"""``If-Match`` (RFC 7644 §3.14, RFC 7232 §3.1) against a resource's weak ETag.

Pure: the caller passes the stored object (and a group's member shards, whose generations
are part of its ETag). A weak tag also matches its strong spelling, since some IdPs drop
the ``W/`` prefix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ScimError
from .resources import etag


class PreconditionFailed(ScimError):
    """412: the resource changed since the client read it."""

    def __init__(self) -> None:
        super().__init__(412, "The resource changed since it was read (If-Match does not match)")


def check_if_match(
    obj: dict[str, Any], if_match: str | None, shards: Sequence[dict[str, Any]] | None = None
) -> None:
    """Raise ``PreconditionFailed`` unless ``If-Match`` is absent, ``*`` or names the
    current version."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {t.strip() for t in if_match.split(",")}
    current = etag(obj, shards or ())
    if current not in wanted and current.removeprefix("W/") not in wanted:
        raise PreconditionFailed()


def if_match_holds(
    obj: dict[str, Any], if_match: str | None, shards: Sequence[dict[str, Any]] | None = None
) -> bool:
    """:func:`check_if_match` as a question (a caller confirms a "no" fresh before a 412)."""
    try:
        check_if_match(obj, if_match, shards)
    except PreconditionFailed:
        return False
    return True
