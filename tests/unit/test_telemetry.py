"""Every service's metrics: one prefix, the standard collectors, build info, enums, degradation."""

from __future__ import annotations

import platform

import pytest
from prometheus_client import CollectorRegistry

from pipeline import __version__
from pipeline.services.dashboard_metrics import DashboardMetrics
from pipeline.services.freshness_worker import FreshnessMetrics
from pipeline.services.producer_metrics import ProducerMetrics
from pipeline.telemetry import METRIC_PREFIX, DegradedGauge, service_registry

_STANDARD = ("process_", "python_gc_", "python_info")
_SHARED = {"genesys_pipeline_build", "genesys_pipeline_degraded"}  # every service: no kind


def _registries() -> dict[str, CollectorRegistry]:
    return {
        "producer": ProducerMetrics().registry,
        "freshness": FreshnessMetrics().registry,
        "dashboard": DashboardMetrics().registry,
    }


@pytest.mark.parametrize("service", ["producer", "freshness", "dashboard"])
def test_every_service_metric_has_the_one_prefix_and_conventional_units(service: str) -> None:
    registry = _registries()[service]
    names = {family.name: family.type for family in registry.collect()}
    ours = {n: t for n, t in names.items() if not n.startswith(_STANDARD)}
    assert ours
    assert all(name.startswith(METRIC_PREFIX) for name in ours), sorted(ours)
    # prometheus_client drops a counter's _total from the family name; samples carry it.
    assert all(not name.endswith("_total") for name, kind in ours.items() if kind == "counter")
    assert all(name.endswith("_seconds") for name, kind in ours.items() if kind == "histogram")
    if service != "producer":
        kinded = set(ours) - _SHARED
        assert all(name.startswith(f"{METRIC_PREFIX}{service}_") for name in kinded), kinded


@pytest.mark.parametrize("service", ["producer", "freshness", "dashboard"])
def test_every_service_exports_process_gc_and_build_info(service: str) -> None:
    registry = _registries()[service]
    build = {"version": __version__, "python": platform.python_version(), "service": service}
    assert registry.get_sample_value("genesys_pipeline_build_info", build) == 1.0
    samples = {s.name for family in registry.collect() for s in family.samples}
    assert "process_cpu_seconds_total" in samples
    assert "python_gc_collections_total" in samples
    assert "python_info" in samples


def test_circuit_state_is_an_enum_of_named_states() -> None:
    metrics = DashboardMetrics()
    metrics.circuit.state("half_open")
    sample = metrics.registry.get_sample_value
    name = "genesys_pipeline_dashboard_circuit_state"
    assert sample(name, {name: "half_open"}) == 1.0
    assert sample(name, {name: "closed"}) == 0.0
    assert sample(name, {name: "open"}) == 0.0


def test_channel_state_is_an_enum_per_channel() -> None:
    metrics = ProducerMetrics()
    metrics.channel_state.labels("0").state("live")
    metrics.channel_state.labels("1").state("connecting")
    name = "genesys_pipeline_channel_state"
    sample = metrics.registry.get_sample_value
    assert sample(name, {"channel": "0", name: "live"}) == 1.0
    assert sample(name, {"channel": "1", name: "live"}) == 0.0
    assert sample(name, {"channel": "1", name: "connecting"}) == 1.0


def test_degraded_counts_only_after_the_hold_time_and_recovers_at_once() -> None:
    registry = service_registry("producer")
    degraded = DegradedGauge(registry, ("genesys", "kafka"), hold_s=5.0)
    value = lambda reason: registry.get_sample_value(  # noqa: E731
        "genesys_pipeline_degraded", {"reason": reason}
    )
    assert value("genesys") == 0.0
    assert value("kafka") == 0.0
    assert degraded.observe("genesys", True, now=100.0) is None  # still connecting, maybe
    assert degraded.observe("genesys", True, now=104.9) is None
    assert degraded.observe("genesys", True, now=105.0) is True
    assert value("genesys") == 1.0
    assert degraded.active == {"genesys"}
    assert degraded.observe("genesys", True, now=200.0) is None  # still: no second change
    assert degraded.observe("genesys", False, now=201.0) is False
    assert value("genesys") == 0.0
    assert not degraded.active
    assert degraded.observe("genesys", False, now=202.0) is None


def test_a_blip_shorter_than_the_hold_time_is_no_degradation() -> None:
    degraded = DegradedGauge(CollectorRegistry(), ("kafka",), hold_s=5.0)
    assert degraded.observe("kafka", True, now=0.0) is None
    assert degraded.observe("kafka", False, now=3.0) is None
    assert degraded.observe("kafka", True, now=4.0) is None  # the hold starts again
    assert degraded.observe("kafka", True, now=8.0) is None
    assert degraded.observe("kafka", True, now=9.0) is True
