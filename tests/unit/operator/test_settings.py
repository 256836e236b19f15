"""Operator settings come from an explicit mapping (no import-time environment reads)."""

from __future__ import annotations

import pytest

from scim_core.settings import MAX_PORT
from scim_operator.main import main
from scim_operator.settings import LEASE_TIMINGS, MAX_WORKERS, OperatorSettings, SettingsError

#: Valid Lease timings (the leader-election integration tests' short ones).
LEASE_4_3_HALF = {
    "SCIM_LEASE_DURATION_SECONDS": "4",
    "SCIM_LEASE_RENEW_DEADLINE_SECONDS": "3",
    "SCIM_LEASE_RETRY_PERIOD_SECONDS": "0.5",
}


def test_defaults() -> None:
    s = OperatorSettings.from_env({})
    assert s.allowed_cluster_roles == frozenset({"view", "edit"}) and s.allowed_roles == frozenset()
    assert (s.workspace_resync_seconds, s.metrics_port, s.lease_name) == (10.0, 8082, "scim-operator")
    assert (s.lease_duration, s.renew_deadline, s.retry_period) == (15.0, 10.0, 2.0)
    assert (s.group_workers, s.user_workers) == (4, 2)
    assert s.identity and s.identity != OperatorSettings.from_env({}).identity  # unique per process


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        (
            {"SCIM_ALLOWED_CLUSTER_ROLES": " view , ,admin "},
            "allowed_cluster_roles",
            frozenset({"view", "admin"}),
        ),
        ({"SCIM_ALLOWED_ROLES": "r1"}, "allowed_roles", frozenset({"r1"})),
        ({"SCIM_LEASE_NAME": "x"}, "lease_name", "x"),
        ({"SCIM_LEASE_NAMESPACE": "ops"}, "lease_namespace", "ops"),
        ({"SCIM_LEASE_IDENTITY": "pod-1"}, "identity", "pod-1"),
        # the three timings together: 4 alone would not exceed the default renew deadline (10)
        (LEASE_4_3_HALF, "lease_duration", 4.0),
        (LEASE_4_3_HALF, "renew_deadline", 3.0),
        (LEASE_4_3_HALF, "retry_period", 0.5),
        ({"SCIM_WORKSPACE_RESYNC_SECONDS": "0.25"}, "workspace_resync_seconds", 0.25),
        ({"SCIM_IDP_SILENCE_SECONDS": " 1e+06 "}, "idp_silence_seconds", 1e6),  # Helm's large numbers
        ({"SCIM_METRICS_PORT": "65535"}, "metrics_port", 65535),
        ({"SCIM_METRICS_PORT": "0"}, "metrics_port", 0),
        ({"SCIM_GROUP_WORKERS": "32"}, "group_workers", 32),
        ({"SCIM_USER_WORKERS": "16"}, "user_workers", 16),
        ({}, "grant_settle_seconds", 0.25),
        ({"SCIM_GRANT_SETTLE_SECONDS": "0"}, "grant_settle_seconds", 0.0),  # no wait
        ({"SCIM_GRANT_SETTLE_SECONDS": "0.5"}, "grant_settle_seconds", 0.5),
        ({}, "grant_settle_longest_seconds", 2.0),
        ({"SCIM_GRANT_SETTLE_LONGEST_SECONDS": "5"}, "grant_settle_longest_seconds", 5.0),
    ],
)
def test_from_env(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(OperatorSettings.from_env(env), field) == value


@pytest.mark.parametrize(("raw", "value"), [("1", 1), (" 8 ", 8), (str(MAX_WORKERS), MAX_WORKERS)])
@pytest.mark.parametrize(
    ("var", "field"), [("SCIM_GROUP_WORKERS", "group_workers"), ("SCIM_USER_WORKERS", "user_workers")]
)
def test_worker_counts_in_range(var: str, field: str, raw: str, value: int) -> None:
    assert getattr(OperatorSettings.from_env({var: raw}), field) == value


@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "+1", "", " ", "four", "2.5", "1e2", "0x10", "٣", "²", str(MAX_WORKERS + 1), "99999999999"],
)
@pytest.mark.parametrize("var", ["SCIM_GROUP_WORKERS", "SCIM_USER_WORKERS"])
def test_worker_count_refused_naming_the_variable(var: str, raw: str) -> None:
    """0 would start no reconcile at all (the queue's keys never handled); a typo is refused
    at start-up, not met as a bare ValueError."""
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({var: raw})
    assert str(refused.value) == f"{var}={raw!r}: give a whole number from 1 to {MAX_WORKERS}"


def test_operator_refuses_to_start_with_a_bad_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """``scim-operator`` exits with one line naming the variable, before it connects anywhere."""
    monkeypatch.setenv("SCIM_GROUP_WORKERS", "0")
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert (
        stopped.value.code
        == f"scim-operator: SCIM_GROUP_WORKERS='0': give a whole number from 1 to {MAX_WORKERS}"
    )


SECONDS = [
    "SCIM_GRANT_SETTLE_LONGEST_SECONDS",
    "SCIM_WORKSPACE_RESYNC_SECONDS",
    "SCIM_IDP_SILENCE_SECONDS",
    "SCIM_LEASE_DURATION_SECONDS",
    "SCIM_LEASE_RENEW_DEADLINE_SECONDS",
    "SCIM_LEASE_RETRY_PERIOD_SECONDS",
]


@pytest.mark.parametrize("raw", ["", "soon", "15s", "nan", "inf", "-2", "0"])
@pytest.mark.parametrize("var", SECONDS)
def test_seconds_refused_naming_the_variable(var: str, raw: str) -> None:
    """Empty, not a number, NaN, inf, negative, zero: refused before the Lease cross-check."""
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({var: raw})
    assert str(refused.value) == f"{var}={raw!r}: give a finite number above 0"


@pytest.mark.parametrize("raw", ["", "off", "nan", "inf", "-0.25"])
def test_grant_settle_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"SCIM_GRANT_SETTLE_SECONDS": raw})
    assert str(refused.value) == f"SCIM_GRANT_SETTLE_SECONDS={raw!r}: give a finite number of 0 or more"


@pytest.mark.parametrize("raw", ["", "off", "nan", "inf", "-1", "8082.0", str(MAX_PORT + 1)])
def test_metrics_port_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"SCIM_METRICS_PORT": raw})
    assert str(refused.value) == f"SCIM_METRICS_PORT={raw!r}: give a whole number from 0 to {MAX_PORT}"


@pytest.mark.parametrize(
    ("env", "rule"),
    [
        ({"SCIM_LEASE_DURATION_SECONDS": "10"}, "lease duration 10.0s must exceed the renew deadline 10.0s"),
        (
            {"SCIM_LEASE_RENEW_DEADLINE_SECONDS": "20"},
            "lease duration 15.0s must exceed the renew deadline 20.0s",
        ),
        (
            {"SCIM_LEASE_RETRY_PERIOD_SECONDS": "9"},
            "renew deadline 10.0s must exceed 1.2 x retry period 9.0s",
        ),
    ],
)
def test_lease_timings_cross_checked_in_one_line(env: dict[str, str], rule: str) -> None:
    """Each timing valid alone, together against client-go's rule: refused at start (not when
    the elector is built), naming the three variables."""
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env(env)
    assert str(refused.value) == f"{', '.join(LEASE_TIMINGS)}: {rule}"
