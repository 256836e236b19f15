"""Operator configuration, from environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    #: ClusterRoles the operator may bind (the chart's ``allowedClusterRoles``).
    allowed_cluster_roles: frozenset[str]
    #: namespaced Roles the operator may bind (by name, in any target namespace).
    allowed_roles: frozenset[str]
    #: How often every workspace is re-checked (token expiry, rotation schedule).
    workspace_resync_seconds: float
    #: Prometheus metrics port (0: off).
    metrics_port: int
    #: ClusterKopfPeering name when replicas elect an active one (None: standalone).
    peering: str | None

    @classmethod
    def from_env(cls) -> OperatorSettings:
        def names(var: str, default: str) -> frozenset[str]:
            return frozenset(r.strip() for r in os.environ.get(var, default).split(",") if r.strip())

        return cls(
            allowed_cluster_roles=names("SCIM_ALLOWED_CLUSTER_ROLES", "view,edit"),
            allowed_roles=names("SCIM_ALLOWED_ROLES", ""),
            workspace_resync_seconds=float(os.environ.get("SCIM_WORKSPACE_RESYNC_SECONDS", "10")),
            metrics_port=int(os.environ.get("SCIM_METRICS_PORT", "8082")),
            peering=os.environ.get("SCIM_PEERING") or None,
        )
