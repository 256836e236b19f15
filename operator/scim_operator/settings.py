"""Operator configuration, read once by the composition root (``app.py``) from environment
variables (the Helm chart sets them) and command-line flags; nothing reads it at import time."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scim_core.kube import POOL_SIZE
from scim_core.settings import MAX_PORT, non_negative_number, positive_number, whole_number
from scim_core.settings import SettingsError as SettingsError  # re-exported: callers catch it from here

from . import lease

#: Where Kubernetes mounts the Pod's namespace (the Lease lives there by default).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


#: Most group (or user) reconciles in flight. A reconcile sends one request at a time and the
#: operator's API client has ``POOL_SIZE`` connections (its watches and Events share them):
#: more workers than connections would only wait for one.
MAX_WORKERS = POOL_SIZE


#: The Lease timings, checked together (``lease.check_timings``) once each is a valid number.
LEASE_TIMINGS = (
    "SCIM_LEASE_DURATION_SECONDS",
    "SCIM_LEASE_RENEW_DEADLINE_SECONDS",
    "SCIM_LEASE_RETRY_PERIOD_SECONDS",
)


def _default_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def default_identity() -> str:
    """Unique per process, readable in ``kubectl get lease``: host (the Pod name) + random."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class OperatorSettings:
    #: ClusterRoles the operator may bind (the chart's ``allowedClusterRoles``).
    allowed_cluster_roles: frozenset[str]
    #: namespaced Roles the operator may bind (by name, in any target namespace).
    allowed_roles: frozenset[str]
    #: How often the leader re-checks every workspace (token expiry, rotation schedule).
    workspace_resync_seconds: float = 10.0
    #: A workspace whose IdP sent nothing for this long shows Synced=False (IdPSilent),
    #: unless it sets ``spec.idpSilenceAfter``. Entra calls about every 40 minutes.
    idp_silence_seconds: float = 7200.0
    #: Prometheus metrics port (0: off).
    metrics_port: int = 8082
    #: The ``coordination.k8s.io/v1`` Lease that elects the one replica that writes.
    lease_name: str = "scim-operator"
    lease_namespace: str = "default"
    #: This replica's ``holderIdentity``.
    identity: str = "scim-operator"
    #: client-go's leader-election timings: a lease not renewed for ``lease_duration`` may be
    #: taken; the holder stops acting after ``renew_deadline`` without a renewal (shorter, so it
    #: stops before anyone can take over); attempts every ``retry_period``.
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    #: Group and user reconciles in flight. A reconcile waits on the API server for most of
    #: its time, so a first sync of 100,000 groups is bound by these, not by the API server:
    #: raise them for that. 16 group workers were tried for offboarding and were no faster on
    #: a 2-core machine (3.3 s against 2.5 s for 100 groups at the same load:
    #: docs/benchmarks.md), hence the small defaults. Each from 1 to ``MAX_WORKERS``: 0 would
    #: start no reconcile at all (``from_env`` refuses it).
    group_workers: int = 4
    user_workers: int = 2
    #: A group reconcile that would only grant (nobody loses a role) waits until the group's
    #: plan has not changed for this long, at most ``grant_settle_longest_seconds`` in all, and
    #: writes once: an IdP's burst of PATCHes to a new group costs one binding write, not one
    #: per PATCH (``settling``). 0: no wait. Removals never wait.
    grant_settle_seconds: float = 0.25
    grant_settle_longest_seconds: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """The settings the environment gives; :class:`SettingsError`, naming the variable, for
        a number it cannot use (seconds: finite and above 0; the metrics port: 0 to
        ``MAX_PORT``; worker counts: 1 to ``MAX_WORKERS``) or Lease timings that break
        client-go's rule (``lease.check_timings``)."""
        env = os.environ if environ is None else environ

        def names(var: str, default: str) -> frozenset[str]:
            return frozenset(r.strip() for r in env.get(var, default).split(",") if r.strip())

        duration, deadline, retry = (
            positive_number(env, var, default)
            for var, default in zip(
                LEASE_TIMINGS, (cls.lease_duration, cls.renew_deadline, cls.retry_period), strict=True
            )
        )
        try:
            lease.check_timings(duration, deadline, retry)
        except ValueError as exc:
            raise SettingsError(f"{', '.join(LEASE_TIMINGS)}: {exc}") from None
        return cls(
            allowed_cluster_roles=names("SCIM_ALLOWED_CLUSTER_ROLES", "view,edit"),
            allowed_roles=names("SCIM_ALLOWED_ROLES", ""),
            workspace_resync_seconds=positive_number(
                env, "SCIM_WORKSPACE_RESYNC_SECONDS", cls.workspace_resync_seconds
            ),
            idp_silence_seconds=positive_number(env, "SCIM_IDP_SILENCE_SECONDS", cls.idp_silence_seconds),
            metrics_port=whole_number(env, "SCIM_METRICS_PORT", cls.metrics_port, 0, MAX_PORT),
            lease_name=env.get("SCIM_LEASE_NAME", "scim-operator"),
            lease_namespace=env.get("SCIM_LEASE_NAMESPACE") or _default_namespace(),
            identity=env.get("SCIM_LEASE_IDENTITY") or default_identity(),
            lease_duration=duration,
            renew_deadline=deadline,
            retry_period=retry,
            group_workers=whole_number(env, "SCIM_GROUP_WORKERS", cls.group_workers, 1, MAX_WORKERS),
            user_workers=whole_number(env, "SCIM_USER_WORKERS", cls.user_workers, 1, MAX_WORKERS),
            grant_settle_seconds=non_negative_number(
                env, "SCIM_GRANT_SETTLE_SECONDS", cls.grant_settle_seconds
            ),
            grant_settle_longest_seconds=positive_number(
                env, "SCIM_GRANT_SETTLE_LONGEST_SECONDS", cls.grant_settle_longest_seconds
            ),
        )
