"""SCIM filter expressions (RFC 7644 §3.4.2.2): parse once, evaluate against resources.

Parsing is scim2-models' (its lark grammar handles quoting, escapes and case-insensitive
operators); its AST is converted to the small dataclasses below, with attribute paths
lowercased, so query planning (index lookups) and evaluation stay pure and fast.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import scim2_models.path as sp
from scim2_models import InvalidFilterException, ScimFilter

from ..errors import invalid_filter

COMPARISONS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32


@dataclass(frozen=True)
class Compare:
    attr: str  # lowercase dotted path, URN prefix removed, e.g. "displayname", "members.value"
    op: str  # one of COMPARISONS, or "pr"
    value: Any = None


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    attr: str  # lowercase multi-valued attribute, e.g. "members"
    inner: Node  # evaluated against each element


Node = Compare | And | Or | Not | ValuePath

CORE_URNS = (
    "urn:ietf:params:scim:schemas:core:2.0:group:",
    "urn:ietf:params:scim:schemas:core:2.0:user:",
)


def normalize_attr(name: str) -> str:
    """Lowercase an attribute path and drop a core-schema URN prefix."""
    lowered = name.lower()
    for urn in CORE_URNS:
        if lowered.startswith(urn):
            return lowered[len(urn) :]
    return lowered


def _attr(path: sp.AttrPath) -> str:
    if path.uri and path.uri.lower() + ":" not in CORE_URNS:
        raise invalid_filter(f"Filtering on extension attributes ({path.uri}) is not supported")
    name = path.attr.lower()
    return f"{name}.{path.sub_attr.lower()}" if path.sub_attr else name


def _convert(node: Any, depth: int = 0) -> Node:
    """scim2-models' filter AST → ours (lowercase attribute paths, binary and/or)."""
    if depth > MAX_DEPTH:
        raise invalid_filter("Filter nested too deeply")
    if isinstance(node, sp.Comparison):
        return Compare(_attr(node.attr_path), node.op.value.lower(), node.value)
    if isinstance(node, sp.Present):
        return Compare(_attr(node.attr_path), "pr")
    if isinstance(node, sp.Not):
        return Not(_convert(node.expr, depth + 1))
    if isinstance(node, sp.LogicalExpr):
        terms = [_convert(t, depth + 1) for t in node.terms]
        combine = And if node.op is sp.LogicalOperator.and_ else Or
        result = terms[0]
        for term in terms[1:]:
            result = combine(result, term)
        return result
    if isinstance(node, sp.ValuePath):
        if node.sub_attr:
            raise invalid_filter("A sub-attribute after ']' is only valid in PATCH paths")
        return ValuePath(_attr(node.attr_path), _convert(node.val_filter, depth + 1))
    raise invalid_filter("Unsupported filter expression")


#: ``attr eq "plain string"``, the shape IdPs send most (``userName eq "…"``, and in PATCH
#: paths ``members[value eq "…"]``, up to 1,000 distinct ones per request). It is read
#: without the grammar, which costs about half a millisecond per distinct filter; anything
#: with escapes, other operators or more terms goes through scim2-models' grammar.
_SIMPLE_EQ = re.compile(
    r' *([A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z][A-Za-z0-9_-]*)?) +[eE][qQ] +"([^"\\\x00-\x1f]*)" *'
)


@functools.lru_cache(maxsize=4096)
def parse_filter(text: str) -> Node:
    """Parse a filter with scim2-models' RFC 7644 grammar; raises a 400 ``invalidFilter``.

    Cached: IdPs repeat the same few filter shapes, and the AST is immutable."""
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"Filter longer than {MAX_FILTER_LENGTH} characters")
    simple = _SIMPLE_EQ.fullmatch(text)
    if simple is not None:
        return Compare(simple.group(1).lower(), "eq", simple.group(2))
    return parse_with_grammar(text)


def parse_with_grammar(text: str) -> Node:
    """Any filter, through scim2-models' grammar (``parse_filter`` without its fast path)."""
    if not text.strip():
        raise invalid_filter("Empty filter")
    try:
        ast = ScimFilter(text).ast
    except InvalidFilterException as exc:
        raise invalid_filter(f"Invalid filter: {exc.detail}") from exc
    except RecursionError as exc:
        raise invalid_filter("Filter nested too deeply") from exc
    return _convert(ast)


# ------------------------------------------------------------------------------ evaluation


def _compare(actual: Any, op: str, expected: Any, case_exact: bool) -> bool:
    if op == "pr":
        return actual is not None and actual != "" and actual != [] and actual != {}
    if actual is None:
        return op == "ne" and expected is not None
    if isinstance(actual, str) and isinstance(expected, str):
        a, e = (actual, expected) if case_exact else (actual.lower(), expected.lower())
    else:
        a, e = actual, expected
    try:
        match op:
            case "eq":
                return bool(a == e)
            case "ne":
                return bool(a != e)
            case "co":
                return isinstance(a, str) and isinstance(e, str) and e in a
            case "sw":
                return isinstance(a, str) and isinstance(e, str) and a.startswith(e)
            case "ew":
                return isinstance(a, str) and isinstance(e, str) and a.endswith(e)
            case "gt":
                return bool(a > e)
            case "ge":
                return bool(a >= e)
            case "lt":
                return bool(a < e)
            case "le":
                return bool(a <= e)
    except TypeError:
        return False
    return False


def _values(resource: dict[str, Any], path: str) -> list[Any]:
    """All values at a dotted lowercase path (multi-valued attributes flatten)."""
    current: list[Any] = [resource]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict):
                for key, value in item.items():
                    if key.lower() == part:
                        if isinstance(value, list):
                            nxt.extend(value)
                        else:
                            nxt.append(value)
                        break
        current = nxt
    return current


def matches(node: Node, resource: dict[str, Any], case_exact: frozenset[str] = frozenset()) -> bool:
    """Does ``resource`` (a SCIM JSON object) satisfy the filter?"""
    if isinstance(node, And):
        return matches(node.left, resource, case_exact) and matches(node.right, resource, case_exact)
    if isinstance(node, Or):
        return matches(node.left, resource, case_exact) or matches(node.right, resource, case_exact)
    if isinstance(node, Not):
        return not matches(node.inner, resource, case_exact)
    if isinstance(node, ValuePath):
        return any(
            isinstance(el, dict) and matches(node.inner, el, case_exact)
            for el in _values(resource, node.attr)
        )
    values = _values(resource, node.attr)
    exact = node.attr in case_exact
    if node.op == "pr":
        return any(_compare(v, "pr", None, exact) for v in values)
    if not values:
        return _compare(None, node.op, node.value, exact)
    return any(_compare(v, node.op, node.value, exact) for v in values)
