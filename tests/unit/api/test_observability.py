"""The pure parts of the API's observation: request ids, route → resource type, the audit
line's fields, the response content type per IdP, and the IdP trace's bookkeeping and
throttle (``observation.py``, ``observe.py``, ``responses.py``, ``trace.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_api.config import ApiSettings
from scim_api.directory import WorkspaceRef
from scim_api.observation import Observation, request_id
from scim_api.observe import audit_entry, resource_type, route_template
from scim_api.protocol.group_patch import GroupState
from scim_api.responses import PLAIN_JSON, SCIM_JSON, choose_media_type
from scim_api.trace import MAX_DETAIL, Answered, IdpTrace, known_tokens

REF = WorkspaceRef("acme", "ws")
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FP_OLD, FP_NEW = "sha256:aaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbb"


# ------------------------------------------------------------------------------ request ids


@pytest.mark.parametrize("supplied", ["abc-123", "0f8e7d6c5b4a", "trace:1.2_3", "x" * 128])
def test_a_tame_request_id_is_kept(supplied: str) -> None:
    assert request_id(supplied) == supplied


@pytest.mark.parametrize("supplied", [None, "", "x" * 129, "a b", "evil\nline", 'q"uote', "ü"])
def test_an_odd_request_id_is_replaced(supplied: str | None) -> None:
    made = request_id(supplied)
    assert made != supplied and len(made) == 32 and int(made, 16) >= 0
    assert request_id(supplied) != made  # random, not derived


# ------------------------------------------------------------------------------ route → resource


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/api/auth/scim/v2/Groups", "Groups"),
        ("/api/auth/scim/v2/Groups/{gid}", "Groups"),
        ("/api/auth/scim/v2/Users/{uid}", "Users"),
        ("/api/auth/scim/v2/Groups/Users/{uid}", "Users"),  # the Entra Tenant-URL alias
        ("/api/auth/scim/v2/Groups/Groups/{gid}", "Groups"),
        ("/api/auth/scim/v2/ServiceProviderConfig", "ServiceProviderConfig"),
        ("/api/auth/scim/v2/Schemas/{sid}", "Schemas"),
        ("/Groups/{gid}", "Groups"),
        ("/Groups/Users/{uid}", "Users"),
        ("/api/auth/scim/v2/.search", None),
        ("/healthz", None),
        ("unmatched", None),
    ],
)
def test_resource_type_of_a_route_template(template: str, expected: str | None) -> None:
    assert resource_type(template) == expected


class _Route:
    def __init__(self, path: object) -> None:
        self.path = path


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (_Route("/Groups/{gid}"), "/Groups/{gid}"),
        (_Route("/api/auth/scim/v2/Groups/{gid}"), "/Groups/{gid}"),
        (_Route("/api/auth/scim/v2"), "/"),
        (_Route("/readyz"), "/readyz"),
        (_Route(""), "unmatched"),
        (_Route(None), "unmatched"),
        (None, "unmatched"),
    ],
)
def test_route_template_is_relative_to_the_base_path(route: object, expected: str) -> None:
    assert route_template(route) == expected


# ------------------------------------------------------------------------------ audit line


def test_members_changed_counts_the_difference_not_the_request() -> None:
    obs = Observation("rid", "PATCH")
    before = GroupState("G", members={"a": None, "b": None, "c": None})
    after = GroupState("G", members={"b": None, "c": None, "d": None, "e": None})
    obs.members_changed(before, after)
    assert (obs.members_added, obs.members_removed) == (2, 1)
    obs.members_changed(None, after)  # a create
    assert (obs.members_added, obs.members_removed) == (4, 0)
    obs.members_changed(before, None)
    assert (obs.members_added, obs.members_removed) == (0, 3)


def test_audit_entry_names_who_and_what_but_no_members() -> None:
    obs = Observation("rid-1", "PATCH", REF, FP_NEW, "Groups", "grp-1", 2, 1, 3)
    assert audit_entry(obs, 204) == {
        "request_id": "rid-1", "workspace": "acme", "token_fingerprint": FP_NEW, "method": "PATCH",
        "resource_type": "Groups", "resource_id": "grp-1", "members_added": 2, "members_removed": 1,
        "patch_operations": 3, "status": 204, "scim_type": None,
    }  # fmt: skip
    obs.failed("invalidValue", "bad member alice")
    entry = audit_entry(obs, 412)  # e.g. the precondition failed after the change was computed
    assert (entry["status"], entry["scim_type"]) == (412, "invalidValue")
    assert (entry["members_added"], entry["members_removed"]) == (0, 0)  # nothing was applied
    assert "detail" not in entry  # a detail may quote the request; the audit line never does
    anonymous = audit_entry(Observation("rid-2", "POST"), 401)
    assert anonymous["workspace"] is None and anonymous["token_fingerprint"] is None


# ------------------------------------------------------------------------------ content types

ONELOGIN = ("onelogin",)


@pytest.mark.parametrize(
    ("idp", "accept", "agent", "expected"),
    [
        # Entra expects application/scim+json (and says so in Accept)
        ("entra", "application/scim+json", "Microsoft.Identity.Provisioning", SCIM_JSON),
        ("entra-no-accept", "", "Microsoft.Identity.Provisioning", SCIM_JSON),
        # Okta sends Accept: application/scim+json or application/json, */*
        ("okta", "application/json, */*", "Okta SCIM Client 1.0.0", SCIM_JSON),
        ("okta-scim", "application/scim+json", "Okta SCIM Client 1.0.0", SCIM_JSON),
        # OneLogin documents that every response must be application/json
        ("onelogin", "", "OneLogin SCIM", PLAIN_JSON),
        ("onelogin-any", "*/*", "onelogin-provisioning/2.0", PLAIN_JSON),
        ("onelogin-json", "application/json", "OneLogin", PLAIN_JSON),
        ("onelogin-asks-scim", "application/scim+json", "OneLogin", SCIM_JSON),  # explicit Accept wins
        # any client that takes plain JSON only
        ("plain-only", "application/json", "curl/8", PLAIN_JSON),
        ("scim-and-plain", "application/scim+json, application/json", "curl/8", SCIM_JSON),
        ("browser", "text/html", "Mozilla/5.0", SCIM_JSON),
        ("wildcard", "application/*", "", SCIM_JSON),
    ],
)
def test_content_type_per_idp(idp: str, accept: str, agent: str, expected: str) -> None:
    assert choose_media_type(accept, agent, ONELOGIN) == expected, idp


def test_content_type_agent_list_is_configurable() -> None:
    assert choose_media_type("", "OneLogin", ()) == SCIM_JSON
    assert choose_media_type("", "Example-IdP/1", ("example-idp",)) == PLAIN_JSON
    assert choose_media_type("", "anything", ("",)) == SCIM_JSON  # an empty fragment matches nothing


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("onelogin",)),
        ({"SCIM_PLAIN_JSON_USER_AGENTS": ""}, ()),
        ({"SCIM_PLAIN_JSON_USER_AGENTS": " OneLogin , ,Example-IdP "}, ("onelogin", "example-idp")),
    ],
)
def test_settings_read_the_agent_list(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[str, ...]
) -> None:
    monkeypatch.delenv("SCIM_PLAIN_JSON_USER_AGENTS", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SCIM_API_METRICS_PORT", "9464")
    monkeypatch.setenv("SCIM_STATUS_INTERVAL_SECONDS", "7.5")
    settings = ApiSettings.from_env()
    assert settings.plain_json_user_agents == expected
    assert (settings.metrics_port, settings.status_interval) == (9464, 7.5)


# ------------------------------------------------------------------------------ the IdP trace


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _status(
    usage: dict[str, str] | None = None, hashes: tuple[str, ...] = (FP_OLD, FP_NEW)
) -> dict[str, Any]:
    return {
        "tokenHashes": [{"fingerprint": fp} for fp in hashes],
        "tokenUsage": [{"fingerprint": fp, "lastUsedTime": t} for fp, t in (usage or {}).items()],
    }


def test_first_use_of_a_fingerprint_is_reported_at_once_then_throttled() -> None:
    clock = Clock()
    trace = IdpTrace(60, clock)
    assert trace.due() == []
    # a fingerprint the status does not show yet: report now
    assert trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), T0, set()) is True
    patch = trace.take(REF, _status())
    assert patch is not None and patch["tokenUsage"] == [
        {"fingerprint": FP_NEW, "lastUsedTime": "2026-01-02T03:04:05Z"}
    ]
    # the watch has not shown our write yet: the same fingerprint is not urgent again
    clock.now += 1
    assert trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), T0, set()) is False
    assert trace.due() == []
    clock.now += 58.9
    assert trace.due() == []
    clock.now += 0.2  # a minute after the last report
    assert trace.due() == [REF]
    assert trace.due(everything=True) == [REF]
    # a rotation's new token, first seen: at once, even inside the minute
    trace.take(REF, _status({FP_NEW: "2026-01-02T03:04:05Z"}))
    assert trace.record(Answered(REF, FP_OLD, "GET", 200, None, None), T0, {FP_NEW}) is True
    assert trace.due() == [REF]


def test_a_fingerprint_the_status_already_shows_is_not_urgent() -> None:
    trace = IdpTrace(60, Clock())
    trace.take(REF, _status())  # nothing pending: nothing to say
    assert trace.take(REF, _status()) is None
    # never reported by this replica: the first request is due (the throttle has not started)
    assert trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), T0, {FP_NEW}) is True
    trace.take(REF, _status({FP_NEW: "2026-01-02T03:04:05Z"}))
    assert trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), T0, {FP_NEW}) is False
    assert trace.record(Answered(REF, None, "GET", 401, None, "no token"), T0, set()) is False


def test_take_reports_counts_times_and_the_last_error() -> None:
    trace = IdpTrace(60, Clock())
    t1, t2, t3 = T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
    trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), t1, set())
    trace.record(Answered(REF, FP_NEW, "PATCH", 204, None, None), t2, set())
    trace.record(Answered(REF, FP_NEW, "PATCH", 400, "invalidPath", "x" * 1000), t3, set())
    patch = trace.take(REF, _status())
    assert patch == {
        "idp": {
            "lastRequestTime": "2026-01-02T03:04:25Z",
            "requests": 3,
            "errors": 1,
            "lastWriteTime": "2026-01-02T03:04:15Z",
            "lastError": {
                "time": "2026-01-02T03:04:25Z", "status": 400, "detail": "x" * MAX_DETAIL, "scimType": "invalidPath",
            },
        },
        "tokenUsage": [{"fingerprint": FP_NEW, "lastUsedTime": "2026-01-02T03:04:25Z"}],
    }  # fmt: skip
    # the counters start again; an error without scimType has none
    trace.record(Answered(REF, FP_NEW, "DELETE", 404, None, None), t3, set())
    patch = trace.take(REF, _status())
    assert patch is not None
    assert patch["idp"]["requests"] == 1 and patch["idp"]["errors"] == 1
    assert patch["idp"]["lastError"] == {"time": "2026-01-02T03:04:25Z", "status": 404, "detail": ""}
    assert "lastWriteTime" not in patch["idp"]  # a failed write is no write: merge keeps the old one


def test_take_never_moves_times_back_and_drops_retired_tokens() -> None:
    trace = IdpTrace(60, Clock())
    trace.record(Answered(REF, FP_NEW, "POST", 201, None, None), T0, set())
    later = "2026-01-02T04:00:00Z"  # another replica reported a later use
    status = {
        **_status({FP_NEW: later, FP_OLD: "2026-01-01T00:00:00Z", "sha256:gone": "2025-01-01T00:00:00Z"}),
        "idp": {"lastRequestTime": later, "lastWriteTime": later},
    }
    patch = trace.take(REF, status)
    assert patch is not None
    assert patch["idp"]["lastRequestTime"] == later and patch["idp"]["lastWriteTime"] == later
    assert patch["tokenUsage"] == [
        {"fingerprint": FP_OLD, "lastUsedTime": "2026-01-01T00:00:00Z"},
        {"fingerprint": FP_NEW, "lastUsedTime": later},
    ]  # in tokenHashes order; the retired fingerprint is gone


def test_forget_and_known_tokens() -> None:
    trace = IdpTrace(60, Clock())
    trace.record(Answered(REF, FP_NEW, "GET", 200, None, None), T0, set())
    trace.forget(REF)
    assert trace.due(everything=True) == [] and trace.take(REF, _status()) is None
    assert known_tokens(None) == set()
    assert known_tokens({"status": {"tokenUsage": [{"fingerprint": FP_OLD}, {"x": 1}, "odd"]}}) == {FP_OLD}
