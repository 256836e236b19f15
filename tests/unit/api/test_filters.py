"""Filter parsing: the fast path for ``attr eq "string"`` gives what the grammar gives."""

from __future__ import annotations

import pytest
import scim2_models.path as sp

from scim_api.errors import ScimError
from scim_api.protocol import filters
from scim_api.protocol.filters import Compare, matches, normalize_attr, parse_filter, parse_with_grammar


@pytest.mark.parametrize(
    "text",
    [
        'value eq "usr-1"',
        'userName eq "Ada@Example.com"',
        '  value   EQ "a b c"  ',
        'members.value eq "u1"',
        'displayName eq ""',
        'name.givenName eq "é"',
        'externalId Eq "00u1dhhb1fkIGP7RL1d8"',
        # not the fast path's shape: the grammar decides, the answer must be the same
        'value eq "a\\"b"',
        'value eq "x" or value eq "y"',
        "value eq 5",
        'value ne "x"',
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"',
        'members[value eq "x"]',
    ],
)
def test_fast_path_agrees_with_the_grammar(text: str) -> None:
    assert parse_filter(text) == parse_with_grammar(text)


def test_fast_path_shape() -> None:
    assert parse_filter('Members.Value eq "U-1"') == Compare("members.value", "eq", "U-1")


@pytest.mark.parametrize("text", ["", "   ", 'value eq "x', "value eq", 'value xx "x"', "x" * 5000])
def test_invalid_filters(text: str) -> None:
    with pytest.raises(ScimError) as err:
        parse_filter(text)
    assert err.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "resource", "case_exact", "expected"),
    [
        ('value eq "A"', {"value": "a"}, frozenset(), True),
        ('value eq "A"', {"value": "a"}, frozenset({"value"}), False),
        ('members[value eq "u1"]', {"members": [{"value": "u1"}]}, frozenset(), True),
        ('displayName sw "te" and not (externalId pr)', {"displayName": "Team"}, frozenset(), True),
        (
            'displayName sw "te" and not (externalId pr)',
            {"displayName": "Team", "externalId": "x"},
            frozenset(),
            False,
        ),
        ('meta.created gt "2020-01-01"', {"meta": {"created": "2021-01-01T00:00:00Z"}}, frozenset(), True),
        ('externalId ne "x"', {}, frozenset(), True),
    ],
)
def test_matches(text: str, resource: dict[str, object], case_exact: frozenset[str], expected: bool) -> None:
    assert matches(parse_filter(text), resource, case_exact) is expected


def _error(text: str) -> ScimError:
    with pytest.raises(ScimError) as err:
        parse_with_grammar(text)
    return err.value


def test_extension_attributes_are_not_filterable() -> None:
    err = _error('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"')
    assert (err.status, err.scim_type) == (400, "invalidFilter")
    assert "extension attributes" in err.detail


# scim2-models itself refuses what these guard against (nesting over 32, ``].sub`` in a
# filter, unknown node types, recursion); the conversion must still answer 400
# invalidFilter if a grammar version lets one through.
@pytest.mark.parametrize(
    ("node", "depth", "detail"),
    [
        (sp.Present(attr_path=sp.AttrPath(attr="id")), filters.MAX_DEPTH + 1, "nested too deeply"),
        (
            sp.ValuePath(
                attr_path=sp.AttrPath(attr="members"),
                val_filter=sp.Present(attr_path=sp.AttrPath(attr="value")),
                sub_attr="display",
            ),
            0,
            "only valid in PATCH paths",
        ),
        (object(), 0, "Unsupported filter expression"),
    ],
)
def test_conversion_refuses_what_it_cannot_evaluate(node: object, depth: int, detail: str) -> None:
    with pytest.raises(ScimError) as err:
        filters._convert(node, depth)
    assert (err.value.status, err.value.scim_type) == (400, "invalidFilter")
    assert detail in err.value.detail


def test_conversion_at_the_depth_limit_is_accepted() -> None:
    node = sp.Present(attr_path=sp.AttrPath(attr="id"))
    assert filters._convert(node, filters.MAX_DEPTH) == Compare("id", "pr")


def test_a_recursion_error_in_the_grammar_is_an_invalid_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    class Deep:
        def __init__(self, text: str) -> None:
            raise RecursionError

    monkeypatch.setattr(filters, "ScimFilter", Deep)
    err = _error('value pr and (value eq "x")')
    assert (err.status, err.scim_type, err.detail) == (400, "invalidFilter", "Filter nested too deeply")


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        # non-string values compare as they are
        ("value eq 5", {"value": 5}, True),
        ("value eq 5", {"value": "5"}, False),
        ("active eq true", {"active": True}, True),
        ("active eq false", {"active": True}, False),
        ('value ne "x"', {"value": "X"}, False),  # case-insensitive by default
        ('value ne "x"', {"value": "y"}, True),
        ("value ne null", {}, False),
        ('value co "ELL"', {"value": "hello"}, True),
        ('value co "z"', {"value": "hello"}, False),
        ("value co 1", {"value": 10}, False),  # co/sw/ew need strings
        ('value sw "HE"', {"value": "hello"}, True),
        ('value sw "lo"', {"value": "hello"}, False),
        ('value ew "LO"', {"value": "hello"}, True),
        ('value ew "he"', {"value": "hello"}, False),
        ("value ew 1", {"value": 1}, False),
        ("value gt 2", {"value": 3}, True),
        ("value gt 3", {"value": 3}, False),
        ("value ge 3", {"value": 3}, True),
        ("value ge 4", {"value": 3}, False),
        ("value lt 4", {"value": 3}, True),
        ("value lt 3", {"value": 3}, False),
        ("value le 3", {"value": 3}, True),
        ("value le 2", {"value": 3}, False),
        ('value gt "b"', {"value": "A"}, False),
        ('value lt "b"', {"value": "A"}, True),
        # incomparable types: no match rather than an error
        ('value gt "a"', {"value": 1}, False),
        ("value le 1", {"value": "a"}, False),
        ('value eq "x"', {}, False),  # absent
        ('value eq "x"', {"value": None}, False),
        ("value pr", {"value": ""}, False),
        ("value pr", {"value": []}, False),
        ("value pr", {"value": {}}, False),
        ("value pr", {"value": 0}, True),
        ('members[value eq "u1"]', {"members": ["u1"]}, False),  # elements must be objects
        # a path through a multi-valued attribute of non-objects finds nothing
        ('emails.value eq "a@x"', {"emails": ["a@x"]}, False),
        ('emails.value eq "a@x"', {"emails": ["b@x", {"value": "a@x"}]}, True),
        ('Emails.Value eq "A@X"', {"EMAILS": {"VALUE": "a@x"}}, True),  # keys match any case
        ('name.givenName eq "Ada"', {"name": "Ada"}, False),
        ('value eq "x" or value eq "y"', {"value": "y"}, True),
        ('value eq "x" and value eq "y"', {"value": ["x", "y"]}, True),
        ('not (value eq "x")', {"value": "x"}, False),
    ],
)
def test_comparisons(text: str, resource: dict[str, object], expected: bool) -> None:
    assert matches(parse_with_grammar(text), resource) is expected


def test_an_unknown_operator_matches_nothing() -> None:
    assert matches(Compare("value", "xx", "a"), {"value": "a"}) is False


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName", "username"),
        ("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP:displayName", "displayname"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager"),
        ),
        ("Members.Value", "members.value"),
    ],
)
def test_normalize_attr(name: str, expected: str) -> None:
    assert normalize_attr(name) == expected
