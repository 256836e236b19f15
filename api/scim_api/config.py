"""API settings, from environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Most resources one list response returns (``count`` is capped to this).
    max_results: int = 1000
    #: Most group members one list page assembles; the page ends early past it (at least
    #: one group is always returned).
    max_list_members: int = 10_000
    #: Requests per second each token may make (sustained), and the burst above it.
    rate_per_second: float = 200.0
    rate_burst: int = 400
    #: Seconds a watch may go unheard before the replica stops being ready (and refuses
    #: requests): a partitioned replica must not keep accepting a revoked token.
    max_watch_staleness: float = 30.0
    #: Most members a group may have; a request that would leave a group with more (and
    #: more than it had) is refused with 400 ``invalidValue`` and nothing is applied.
    max_group_members: int = 50_000
    #: Port of the Prometheus metrics (never the SCIM port); 0: no metrics endpoint.
    metrics_port: int = 8083
    #: Seconds between two writes of one workspace's IdP trace (status.idp, status.tokenUsage)
    #: by one replica; a token fingerprint seen for the first time is written at once.
    status_interval: float = 60.0
    #: Lowercase User-Agent fragments of IdPs that want ``application/json`` responses
    #: rather than ``application/scim+json`` (OneLogin documents that it does).
    plain_json_user_agents: tuple[str, ...] = ("onelogin",)

    @classmethod
    def from_env(cls) -> ApiSettings:
        env = os.environ
        return cls(
            host=env.get("SCIM_HOST", cls.host),
            port=int(env.get("SCIM_PORT", cls.port)),
            max_body_bytes=int(env.get("SCIM_MAX_BODY_BYTES", cls.max_body_bytes)),
            max_results=int(env.get("SCIM_MAX_RESULTS", cls.max_results)),
            max_list_members=int(env.get("SCIM_MAX_LIST_MEMBERS", cls.max_list_members)),
            rate_per_second=float(env.get("SCIM_RATE_PER_SECOND", cls.rate_per_second)),
            rate_burst=int(env.get("SCIM_RATE_BURST", cls.rate_burst)),
            max_watch_staleness=float(env.get("SCIM_MAX_WATCH_STALENESS_SECONDS", cls.max_watch_staleness)),
            max_group_members=int(env.get("SCIM_MAX_GROUP_MEMBERS", cls.max_group_members)),
            metrics_port=int(env.get("SCIM_API_METRICS_PORT", cls.metrics_port)),
            status_interval=float(env.get("SCIM_STATUS_INTERVAL_SECONDS", cls.status_interval)),
            plain_json_user_agents=_fragments(
                env.get("SCIM_PLAIN_JSON_USER_AGENTS"), cls.plain_json_user_agents
            ),
        )


def _fragments(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list (lowercased, blanks dropped); unset: ``default``."""
    if value is None:
        return default
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())
