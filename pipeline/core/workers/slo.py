"""The freshness objectives: their thresholds, and breach and recovery per family (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.workers.family import LIVE_FAMILIES
from pipeline.core.workers.latency import FreshnessReport

__all__ = ["SloChange", "SloMonitor", "SloName", "SloSettings"]


@dataclass(frozen=True, slots=True)
class SloSettings:
    """Freshness objectives and the staleness model's knobs (seconds unless noted).

    Attributes:
        live_p95_s: end-to-end p95 allowed for live families (observations, states).
        interval_kpi_p95_s: end-to-end p95 allowed for interval families and KPIs.
        stale_after_factor: a key is stale after this many expected cadences.
        window_s: length of the tumbling latency windows.
        liveness_cadence_s: how often a live producer is expected to show life;
            ``stale_after_factor ×`` this is the silence (or stream outage) that makes keys
            stale.
        min_samples: fewest end-to-end samples in a window to judge the latency SLO.
        relative_error: α of the percentile histograms.
        forget_after_s: a key or producer that showed nothing for this long is forgotten by
            the freshness worker, so its memory is bounded by what was seen lately (a
            deleted queue does not count as stale forever).
    """

    live_p95_s: float = 5.0
    interval_kpi_p95_s: float = 60.0
    stale_after_factor: float = 3.0
    window_s: float = 60.0
    liveness_cadence_s: float = 20.0
    min_samples: int = 1
    relative_error: float = 0.01
    forget_after_s: float = 86_400.0

    def __post_init__(self) -> None:
        positive = (self.live_p95_s, self.interval_kpi_p95_s, self.stale_after_factor,
                    self.window_s, self.liveness_cadence_s, self.forget_after_s)  # fmt: skip
        if min(positive) <= 0 or self.min_samples < 1:
            raise ValueError(
                "SLO thresholds, factor, window, cadence and forget_after_s must be > 0"
            )
        if not 0 < self.relative_error < 1:
            raise ValueError("relative_error must be in (0, 1)")

    @property
    def stale_after_s(self) -> float:
        """Silence or outage after which a producer's keys are stale."""
        return self.stale_after_factor * self.liveness_cadence_s


SloName = Literal["latency_p95", "stale_keys"]


@dataclass(frozen=True, slots=True)
class SloChange:
    """An objective was breached, or recovered, for one family and entity type.

    Attributes:
        slo: ``latency_p95`` (end-to-end p95 against its threshold) or ``stale_keys`` (any
            stale key breaches it).
        family, entity_type: what it concerns.
        breached: the new state (False: recovered).
        value: the p95 in seconds, or the number of stale keys.
        threshold: the limit it was held to.
        window_start, window_end: the window that showed it (epoch ms).
    """

    slo: SloName
    family: str
    entity_type: str
    breached: bool
    value: float
    threshold: float
    window_start: int
    window_end: int

    @property
    def kind(self) -> AuditKind:
        """The audit kind: ``freshness.slo_breached`` or ``freshness.slo_recovered``."""
        if self.breached:
            return AuditKind.FRESHNESS_SLO_BREACHED
        return AuditKind.FRESHNESS_SLO_RECOVERED

    def audit_event(self) -> AuditEvent:
        """The audit fact to publish (``at`` = the window's end)."""
        details = {
            "slo": self.slo, "family": self.family, "entity_type": self.entity_type,
            "value": self.value, "threshold": self.threshold,
            "window_start_ms": self.window_start, "window_end_ms": self.window_end,
        }  # fmt: skip
        return AuditEvent(self.kind, self.window_end / 1000.0, None, details)


class SloMonitor:
    """Breach and recovery of the freshness objectives, from window reports, without flapping.

    Each (objective, family, entity type) starts "met"; :meth:`observe` reports a change only
    when the state flips. A window without enough ``end_to_end`` samples leaves the latency
    objective as it was (no evidence either way).

    Args:
        settings: the thresholds.
    """

    def __init__(self, settings: SloSettings | None = None) -> None:
        self.settings = settings or SloSettings()
        self._breached: dict[tuple[str, str, str], bool] = {}

    def observe(self, report: FreshnessReport) -> list[SloChange]:
        """Judge one report; only ``end_to_end`` reports count.

        Returns:
            Zero, one or two changes (latency, stale keys).
        """
        if report.stage != "end_to_end":
            return []
        s, out = self.settings, []
        p95 = report.p95_seconds
        if report.count >= s.min_samples and p95 is not None:
            live = report.family in LIVE_FAMILIES
            limit = s.live_p95_s if live else s.interval_kpi_p95_s
            out += self._judge("latency_p95", report, p95 > limit, p95, limit)
        stale = float(report.stale_keys)
        out += self._judge("stale_keys", report, report.stale_keys > 0, stale, 0.0)
        return out

    def _judge(
        self, slo: SloName, report: FreshnessReport, breached: bool, value: float, limit: float
    ) -> list[SloChange]:
        key = (slo, report.family, report.entity_type)
        if self._breached.get(key, False) == breached:
            return []
        self._breached[key] = breached
        window = (report.window_start, report.window_end)
        return [SloChange(slo, key[1], key[2], breached, value, limit, *window)]
