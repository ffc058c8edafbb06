"""The freshness worker's core: latency windows, staleness and SLOs behind one façade (pure).

The parts: :mod:`~pipeline.core.workers.family` (how a metric behaves in time),
:mod:`~pipeline.core.workers.latency` (per-stage latency windows and percentiles),
:mod:`~pipeline.core.workers.staleness` (which keys are stale, and why) and
:mod:`~pipeline.core.workers.slo` (the objectives, breach and recovery). Every call that
depends on time takes ``now`` (epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.contract.records import AuditRecord, MetricRecord
from pipeline.core.workers.family import Family, metric_family
from pipeline.core.workers.latency import (
    FreshnessReport,
    LatencyWindows,
    StageLatency,
    measure_stages,
)
from pipeline.core.workers.slo import SloChange, SloMonitor, SloSettings
from pipeline.core.workers.staleness import StalenessChange, StalenessTracker

__all__ = ["FreshnessMonitor", "FreshnessOutput"]


@dataclass(frozen=True, slots=True)
class FreshnessOutput:
    """What one :meth:`FreshnessMonitor.tick` asks the worker to publish."""

    reports: tuple[FreshnessReport, ...] = ()
    staleness: tuple[StalenessChange, ...] = ()
    slo: tuple[SloChange, ...] = ()


class FreshnessMonitor:
    """The freshness worker's core: latency windows, staleness and SLOs behind one façade.

    Args:
        instance: the worker instance (goes into every report).
        settings: objectives and knobs.
    """

    def __init__(self, instance: str, settings: SloSettings | None = None) -> None:
        self.instance = instance
        self.settings = s = settings or SloSettings()
        self.windows = LatencyWindows(s.window_s, s.relative_error)
        self.staleness = StalenessTracker(s, forget_after_s=s.forget_after_s)
        self.slo = SloMonitor(s)

    def on_record(
        self, record: MetricRecord, broker_time_ms: int | None, now: float
    ) -> tuple[Family, list[StageLatency]]:
        """Take one consumed metric record (its Kafka timestamp, and when it arrived).

        Returns:
            The record's family and the stage latencies it added (for the worker's metrics,
            so they are measured once).
        """
        family = metric_family(record)
        latencies = measure_stages(record, broker_time_ms, now)
        if latencies:
            self.windows.add_latencies(family, record.entity_type, latencies, now)
        self.staleness.observe(record)
        return family, latencies

    def on_audit(self, audit: AuditRecord) -> None:
        """Take one consumed audit record."""
        self.staleness.observe_audit(audit)

    def tick(self, now: float) -> FreshnessOutput:
        """Re-judge staleness, close ended windows and judge their reports.

        Returns:
            Reports to publish to ``<prefix>.freshness``, staleness changes, and SLO changes
            (publish :meth:`SloChange.audit_event` of each to ``<prefix>.audit``).
        """
        staleness = self.staleness.tick(now)
        reports = self.windows.close(now, self.instance, self.staleness.stale_counts())
        slo = [change for report in reports for change in self.slo.observe(report)]
        return FreshnessOutput(tuple(reports), tuple(staleness), tuple(slo))
