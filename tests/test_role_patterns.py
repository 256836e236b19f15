"""Role-mapping patterns: RE2 full matches, refused cleanly when RE2 cannot run them."""

from __future__ import annotations

import time

import pytest

from scim_core.resources import MAX_PATTERN_LENGTH
from scim_operator.rbac import compile_pattern, mapping_matches, pattern_problems, plan_group


def _matches(pattern: str, display_name: str) -> bool:
    return mapping_matches({"pattern": pattern}, {"displayName": display_name})


@pytest.mark.parametrize(
    ("pattern", "display_name", "expected"),
    [
        ("team-.*", "team-a", True),
        ("team-.*", "my-team-a", False),  # a full match, not a search
        ("team", "team-a", False),
        (".*Admins.*", "Cluster Admins EU", True),
        ("Admins", "admins", False),  # case-sensitive by default
        ("(?i)admins", "ADMINS", True),
        ("(?P<env>dev|prod)-ops", "prod-ops", True),
        ("a|b", "ab", False),  # the whole alternation must cover the name
        ("é+", "éé", True),  # Unicode, not bytes
    ],
)
def test_pattern_full_match(pattern: str, display_name: str, expected: bool) -> None:
    assert _matches(pattern, display_name) is expected


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+", "(a|a)*b", "(a*)*$", "(x+x+)+y", "(.*a){20}"],
)
def test_catastrophic_patterns_run_in_linear_time(pattern: str) -> None:
    """Python's re takes hours on these with 40 characters; RE2 answers at once. The bound
    is a generous functional deadline, not a benchmark."""
    started = time.monotonic()
    for n in (40, 4_000):
        assert not _matches(pattern, "a" * n + "!")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("(a)\\1", "invalid escape sequence"),  # backreference: not in RE2
        ("(?=admin)", "invalid perl operator"),  # lookahead
        ("(?<=x)y", "invalid perl operator"),  # lookbehind
        ("[", "missing ]"),
        ("a{1001}", "invalid repetition size"),
        ("\\pL{1000}", "pattern too large"),  # over the memory budget
        ("a" * (MAX_PATTERN_LENGTH + 1), "at most 256"),
    ],
)
def test_unsupported_patterns_refused_and_match_nothing(pattern: str, needle: str) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.regex is None and compiled.problem is not None and needle in compiled.problem
    assert not _matches(pattern, "a")
    spec = {"roleMappings": [{"name": "bad", "groups": {"pattern": pattern}, "clusterRole": "view"}]}
    assert pattern_problems(spec) == [("bad", compiled.problem)]
    plan = plan_group(
        "ns", "g", {"displayName": "a", "members": []}, spec, {}, {}, frozenset({"view"}), frozenset()
    )
    assert plan.bindings == [] and plan.refusals == []


def test_valid_patterns_have_no_problems_and_are_compiled_once() -> None:
    spec = {
        "roleMappings": [
            {"name": "a", "groups": {"pattern": "team-.*"}, "clusterRole": "view"},
            {"name": "b", "groups": {"displayName": "x"}, "clusterRole": "view"},
            {"name": "c", "groups": {"pattern": "a" * MAX_PATTERN_LENGTH}, "clusterRole": "view"},
        ]
    }
    assert pattern_problems(spec) == []
    assert pattern_problems(None) == []
    assert compile_pattern("team-.*") is compile_pattern("team-.*")  # cached
