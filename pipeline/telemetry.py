"""Prometheus conventions shared by every service: one metric prefix, standard collectors,
build info, and the degradation gauge.

Every metric the pipeline exports starts with :data:`METRIC_PREFIX` (``genesys_pipeline_``):
the producer's own names follow it directly (``genesys_pipeline_frames_total``), the
workers' carry their kind (``genesys_pipeline_freshness_records_total``,
``genesys_pipeline_dashboard_pushes_total``). Counters end in ``_total``, durations in
``_seconds``. Each service's registry also carries the standard ``process_*``,
``python_gc_*`` and ``python_info`` collectors (what ``prometheus_client`` registers on its
global registry, which we do not use) and ``genesys_pipeline_build_info{version,python,service} 1``.

Degradation is not unreadiness: an upstream that is away (Genesys, Kafka, the schema
registry, the dashboard) sets ``genesys_pipeline_degraded{reason=...}`` to 1 while it lasts;
``/readyz`` answers 503 only for the process's own start-up and configuration errors (see
``services/ops.py``).
"""

from __future__ import annotations

import platform
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from pipeline import __version__

__all__ = ["METRIC_PREFIX", "DegradedGauge", "metric_name", "service_registry"]

METRIC_PREFIX: Final = "genesys_pipeline_"
"""The namespace of every metric the pipeline exports."""


def metric_name(name: str) -> str:
    """``name`` in the pipeline's namespace: ``frames_total`` → ``genesys_pipeline_frames_total``.

    Args:
        name: the name without the prefix.

    Returns:
        The full metric name.
    """
    return f"{METRIC_PREFIX}{name}"


def service_registry(service: str) -> CollectorRegistry:
    """A fresh registry for one service, with the standard collectors and build info.

    Args:
        service: ``producer``, ``freshness`` or ``dashboard`` (the build info's label).

    Returns:
        The registry: ``process_*``, ``python_gc_*``, ``python_info`` and
        ``genesys_pipeline_build_info`` already registered.
    """
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    build = Info(metric_name("build"), "Build of the running service", registry=registry)
    build.info({"version": __version__, "python": platform.python_version(), "service": service})
    return registry


class DegradedGauge:
    """``genesys_pipeline_degraded{reason}``: 1 while an upstream is away, 0 once it is back.

    A condition counts as degraded only once it has held for ``hold_s`` (a channel that is
    still connecting at start, or one Kafka retry, is not an outage); it recovers at once.

    Args:
        registry: the service's registry.
        reasons: the reasons this service knows, each exported at 0 from the start (so an
            alert's series exists before the first outage).
        hold_s: how long a condition must hold before it counts.
    """

    def __init__(
        self, registry: CollectorRegistry, reasons: tuple[str, ...], hold_s: float = 5.0
    ) -> None:
        self._gauge = Gauge(
            metric_name("degraded"),
            "1 while an upstream dependency is away (the service stays ready)",
            ["reason"],
            registry=registry,
        )
        self._hold_s = hold_s
        self._since: dict[str, float] = {}  # reason → when its condition was first seen
        self._active: set[str] = set()
        for reason in reasons:
            self._gauge.labels(reason).set(0)

    def observe(self, reason: str, bad: bool, now: float) -> bool | None:
        """Feed the current condition of ``reason``.

        Args:
            reason: e.g. ``genesys``, ``kafka``, ``dashboard``.
            bad: whether the upstream is away now.
            now: monotonic seconds.

        Returns:
            True when ``reason`` just became degraded, False when it just recovered, None
            when nothing changed (the caller audits the changes).
        """
        if not bad:
            self._since.pop(reason, None)
            if reason in self._active:
                self._active.discard(reason)
                self._gauge.labels(reason).set(0)
                return False
            return None
        since = self._since.setdefault(reason, now)
        if reason in self._active or now - since < self._hold_s:
            return None
        self._active.add(reason)
        self._gauge.labels(reason).set(1)
        return True

    @property
    def active(self) -> frozenset[str]:
        """The reasons degraded now."""
        return frozenset(self._active)
