"""Workspace series: a workspace's stale label values leave the gauge (nothing stale is scraped)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from scim_operator.metrics import WorkspaceSeries, condition_values


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["workspace"], s.labels["x"]): s.value
        for metric in registry.collect()
        for s in metric.samples
    }


def test_series_follow_the_latest_set_and_clear() -> None:
    registry = CollectorRegistry()
    series = WorkspaceSeries(Gauge("g", "test", ["workspace", "x"], registry=registry))
    series.set("ws1", {"a": 1.0, "b": 2.0})
    series.set("ws2", {"a": 5.0})
    series.set("ws1", {"b": 3.0, "c": 4.0})
    assert _samples(registry) == {("ws1", "b"): 3.0, ("ws1", "c"): 4.0, ("ws2", "a"): 5.0}
    series.clear("ws1")
    series.clear("never-seen")
    assert _samples(registry) == {("ws2", "a"): 5.0}
    series.set("ws3", {"z": 1.0})
    series.clear_all()
    assert _samples(registry) == {}


def test_condition_values_skip_unknown() -> None:
    conditions = [
        {"type": "Ready", "status": "True"},
        {"type": "Synced", "status": "False"},
        {"type": "TokenExpiring", "status": "Unknown"},
    ]
    assert condition_values(conditions) == {"Ready": 1.0, "Synced": 0.0}
    assert condition_values(None) == {}
