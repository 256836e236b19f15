"""Prometheus metrics of the SCIM API, served on their own port (``SCIM_METRICS_PORT``,
default 8082), never on the SCIM port: the IdP-facing listener does not publish which
workspaces exist and how busy they are.

Label values are bounded: ``route`` is the route template (``/Groups/{gid}``, never a raw
path), ``workspace`` the workspace namespace, ``status`` an HTTP status code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scim_core.informer import Informer

REQUESTS = "scim_api_requests_total"
LATENCY = "scim_api_request_duration_seconds"
REFUSED = "scim_api_refused_requests_total"
PATCH_OPERATIONS = "scim_api_patch_operations_total"
STATUS_WRITES = "scim_api_workspace_status_writes_total"
WATCH_SILENCE = "scim_api_watch_silence_seconds"

#: Route label of a request no route matched (a 404 on an unknown path).
UNMATCHED = "unmatched"
#: Statuses refused before a resource is touched: unauthenticated, rate-limited, not in step.
REFUSALS = frozenset({401, 429, 503})


class _WatchSilence(Collector):
    """Seconds since each watch was last heard from, read at scrape time: the lag of the
    cache the API answers from (above ``SCIM_MAX_WATCH_STALENESS_SECONDS`` it stops serving)."""

    def __init__(self, informers: Callable[[], Iterable[Informer]]) -> None:
        self._informers = informers

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            WATCH_SILENCE, "Seconds since the API last heard from each watch", labels=["resource"]
        )
        for informer in self._informers():
            family.add_metric([informer.plural], informer.health.silent_for())
        yield family


class ApiMetrics:
    """The API's metrics in a registry of their own (the operator may share the process in
    tests and keeps the default one)."""

    def __init__(self, informers: Callable[[], Iterable[Informer]] = list) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            REQUESTS, "SCIM requests answered", ["workspace", "method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            LATENCY, "Time to answer a SCIM request", ["method", "route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.refused = Counter(
            REFUSED, "Requests refused with 401 (token), 429 (rate limit) or 503 (not in step)",
            ["status"], registry=r,
        )  # fmt: skip
        self.patch_operations = Counter(
            PATCH_OPERATIONS, "PATCH operations applied", ["workspace", "resource"], registry=r
        )
        self.status_writes = Counter(
            STATUS_WRITES, "IdP trace writes to workspace status", ["result"], registry=r
        )
        r.register(_WatchSilence(informers))
        #: Each label set's request counter and latency histogram, as ``labels()`` returned
        #: them: that look-up (argument checks, a lock) cost more than the increment. As
        #: bounded as the series themselves (workspace, method, route, status).
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, workspace: str, method: str, route: str, status: int, seconds: float) -> None:
        key = (workspace, method, route, status)
        children = self._children.get(key)
        if children is None:  # first of its kind: prometheus_client's labels() look-ups, once
            children = self._children[key] = (
                self.requests.labels(workspace, method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)
        if status in REFUSALS:
            self.refused.labels(str(status)).inc()
