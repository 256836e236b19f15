"""Operator configuration, from environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    #: ClusterRoles the operator may bind (the chart's ``allowedClusterRoles``).
    allowed_cluster_roles: frozenset[str]
    #: How often every workspace is re-checked (token expiry, rotation schedule).
    workspace_resync_seconds: float

    @classmethod
    def from_env(cls) -> OperatorSettings:
        roles = os.environ.get("SCIM_ALLOWED_CLUSTER_ROLES", "view,edit")
        return cls(
            allowed_cluster_roles=frozenset(r.strip() for r in roles.split(",") if r.strip()),
            workspace_resync_seconds=float(os.environ.get("SCIM_WORKSPACE_RESYNC_SECONDS", "10")),
        )
