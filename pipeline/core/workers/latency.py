"""Latency per pipeline stage, as windowed percentiles (pure: the caller passes ``now``).

Stages of one metric record, in seconds (record times are epoch milliseconds, ``now`` is epoch
seconds like everywhere in :mod:`pipeline.core`):

- ``genesys_to_ingest`` = ``ingest_time − event_time``: how late Genesys told us. Only for
  records whose ``event_time`` is a Genesys time (:func:`has_genesys_time`): live instant
  observations and presence/routing states. Aggregates, ``member`` records and queue activity
  records carry the ingest time as ``event_time`` (``docs/kafka-contract.md``), so the stage
  would be 0.
- ``ingest_to_broker`` = Kafka record timestamp − ``ingest_time``. The timestamp is the
  broker's append time only when the topic has ``message.timestamp.type=LogAppendTime``; with
  the default ``CreateTime`` it is when librdkafka accepted the record, and this stage then
  measures the producer's own queueing (mapping, encoding, ``produce()``), not the broker.
- ``broker_to_worker`` = ``now`` − Kafka record timestamp: consumer lag plus poll latency.
- ``end_to_end`` = ``now − event_time``. Backfilled records are left out of this stage and of
  ``genesys_to_ingest``: a backfilled presence keeps its ``modifiedDate``, which may be hours
  old, and would report the age of the state instead of a delay of the pipeline.

A negative difference (the hosts' clocks disagree) counts as 0 and is flagged ``skewed``, so
it is visible as ``skew_count`` instead of silently dragging the percentiles down.

Percentiles: :class:`LogHistogram` keeps counts in log-spaced buckets (the DDSketch layout,
Masson et al., VLDB 2019): bucket ``i`` holds values in ``(γ^(i−1), γ^i]`` with
``γ = (1+α)/(1−α)`` and answers with ``2γ^i/(γ+1)``, which is within relative error ``α`` of
every value in the bucket. Values below ``min_value`` (1 ms) share a zero bucket. Adding is
O(1) (one ``log``, one dict update), memory is bounded by ``log(max/min_value)/log(γ)``
buckets (about 1,000 for 1 ms..10 days at α = 1%), and nothing is random.

Windows: :class:`LatencyWindows` keeps one histogram per (stage, family, entity type) per
tumbling window of ``window_s`` seconds aligned to the epoch, assigned by the worker's
receive time ``now`` (so a window closes once, when ``now`` passes its end; a late record
cannot land in a closed window). ``close(now)`` turns every ended window into
:class:`FreshnessReport` values, mirrored by ``schemas/freshness.avsc``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

import orjson

from pipeline.core.contract.records import SCHEMA_VERSION, MetricRecord, digest_id, to_epoch_ms

__all__ = [
    "FRESHNESS_FIELDS",
    "STAGES",
    "FreshnessReport",
    "LatencyWindows",
    "LogHistogram",
    "Stage",
    "StageLatency",
    "freshness_report",
    "has_genesys_time",
    "measure_stages",
]

Stage = Literal["genesys_to_ingest", "ingest_to_broker", "broker_to_worker", "end_to_end"]
"""A leg of a record's way from Genesys to the worker (see the module docstring)."""

STAGES: Final[tuple[Stage, ...]] = (
    "genesys_to_ingest",
    "ingest_to_broker",
    "broker_to_worker",
    "end_to_end",
)
"""Every stage, in the order of the record's way (also the order of reports)."""

FRESHNESS_FIELDS: Final = (
    "event_id", "worker_instance", "window_start", "window_end", "stage", "family",
    "entity_type", "count", "p50_seconds", "p95_seconds", "p99_seconds", "max_seconds",
    "skew_count", "stale_keys", "schema_version",
)  # fmt: skip
"""Field names of ``schemas/freshness.avsc``, in order."""

_STAGE_ORDER: Final[dict[str, int]] = {stage: index for index, stage in enumerate(STAGES)}


