"""Operator settings come from an explicit mapping (no import-time environment reads)."""

from __future__ import annotations

import pytest

from scim_operator.settings import OperatorSettings


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
        ({"SCIM_LEASE_DURATION_SECONDS": "4"}, "lease_duration", 4.0),
        ({"SCIM_METRICS_PORT": "0"}, "metrics_port", 0),
        ({"SCIM_GROUP_WORKERS": "32"}, "group_workers", 32),
        ({"SCIM_USER_WORKERS": "16"}, "user_workers", 16),
    ],
)
def test_from_env(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(OperatorSettings.from_env(env), field) == value
