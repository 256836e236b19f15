"""API settings, from environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from scim_core.settings import MAX_PORT, positive_number, whole_number

#: Smallest ``SCIM_MAX_BODY_BYTES``: room for any one-resource SCIM request.
MIN_BODY_BYTES = 1024


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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """The settings the environment gives; :class:`~scim_core.settings.SettingsError`,
        naming the variable, for a number it cannot use (ports: 1 to ``MAX_PORT``, the
        metrics port also 0; counts: 1 or more, body size: ``MIN_BODY_BYTES`` or more;
        seconds and the rate: finite and above 0)."""
        env = os.environ if environ is None else environ
        return cls(
            host=env.get("SCIM_HOST", cls.host),
            port=whole_number(env, "SCIM_PORT", cls.port, 1, MAX_PORT),
            max_body_bytes=whole_number(env, "SCIM_MAX_BODY_BYTES", cls.max_body_bytes, MIN_BODY_BYTES),
            max_results=whole_number(env, "SCIM_MAX_RESULTS", cls.max_results, 1),
            max_list_members=whole_number(env, "SCIM_MAX_LIST_MEMBERS", cls.max_list_members, 1),
            rate_per_second=positive_number(env, "SCIM_RATE_PER_SECOND", cls.rate_per_second),
            rate_burst=whole_number(env, "SCIM_RATE_BURST", cls.rate_burst, 1),
            max_watch_staleness=positive_number(
                env, "SCIM_MAX_WATCH_STALENESS_SECONDS", cls.max_watch_staleness
            ),
            max_group_members=whole_number(env, "SCIM_MAX_GROUP_MEMBERS", cls.max_group_members, 1),
            metrics_port=whole_number(env, "SCIM_API_METRICS_PORT", cls.metrics_port, 0, MAX_PORT),
            status_interval=positive_number(env, "SCIM_STATUS_INTERVAL_SECONDS", cls.status_interval),
            plain_json_user_agents=_fragments(
                env.get("SCIM_PLAIN_JSON_USER_AGENTS"), cls.plain_json_user_agents
            ),
        )


def _fragments(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list (lowercased, blanks dropped); unset: ``default``."""
    if value is None:
        return default
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())