class StageLatency(NamedTuple):
    """One stage's latency of one record (a named tuple: built several times per record,
    about 3x cheaper than a frozen dataclass).

    Attributes:
        stage: which leg.
        seconds: the latency, never negative (a negative difference is counted as 0).
        skewed: the raw difference was negative (clock skew between hosts).
    """

    stage: Stage
    seconds: float
    skewed: bool


def has_genesys_time(record: MetricRecord) -> bool:
    """Whether ``record.event_time`` is a time Genesys gave us, fit to measure delay with.

    True for live instant observations and presence/routing states; False for aggregates and
    KPIs (``event_time`` is the ingest time), ``member`` records and the queue activity topic
    (same: their bodies carry no time, docs/genesys-api.md §6.8) and backfill.
    """
    if record.interval_start is not None or record.metric == "member" or record.backfill:
        return False
    topic = record.source_topic
    return not (topic.endswith(".activity") and topic.startswith("v2.analytics.queues."))


def _stage(stage: Stage, millis: float) -> StageLatency:
    if millis < 0:
        return StageLatency(stage, 0.0, True)
    return StageLatency(stage, millis / 1000.0, False)


def measure_stages(
    record: MetricRecord, broker_time_ms: int | None, now: float
) -> list[StageLatency]:
    """The latencies of one record, for the stages that apply to it.

    Args:
        record: the metric record as consumed.
        broker_time_ms: the Kafka record timestamp (epoch ms), or None when the broker gave
            none (then the two broker stages are left out).
        now: when the worker received the record (epoch seconds).

    Returns:
        Zero to four latencies, in :data:`STAGES` order.
    """
    worker_ms = now * 1000.0
    out: list[StageLatency] = []
    if has_genesys_time(record):
        out.append(_stage("genesys_to_ingest", record.ingest_time - record.event_time))
    if broker_time_ms is not None:
        out.append(_stage("ingest_to_broker", broker_time_ms - record.ingest_time))
        out.append(_stage("broker_to_worker", worker_ms - broker_time_ms))
    if not record.backfill:
        out.append(_stage("end_to_end", worker_ms - record.event_time))
    return out


