"""Query planning and pagination for list requests (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import bad_request, invalid_filter
from .filters import And, Compare, Node, Not, Or, ValuePath, matches

#: Filterable attributes (lowercase dotted), per resource type. Others get invalidFilter.
GROUP_FILTER_ATTRS = frozenset(
    {
        "id",
        "displayname",
        "externalid",
        "members",
        "members.value",
        "members.display",
        "meta.created",
        "meta.lastmodified",
    }
)
USER_FILTER_ATTRS = frozenset(
    {
        "id", "username", "externalid", "displayname", "active", "emails", "emails.value", "emails.type",
        "name.givenname", "name.familyname", "name.formatted", "meta.created", "meta.lastmodified",
    }
)  # fmt: skip


def check_attributes(node: Node, allowed: frozenset[str], prefix: str = "") -> None:
    if isinstance(node, And | Or):
        check_attributes(node.left, allowed, prefix)
        check_attributes(node.right, allowed, prefix)
    elif isinstance(node, Not):
        check_attributes(node.inner, allowed, prefix)
    elif isinstance(node, ValuePath):
        if prefix + node.attr not in allowed:
            raise invalid_filter(f"Filtering on {node.attr!r} is not supported")
        check_attributes(node.inner, allowed, prefix + node.attr + ".")
    elif prefix + node.attr not in allowed:
        raise invalid_filter(f"Filtering on {(prefix + node.attr)!r} is not supported")


def references(node: Node, attr: str) -> bool:
    """Does the filter look at ``attr`` (or one of its sub-attributes)?"""
    if isinstance(node, And | Or):
        return references(node.left, attr) or references(node.right, attr)
    if isinstance(node, Not):
        return references(node.inner, attr)
    return node.attr == attr or node.attr.startswith(attr + ".")


def candidates(node: Node, lookup: Callable[[str, str], set[str] | None]) -> set[str] | None:
    """Ids that may match, from equality indexes; None when the filter needs a full scan.

    ``lookup(attr, value)`` returns the ids whose ``attr`` equals ``value``
    case-insensitively, or None when ``attr`` has no index."""
    if isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str):
        return lookup(node.attr, node.value)
    if isinstance(node, And):
        left = candidates(node.left, lookup)
        right = candidates(node.right, lookup)
        if left is None:
            return right
        return left if right is None else left & right
    if isinstance(node, Or):
        left = candidates(node.left, lookup)
        right = candidates(node.right, lookup)
        return None if left is None or right is None else left | right
    return None


def select(
    node: Node,
    all_ids: list[str],
    lookup: Callable[[str, str], set[str] | None],
    resource_of: Callable[[str], dict[str, Any] | None],
    case_exact: frozenset[str],
) -> list[str]:
    """Ids matching the filter, in listing order: index candidates when the filter allows,
    else every id; each candidate is checked against its SCIM JSON."""
    found = candidates(node, lookup)
    pool = sorted(found) if found is not None else all_ids
    return [i for i in pool if (r := resource_of(i)) is not None and matches(node, r, case_exact)]


def _int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise bad_request(f"'{name}' must be an integer") from exc


def paging(start_index: str | None, count: str | None, max_results: int) -> tuple[int, int]:
    """1-based startIndex (below 1 means 1) and count (negative means 0, capped at max)."""
    start = _int(start_index, "startIndex")
    n = _int(count, "count")
    start = 1 if start is None or start < 1 else start
    n = max_results if n is None else max(0, min(n, max_results))
    return start, n
