"""SCIM filter expressions (RFC 7644 §3.4.2.2): parse once, evaluate against resources.

Parsing: a small recursive-descent parser over a tokenizer that honours quoted strings
with escapes; attribute names and operators are case-insensitive. The AST is plain
dataclasses so planning (index lookups) and evaluation are pure functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

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

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<lbracket>\[) | (?P<rbracket>\]) | (?P<lparen>\() | (?P<rparen>\))
      | (?P<word>[^\s\[\]()"]+)
    )""",
    re.VERBOSE | re.DOTALL,
)

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


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid_filter(f"Cannot parse filter near {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise invalid_filter(f"Filter longer than {MAX_FILTER_LENGTH} characters")
        if not text.strip():
            raise invalid_filter("Empty filter")
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise invalid_filter("Filter ends unexpectedly")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise invalid_filter(f"Unexpected {self.peek()[1]!r} in filter")  # type: ignore[index]
        return node

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid_filter("Filter nested too deeply")

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.keyword("or"):
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.keyword("and"):
            node = And(node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.keyword("not"):
            tok = self.peek()
            if not tok or tok[0] != "lparen":
                raise invalid_filter("'not' must be followed by a parenthesised filter")
            return Not(self.parse_atom())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        kind, text = self.take()
        if kind == "lparen":
            self._nest()
            node = self.parse_or()
            if self.take()[0] != "rparen":
                raise invalid_filter("Missing ')' in filter")
            self.depth -= 1
            return node
        if kind != "word":
            raise invalid_filter(f"Expected an attribute name, got {text!r}")
        attr = normalize_attr(text)
        if not re.fullmatch(r"[a-z$][a-z0-9_$\-]*(\.[a-z$][a-z0-9_$\-]*)?", attr):
            raise invalid_filter(f"Invalid attribute name {text!r}")
        nxt = self.peek()
        if nxt and nxt[0] == "lbracket":
            self.take()
            self._nest()
            inner = self.parse_or()
            if self.take()[0] != "rbracket":
                raise invalid_filter("Missing ']' in filter")
            self.depth -= 1
            return ValuePath(attr, inner)
        op_kind, op = self.take()
        op = op.lower()
        if op_kind != "word" or (op not in COMPARISONS and op != "pr"):
            raise invalid_filter(f"Unknown operator {op!r}")
        if op == "pr":
            return Compare(attr, "pr")
        vkind, vtext = self.take()
        return Compare(attr, op, _literal(vkind, vtext))


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise invalid_filter(f"Invalid string literal {text}") from exc
    if kind == "word":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        try:
            return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        except ValueError:
            pass
    raise invalid_filter(f"Invalid comparison value {text!r}: strings must be quoted")


def parse_filter(text: str) -> Node:
    """Parse a filter string; raises a 400 ``invalidFilter`` ScimError when it is not valid."""
    return _Parser(text).parse()


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
