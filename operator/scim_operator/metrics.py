"""Prometheus metrics of the operator (served on ``SCIM_METRICS_PORT``, default 8082)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("scim_operator_reconciles_total", "Group reconciles", ["result"])
RECONCILE_SECONDS = Histogram(
    "scim_operator_reconcile_seconds",
    "Time to reconcile one group",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("scim_operator_binding_writes_total", "RoleBinding writes", ["action"])
MANAGED_BINDINGS = Gauge("scim_operator_managed_rolebindings", "RoleBindings the operator manages")
UNRESOLVED_MEMBERS = Gauge("scim_operator_unresolved_members", "Group members that match no ScimUser")
QUEUE_DEPTH = Gauge("scim_operator_queue_depth", "Groups waiting for or under reconciliation")
REFUSED_MAPPINGS = Counter("scim_operator_refused_mappings_total", "Role mappings refused by the allow-list")
QUEUE_RETRIES = Counter(
    "scim_operator_workqueue_retries_total",
    "Keys re-queued with back-off after a failed reconcile",
    ["queue"],
)
LEADER = Gauge("scim_operator_leader", "1 while this replica holds the leader Lease")
