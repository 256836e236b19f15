"""``kubectl scim status``: what each workspace's status shows, absent fields included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scim_kubectl.status import ConditionView, errors_cell, render, row, summarize, token_cell

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FULL: dict[str, Any] = {
    "metadata": {"namespace": "team-a", "name": "ws"},
    "status": {
        "tokenFingerprint": "abc123",
        "tokenExpiresAt": "2026-03-31T00:00:00Z",
        "tokenHashes": [{"sha256": "0" * 64, "fingerprint": "abc123", "notAfter": "2026-03-31T00:00:00Z"}],
        "tokenUsage": [
            {"fingerprint": "old", "lastUsedTime": "2025-12-01T00:00:00Z"},
            "not an entry",
            {"fingerprint": "abc123", "lastUsedTime": "2025-12-31T23:59:00Z"},
        ],
        "idp": {
            "lastRequestTime": "2025-12-31T23:55:00Z",
            "lastWriteTime": "2025-12-31T23:50:00Z",
            "requests": 40,
            "errors": 2,
            "lastError": {
                "time": "2025-12-31T23:00:00Z",
                "status": 409,
                "scimType": "uniqueness",
                "detail": "x",
            },
        },
        "groups": 3,
        "users": 12,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready"},
            {"type": "Synced", "status": "False", "reason": "IdpSilent"},
            {"type": "TokenExpiring", "status": "Unknown", "reason": ""},
        ],
    },
}


def test_full_status() -> None:
    view = summarize(FULL)
    assert row(view, NOW) == [
        "team-a", "ws", "in 89d", "5m ago", "2 (last 409/uniqueness)", "3", "12",
        "Ready,Synced=False(IdpSilent),TokenExpiring=Unknown",
    ]  # fmt: skip
    out = view.as_json()
    assert out["token"] == {
        "fingerprint": "abc123",
        "expiresAt": "2026-03-31T00:00:00Z",
        "published": True,
        "lastUsedTime": "2025-12-31T23:59:00Z",
    }
    assert out["idp"]["lastRequestTime"] == "2025-12-31T23:55:00Z" and out["idp"]["errors"] == 2
    assert out["idp"]["lastError"]["scimType"] == "uniqueness"
    assert out["conditions"][1] == {"type": "Synced", "status": "False", "reason": "IdpSilent"}


def test_bare_workspace_shows_absent_fields_as_such() -> None:
    view = summarize({"metadata": {"namespace": "n", "name": "w"}})
    assert row(view, NOW) == ["n", "w", "none", "never", "-", "-", "-", "-"]
    assert view.as_json()["token"] == {
        "fingerprint": None,
        "expiresAt": None,
        "published": False,
        "lastUsedTime": None,
    }
    assert view.as_json()["idp"] == {"lastRequestTime": None, "errors": None, "lastError": None}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"tokenHashes": [{"fingerprint": "f"}]}, "never"),  # no lifetime: no expiry
        ({"tokenHashes": [{"fingerprint": "f"}], "tokenExpiresAt": "garbage"}, "never"),
        ({"tokenHashes": [{"fingerprint": "f"}], "tokenExpiresAt": 5}, "never"),
        ({"tokenHashes": []}, "none"),
    ],
)
def test_token_cell(status: dict[str, Any], expected: str) -> None:
    assert token_cell(summarize({"metadata": {}, "status": status}), NOW) == expected


@pytest.mark.parametrize(
    ("idp", "expected"),
    [
        ("not an object", "-"),
        ({}, "-"),
        ({"errors": 0}, "0"),
        ({"errors": True}, "-"),  # not a count
        ({"lastError": {"status": 500}}, "? (last 500)"),
        ({"errors": 1, "lastError": {"detail": "no status"}}, "1"),
        ({"errors": 1, "lastError": {}}, "1"),
    ],
)
def test_errors_cell(idp: Any, expected: str) -> None:
    assert errors_cell(summarize({"metadata": {}, "status": {"idp": idp}})) == expected


def test_condition_without_reason() -> None:
    assert ConditionView("Ready", "False", "").short() == "Ready=False"


def test_render_sorts_and_says_when_there_is_nothing() -> None:
    assert render([], NOW) == "No ScimWorkspaces found."
    views = [summarize({"metadata": {"namespace": ns, "name": "ws"}}) for ns in ("b", "a")]
    lines = render(views, NOW).splitlines()
    assert lines[0].startswith("NAMESPACE  WORKSPACE  TOKEN EXPIRES") and [ln[0] for ln in lines[1:]] == [
        "a",
        "b",
    ]
