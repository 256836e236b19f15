"""What an informer's cache keeps of an object's ``status``, decided per informer by the
composition root and applied to each object as it is decoded (``Informer(transform=…)``: per
item of each list page and per watch event), so a list never holds the decoded statuses of
every object at once.

- The operator packs a group's and a user's status (``pack_status``): only that object's own
  reconcile reads it (to write nothing when nothing changed), so it stays as its JSON bytes
  until then. Decoded, 100,000 groups' and users' statuses were the largest part of the
  operator's memory at that scale (docs/operator.md "What the cache keeps").
- The API drops it (``drop_status``): the operator's status is never served over SCIM.

Readers of a cached group's or user's status go through ``status_of``, which takes either
shape (an object put into a cache by other means keeps its status as a dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

Obj = dict[str, Any]


def pack_status(obj: Obj) -> Obj:
    """``obj`` (changed in place, as ``Slim`` does) with its status as its JSON bytes."""
    status = obj.get("status")
    if isinstance(status, dict) and status:
        # copied to a bytes object of its own size: orjson's result keeps the whole buffer it
        # wrote into (4 KB for a 547-byte status, more than the decoded dicts: 1.9 KB)
        obj["status"] = bytes(memoryview(orjson.dumps(status)))
    return obj


def drop_status(obj: Obj) -> Obj:
    """``obj`` (changed in place) without its status."""
    obj.pop("status", None)
    return obj


def status_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A cached object's status as a new dict (the caller's to change), packed or not."""
    status = obj.get("status")
    if isinstance(status, bytes):
        unpacked: dict[str, Any] = orjson.loads(status)
        return unpacked
    return dict(status or {})
