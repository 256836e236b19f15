"""List requests: filterable attributes, index planning and paging (``protocol/listing.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.filters import And, Compare, Or, parse_filter
from scim_api.protocol.listing import (
    GROUP_FILTER_ATTRS,
    USER_FILTER_ATTRS,
    candidates,
    check_attributes,
    paging,
    references,
    select,
)


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ('displayName eq "x"', GROUP_FILTER_ATTRS),
        ('members[value eq "u1"] or not (externalId pr)', GROUP_FILTER_ATTRS),
        ('members.value eq "u1" and meta.lastModified gt "2020"', GROUP_FILTER_ATTRS),
        ('emails[type eq "work" and value co "@x"]', USER_FILTER_ATTRS),
        ('not (name.givenName sw "A")', USER_FILTER_ATTRS),
    ],
)
def test_allowed_attributes(text: str, allowed: frozenset[str]) -> None:
    assert check_attributes(parse_filter(text), allowed) is None


@pytest.mark.parametrize(
    ("text", "allowed", "named"),
    [
        ('title eq "x"', GROUP_FILTER_ATTRS, "'title'"),
        ('not (title eq "x")', GROUP_FILTER_ATTRS, "'title'"),
        ('displayName eq "x" and title pr', GROUP_FILTER_ATTRS, "'title'"),
        ('emails[value eq "x"]', GROUP_FILTER_ATTRS, "'emails'"),  # the multi-valued attribute
        ('members[type eq "User"]', GROUP_FILTER_ATTRS, "'members.type'"),  # a sub-attribute in it
        ("members pr", USER_FILTER_ATTRS, "'members'"),
    ],
)
def test_other_attributes_are_invalid_filters(text: str, allowed: frozenset[str], named: str) -> None:
    with pytest.raises(ScimError) as err:
        check_attributes(parse_filter(text), allowed)
    assert (err.value.status, err.value.scim_type) == (400, "invalidFilter")
    assert named in err.value.detail


@pytest.mark.parametrize(
    ("text", "attr", "expected"),
    [
        ('members.value eq "u1"', "members", True),
        ('members[value eq "u1"]', "members", True),
        ('membership eq "x"', "members", False),  # a prefix that is not a sub-attribute
        ('displayName eq "x" or not (members pr)', "members", True),
        ('not (displayName eq "x")', "members", False),
        ('displayName eq "x" and externalId pr', "members", False),
        ('displayName eq "x" and externalId pr', "externalid", True),
    ],
)
def test_references(text: str, attr: str, expected: bool) -> None:
    assert references(parse_filter(text), attr) is expected


INDEX = {("username", "ada"): {"u1"}, ("username", "bob"): {"u2"}, ("externalid", "e1"): {"u1", "u3"}}


def _lookup(attr: str, value: str) -> set[str] | None:
    if attr not in {"username", "externalid"}:
        return None
    return set(INDEX.get((attr, value.lower()), set()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "Ada"', {"u1"}),
        ('userName eq "nobody"', set()),
        ('displayName eq "x"', None),  # no index on the attribute
        ("userName eq 5", None),  # only string equality uses the index
        ('userName ne "Ada"', None),
        ('userName eq "Ada" and externalId eq "e1"', {"u1"}),
        ('userName eq "Ada" and displayName eq "x"', {"u1"}),  # one indexed side is enough
        ('displayName eq "x" and externalId eq "e1"', {"u1", "u3"}),
        ('displayName eq "x" and active eq true', None),
        ('userName eq "Ada" or userName eq "Bob"', {"u1", "u2"}),
        ('userName eq "Ada" or displayName eq "x"', None),  # an unindexed side needs a scan
        ('displayName eq "x" or userName eq "Ada"', None),
        ('not (userName eq "Ada")', None),
    ],
)
def test_candidates(text: str, expected: set[str] | None) -> None:
    assert candidates(parse_filter(text), _lookup) == expected


def test_candidates_of_built_trees() -> None:
    ada, bob = Compare("username", "eq", "ada"), Compare("username", "eq", "bob")
    assert candidates(And(ada, bob), _lookup) == set()
    assert candidates(Or(ada, And(bob, Compare("displayname", "pr"))), _lookup) == {"u1", "u2"}


RESOURCES: dict[str, dict[str, Any]] = {
    "u1": {"userName": "ada", "externalId": "e1"},
    "u2": {"userName": "bob"},
    "u3": {"userName": "cy", "externalId": "e1"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ADA"', ["u1"]),
        ('externalId eq "e1"', ["u1", "u3"]),  # index candidates, sorted
        ('userName sw "c" or userName eq "bob"', ["u3", "u2"]),  # full scan, listing order
        ('userName eq "gone"', []),
    ],
)
def test_select(text: str, expected: list[str]) -> None:
    all_ids = ["u3", "u2", "u1", "u4"]  # u4 vanished: no resource
    assert select(parse_filter(text), all_ids, _lookup, RESOURCES.get, frozenset()) == expected


def test_select_honours_case_exact_attributes() -> None:
    node = parse_filter('userName sw "A"')
    assert select(node, ["u1"], _lookup, RESOURCES.get, frozenset()) == ["u1"]
    assert select(node, ["u1"], _lookup, RESOURCES.get, frozenset({"username"})) == []


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (None, None, (1, 100)),
        ("", "", (1, 100)),
        ("0", "10", (1, 10)),
        ("-5", "-1", (1, 0)),
        ("7", "1000", (7, 100)),
        ("3", "0", (3, 0)),
    ],
)
def test_paging(start: str | None, count: str | None, expected: tuple[int, int]) -> None:
    assert paging(start, count, 100) == expected


@pytest.mark.parametrize(("start", "count", "name"), [("x", None, "startIndex"), ("1", "1.5", "count")])
def test_paging_needs_integers(start: str, count: str | None, name: str) -> None:
    with pytest.raises(ScimError) as err:
        paging(start, count, 100)
    assert (err.value.status, err.value.scim_type) == (400, "invalidValue")
    assert name in err.value.detail