class LogHistogram:
    """Counts of non-negative values in log-spaced buckets; quantiles within ``relative_error``.

    Args:
        relative_error: α, the largest relative error of a quantile (0 < α < 1).
        min_value: values below it share one bucket answered with 0 (absolute error below
            ``min_value``); 1 ms by default, the resolution of record timestamps.

    Raises:
        ValueError: α or ``min_value`` out of range.
    """

    __slots__ = ("_buckets", "_gamma", "_log_gamma", "_zero", "count", "max", "min", "min_value")

    def __init__(self, relative_error: float = 0.01, min_value: float = 0.001) -> None:
        if not 0.0 < relative_error < 1.0 or not min_value > 0.0:
            raise ValueError("relative_error must be in (0, 1) and min_value > 0")
        self._gamma = (1.0 + relative_error) / (1.0 - relative_error)
        self._log_gamma = math.log(self._gamma)
        self.min_value = min_value
        self._buckets: dict[int, int] = {}
        self._zero = 0
        self.count = 0
        """How many values were added."""
        self.min = math.inf
        """The smallest value added (exact); ``inf`` while empty."""
        self.max = 0.0
        """The largest value added (exact); 0 while empty."""

    @property
    def relative_error(self) -> float:
        """α: every quantile is within this relative error (above ``min_value``)."""
        return (self._gamma - 1.0) / (self._gamma + 1.0)

    def add(self, value: float) -> None:
        """Count one value.

        Raises:
            ValueError: a negative, NaN or infinite value.
        """
        if not 0.0 <= value < math.inf:
            raise ValueError(f"histogram values must be finite and ≥ 0, got {value!r}")
        self.count += 1
        if value < self.min:  # comparisons, not min()/max(): this runs per sample
            self.min = value
        if value > self.max:
            self.max = value
        if value < self.min_value:
            self._zero += 1
        else:
            index = math.ceil(math.log(value) / self._log_gamma)
            self._buckets[index] = self._buckets.get(index, 0) + 1

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Nearest-rank quantiles: for ``q`` the value of rank ``max(1, ceil(q·count))``.

        The answer is the bucket's representative clamped to the exact ``[min, max]``, so it
        is within ``relative_error`` of the exact sample quantile (within ``min_value`` in
        the zero bucket).

        Args:
            qs: quantiles in ``[0, 1]``, in any order.

        Returns:
            One value per quantile, or None for each when the histogram is empty.

        Raises:
            ValueError: a quantile outside ``[0, 1]``.
        """
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise ValueError("quantiles must lie in [0, 1]")
        if self.count == 0:
            return [None] * len(qs)
        ranks = sorted((max(1, math.ceil(q * self.count)), i) for i, q in enumerate(qs))
        out: list[float | None] = [None] * len(qs)
        cells = [(0.0, self._zero)]
        cells += [(self._value(i), self._buckets[i]) for i in sorted(self._buckets)]
        seen, position = 0, 0
        for value, n in cells:
            seen += n
            while position < len(ranks) and ranks[position][0] <= seen:
                out[ranks[position][1]] = min(max(value, self.min), self.max)
                position += 1
        return out

    def _value(self, index: int) -> float:
        return 2.0 * self._gamma**index / (self._gamma + 1.0)


@dataclass(frozen=True, slots=True)
class FreshnessReport:
    """Latency of one stage for one family and entity type over one window.

    Mirrors ``schemas/freshness.avsc`` (same names, same order, :data:`FRESHNESS_FIELDS`);
    times are epoch milliseconds, latencies seconds. Build it with :func:`freshness_report`,
    which derives the deterministic ``event_id``.
    """

    event_id: str
    worker_instance: str
    window_start: int
    window_end: int
    stage: str
    family: str
    entity_type: str
    count: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    p99_seconds: float | None = None
    max_seconds: float | None = None
    skew_count: int = 0
    stale_keys: int = 0
    schema_version: int = SCHEMA_VERSION


def freshness_report(
    instance: str,
    window: tuple[int, int],
    group: tuple[str, str, str],
    histogram: LogHistogram | None,
    skew_count: int = 0,
    stale_keys: int = 0,
) -> FreshnessReport:
    """Build a report from a window's histogram.

    Event id: BLAKE2b-128 of ``orjson.dumps(["freshness", instance, start_ms, end_ms, stage,
    family, entity_type, count, p50, p95, p99, max, skew_count, stale_keys])``: the same
    report twice has the same id; a worker that re-reads a window after a restart and sees
    other data writes a different one.

    Args:
        instance: the worker instance.
        window: (start, end) in epoch milliseconds.
        group: (stage, family, entity_type).
        histogram: the window's latencies, or None for a report with no samples.
        skew_count: samples that were negative before clamping.
        stale_keys: stale keys of the family and entity type when the window closed.

    Returns:
        The report.
    """
    stage, family, entity_type = group
    count = 0 if histogram is None else histogram.count
    p50 = p95 = p99 = top = None
    if histogram is not None and count:
        p50, p95, p99 = histogram.quantiles((0.5, 0.95, 0.99))
        top = histogram.max
    start, end = window
    facts = [instance, start, end, stage, family, entity_type, count, p50, p95, p99, top]
    event_id = digest_id(orjson.dumps(["freshness", *facts, skew_count, stale_keys]))
    return FreshnessReport(
        event_id, instance, start, end, stage, family, entity_type, count,
        p50, p95, p99, top, skew_count, stale_keys,
    )  # fmt: skip


class _Cell:
    __slots__ = ("histogram", "skew_count")

    def __init__(self, relative_error: float) -> None:
        self.histogram = LogHistogram(relative_error)
        self.skew_count = 0


class LatencyWindows:
    """Stage latencies per (stage, family, entity type) over tumbling windows.

    Args:
        window_s: window length in seconds (windows are aligned to the epoch).
        relative_error: α of each window's histograms.

    Raises:
        ValueError: ``window_s`` not positive.
    """

    def __init__(self, window_s: float = 60.0, relative_error: float = 0.01) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        LogHistogram(relative_error)  # validates α once, here, not on the first add
        self.window_s = window_s
        self._alpha = relative_error
        self._open: dict[int, dict[tuple[str, str, str], _Cell]] = {}
        self._floor: int | None = None  # the oldest window that may still take samples

    def add(
        self, record: MetricRecord, family: str, broker_time_ms: int | None, now: float
    ) -> None:
        """Add the stage latencies of one record to the window of ``now``.

        A ``now`` that falls in an already closed window (the clock stepped back) counts in
        the oldest open one, so a closed window is never reported twice.

        Args:
            record: the consumed record.
            family: its metric family (:func:`pipeline.core.workers.family.metric_family`).
            broker_time_ms: its Kafka timestamp (epoch ms) or None.
            now: when the worker received it (epoch seconds).
        """
        latencies = measure_stages(record, broker_time_ms, now)
        if latencies:
            self.add_latencies(family, record.entity_type, latencies, now)

    def add_latencies(
        self, family: str, entity_type: str, latencies: Iterable[StageLatency], now: float
    ) -> None:
        """Add already measured latencies (see :meth:`add`)."""
        index = math.floor(now / self.window_s)
        if self._floor is None:
            self._floor = index
        index = max(index, self._floor)
        window = self._open.get(index)
        if window is None:
            window = self._open[index] = {}
        for latency in latencies:
            group = (latency.stage, family, entity_type)
            cell = window.get(group)
            if cell is None:
                cell = window[group] = _Cell(self._alpha)
            cell.histogram.add(latency.seconds)
            cell.skew_count += latency.skewed

    def next_close_at(self) -> float | None:
        """When the oldest open window ends (epoch seconds), or None when none is open."""
        return (min(self._open) + 1) * self.window_s if self._open else None

    def close(
        self, now: float, instance: str, stale_counts: Mapping[tuple[str, str], int] | None = None
    ) -> list[FreshnessReport]:
        """Report and forget every window that ended at or before ``now``.

        Each ended window gives one report per (stage, family, entity type) with samples.
        ``stale_counts`` (from
        :meth:`~pipeline.core.workers.staleness.StalenessTracker.stale_counts`)
        sets ``stale_keys`` on them; a (family, entity type) in it without ``end_to_end``
        samples still gets an ``end_to_end`` report with count 0, so a dead stream (no data
        at all) is reported, and so is its recovery.

        Args:
            now: the current time (epoch seconds).
            instance: the worker instance, for the reports.
            stale_counts: (family, entity_type) → stale keys now; None for none.

        Returns:
            Reports ordered by window, stage, family and entity type.
        """
        counts = stale_counts or {}
        last = math.floor(now / self.window_s) - 1  # the newest window that has ended
        if self._floor is None:
            self._floor = last + 1  # the worker started in window last+1: nothing before it
        ended = {i for i in self._open if i <= last}
        if counts and last >= self._floor:
            # A run of windows without samples gives one report, for the newest of them.
            ended.add(last)
        reports: list[FreshnessReport] = []
        for index in sorted(ended):
            cells = self._open.pop(index, {})
            window = (to_epoch_ms(index * self.window_s), to_epoch_ms((index + 1) * self.window_s))
            for pair in counts:
                cells.setdefault(("end_to_end", *pair), _Cell(self._alpha))
            for group in sorted(cells, key=lambda g: (_STAGE_ORDER[g[0]], g[1], g[2])):
                cell = cells[group]
                stale = counts.get((group[1], group[2]), 0)
                histogram = cell.histogram
                reports.append(
                    freshness_report(instance, window, group, histogram, cell.skew_count, stale)
                )
        self._floor = max(self._floor, last + 1)
        return reports
