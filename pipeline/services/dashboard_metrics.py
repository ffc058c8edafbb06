"""Prometheus metrics of the dashboard worker, on a registry of its own.

Names follow :mod:`pipeline.telemetry` (``genesys_pipeline_dashboard_...``); the registry
also carries the process, GC and build-info collectors.
"""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge

from pipeline.core.workers.breaker import BREAKER_STATES
from pipeline.kafka.worker import WorkerKafkaMetrics
from pipeline.telemetry import DegradedGauge, service_registry

__all__ = ["DashboardMetrics"]


class DashboardMetrics:
    """Values in, pushes by outcome, coalescing ratio, circuit state, keys waiting,
    degradation."""

    def __init__(self) -> None:
        self.registry = service_registry("dashboard")
        r = self.registry
        self.received = Counter(
            "genesys_pipeline_dashboard_values_received_total",
            "Metric records consumed",
            registry=r,
        )
        self.pushes = Counter(
            "genesys_pipeline_dashboard_pushes_total",
            "Push attempts by outcome",
            ["outcome"],
            registry=r,
        )
        self.pushed_values = Counter(
            "genesys_pipeline_dashboard_values_pushed_total",
            "Values in acknowledged pushes",
            registry=r,
        )
        self.coalescing = Gauge(
            "genesys_pipeline_dashboard_coalescing_ratio",
            "Records consumed per value pushed",
            registry=r,
        )
        self.circuit = Enum(
            "genesys_pipeline_dashboard_circuit_state",
            "State of the circuit breaker in front of the dashboard",
            states=list(BREAKER_STATES),
            registry=r,
        )
        self.degraded = DegradedGauge(r, ("dashboard",), hold_s=0.0)
        """``dashboard`` is 1 while the circuit is not closed; the worker stays ready."""
        self.pending = Gauge(
            "genesys_pipeline_dashboard_pending_keys", "Keys waiting for a push", registry=r
        )
        self.fetch_paused = Gauge(
            "genesys_pipeline_dashboard_fetch_paused",
            "1 while fetching waits for the dashboard",
            registry=r,
        )
        self.kafka = WorkerKafkaMetrics(r, "dashboard")
        """Dead letters, decode errors, registry waits and commits (the Kafka side)."""

        self.records_in = 0
        self.values_out = 0

    def count_in(self, records: int) -> None:
        """``records`` metric records were consumed."""
        self.records_in += records
        self.received.inc(records)
        self._ratio()

    def count_out(self, values: int) -> None:
        """An acknowledged push carried ``values`` values."""
        self.values_out += values
        self.pushed_values.inc(values)
        self._ratio()

    def _ratio(self) -> None:
        if self.values_out:
            self.coalescing.set(self.records_in / self.values_out)
