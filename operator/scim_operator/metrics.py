"""Prometheus metrics of the operator (served on ``SCIM_METRICS_PORT``, default 8082)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("scim_operator_reconciles_total", "Group reconciles", ["result"])
#: The two results' series, looked up once (a reconcile is about 100 µs at scale: ``labels``
#: per call was a few percent of a cold start over 100,000 groups)
RECONCILED_OK, RECONCILE_FAILED = RECONCILES.labels("ok"), RECONCILES.labels("error")
RECONCILE_SECONDS = Histogram(
    "scim_operator_reconcile_seconds",
    "Time to reconcile one group",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("scim_operator_binding_writes_total", "RoleBinding writes", ["action"])
GRANTS_SETTLING = Counter(
    "scim_operator_grants_settling_total",
    "Group reconciles that would only grant, put off until the group's changes settle",
)
MANAGED_BINDINGS = Gauge("scim_operator_managed_rolebindings", "RoleBindings the operator manages")
UNRESOLVED_MEMBERS = Gauge("scim_operator_unresolved_members", "Group members that match no ScimUser")
QUEUE_DEPTH = Gauge("scim_operator_queue_depth", "Groups waiting for or under reconciliation")
USER_QUEUE_DEPTH = Gauge("scim_operator_user_queue_depth", "Users waiting for or under reconciliation")
EVENTS_DROPPED = Counter(
    "scim_operator_events_dropped_total",
    "Events not posted because too many were waiting already (Events are best-effort)",
)
REFUSED_MAPPINGS = Counter("scim_operator_refused_mappings_total", "Role mappings refused by the allow-list")
QUEUE_RETRIES = Counter(
    "scim_operator_workqueue_retries_total",
    "Keys re-queued with back-off after a failed reconcile",
    ["queue"],
)
LEADER = Gauge("scim_operator_leader", "1 while this replica holds the leader Lease")
TOKEN_EXPIRY = Gauge(
    "scim_operator_token_expiry_timestamp_seconds",
    "When each published workspace token expires (Unix time); none for a token without a lifetime",
    ["workspace", "fingerprint"],
)
WORKSPACE_CONDITION = Gauge(
    "scim_operator_workspace_condition",
    "Each workspace condition: 1 True, 0 False (no series while Unknown)",
    ["workspace", "type"],
)


class WorkspaceSeries:
    """The series each workspace contributes to a gauge with labels (workspace, x): set all of
    a workspace's at once, and the ones it no longer has are removed (a rotated token's
    fingerprint, a deleted workspace), so nothing stale is ever scraped."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._held: dict[str, set[str]] = {}

    def set(self, workspace: str, values: Mapping[str, float]) -> None:
        for label, value in values.items():
            self.gauge.labels(workspace, label).set(value)
        for label in self._held.pop(workspace, set()) - values.keys():
            self.gauge.remove(workspace, label)
        if values:
            self._held[workspace] = set(values)

    def clear(self, workspace: str) -> None:
        self.set(workspace, {})

    def clear_all(self) -> None:
        """A standby reports no workspace: only the Lease holder's values are current."""
        for workspace in list(self._held):
            self.clear(workspace)


TOKEN_EXPIRY_SERIES = WorkspaceSeries(TOKEN_EXPIRY)
WORKSPACE_CONDITION_SERIES = WorkspaceSeries(WORKSPACE_CONDITION)


def condition_values(conditions: list[dict[str, object]] | None) -> dict[str, float]:
    """type -> 1 (True) / 0 (False); Unknown conditions have no value."""
    values = {"True": 1.0, "False": 0.0}
    return {str(c["type"]): values[str(c["status"])] for c in conditions or [] if c.get("status") in values}
