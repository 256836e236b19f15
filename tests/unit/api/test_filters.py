"""Filter parsing: the fast path for ``attr eq "string"`` gives what the grammar gives."""

from __future__ import annotations

import pytest

from scim_api.errors import ScimError
from scim_api.protocol.filters import Compare, matches, parse_filter, parse_with_grammar


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
