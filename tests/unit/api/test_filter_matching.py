"""RFC 7644 filters parsed and matched (``protocol/filters.py``)."""

from __future__ import annotations

from scim_api.protocol.filters import matches, parse_filter


def test_filter_parsing_and_matching() -> None:
    node = parse_filter('displayName eq "A \\"b\\"" or (externalId sw "x" and not (members pr))')
    assert matches(node, {"displayName": 'a "B"'})
    assert matches(node, {"externalId": "xyz"})
    assert not matches(node, {"externalId": "xyz", "members": [{"value": "1"}]})
    assert matches(parse_filter('members[value eq "u1"]'), {"members": [{"value": "u1"}]})
    assert not matches(parse_filter('id eq "ABC"'), {"id": "abc"}, frozenset({"id"}))
