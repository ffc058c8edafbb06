"""The freshness worker: consume ``<prefix>.metrics`` and ``<prefix>.audit``, measure stage
latencies and staleness, publish :class:`FreshnessReport` values and SLO transitions.

Wiring only: the logic is the pure :class:`pipeline.core.workers.freshness.FreshnessMonitor`; this
module feeds it records from Kafka and publishes what its ticks return.

Topology
--------
- ``<prefix>.metrics`` is read by one consumer group (``genesys-freshness`` by default):
  instances share its partitions, and each reports latencies of the partitions it holds.
- ``<prefix>.audit`` must be read **in full by every instance** (staleness needs every
  producer's stream events): each instance reads it in a group of its own,
  ``<group>-audit-<instance>``, from the earliest offset, and never commits there, so a
  restart re-reads the whole audit history that retention kept.
- Every ``report_interval_s`` the monitor ticks: ended windows go to ``<prefix>.freshness``
  (key ``stage|family|entity_type``, built by :meth:`pipeline.kafka.outbox.Outbox.freshness`),
  SLO transitions go to ``<prefix>.audit`` as ``freshness.slo_breached`` /
  ``freshness.slo_recovered`` audit records.
- Consumers, decoders and the producer are :class:`pipeline.kafka.worker.WorkerKafka`; a value
  that cannot be decoded, on either topic, goes to ``<prefix>.dlq`` (stage
  ``freshness-decode``), is counted (``genesys_pipeline_freshness_decode_errors_total``) and
  moved past; while the schema registry cannot be asked for a new schema id, reading that
  topic pauses and resumes once it answers (nothing valid is dead-lettered or committed meanwhile).

Delivery
--------
The metrics consumer commits after each processed fetch, before the fetched records' latencies
are reported, and only once the fetch's dead letters are acknowledged. A commit that fails
(Kafka unreachable, a rebalance) is not fatal: its offsets go with the next one. The worker's
side effects are statistics, so this is at least once for the records (a crash before the
commit re-reads a fetch and counts it twice) and at most once for a window's report (a crash
before the tick loses the open window's samples). Reports carry a deterministic
``event_id``, so a report written twice is recognisable. On stop the worker ticks once more,
also reports the window still open (its samples would otherwise be lost), flushes Kafka and
leaves both groups.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram

from pipeline.core.contract.records import MetricRecord, audit_record
from pipeline.core.http_policy import Backoff
from pipeline.core.workers.freshness import FreshnessMonitor, FreshnessOutput
from pipeline.core.workers.latency import FreshnessReport
from pipeline.core.workers.slo import SloChange, SloSettings
from pipeline.kafka.admin import TOPIC_CONFIG, TopicSpec
from pipeline.kafka.producer import OutRecord
from pipeline.kafka.worker import WorkerKafka, WorkerKafkaMetrics, audit_group_id
from pipeline.services.ops import OpsServer
from pipeline.services.tally import HistogramTally
from pipeline.settings import KafkaSettings, RegistrySettings, WorkerSettings
from pipeline.telemetry import service_registry

__all__ = [
    "DEFAULT_GROUP",
    "FRESHNESS_PARTITIONS",
    "FreshnessConfig",
    "FreshnessMetrics",
    "FreshnessWorker",
]

log = logging.getLogger(__name__)

DEFAULT_GROUP: Final = "genesys-freshness"
"""The metrics consumer group when ``WorkerSettings.group_id`` is unset."""
FRESHNESS_PARTITIONS: Final = 3
"""Partitions of ``<prefix>.freshness`` when the worker creates it."""
WORKER_TOPICS: Final = ("freshness", "audit", "dlq")
"""The suffixes the worker writes (checked against the registry at start)."""

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)


@dataclass(frozen=True, slots=True)
class FreshnessConfig:
    """Everything one freshness worker instance needs.

    Attributes:
        kafka: connection settings.
        registry: the schema registry.
        worker: prefix, instance, group, session timeout, ops endpoint.
        slo: objectives and the staleness model's knobs.
        report_interval_s: seconds between ticks; None: ``slo.window_s``.
        retry: backoff while the schema registry cannot be asked.
    """

    kafka: KafkaSettings
    registry: RegistrySettings
    worker: WorkerSettings
    slo: SloSettings = field(default_factory=SloSettings)
    report_interval_s: float | None = None
    retry: Backoff = field(default_factory=Backoff)

    @property
    def instance(self) -> str:
        """This worker's name in reports and audit."""
        return self.worker.instance or f"freshness-{socket.gethostname()}"

    @property
    def group_id(self) -> str:
        """The metrics consumer group."""
        return self.worker.group_id or DEFAULT_GROUP

    @property
    def audit_group_id(self) -> str:
        """This instance's own group on the audit topic (it reads every partition)."""
        return audit_group_id(self.group_id, self.instance)

    @property
    def interval_s(self) -> float:
        """Seconds between ticks."""
        return self.report_interval_s or self.slo.window_s


class FreshnessMetrics:
    """Prometheus metrics of the freshness worker, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = service_registry("freshness")
        r = self.registry
        self.records = Counter(
            "genesys_pipeline_freshness_records_total", "Records consumed", ["topic"], registry=r
        )
        self.kafka = WorkerKafkaMetrics(r, "freshness")
        """Decode errors, dead letters, registry waits and commits (the Kafka side)."""
        self.stage_latency = Histogram(
            "genesys_pipeline_freshness_stage_latency_seconds",
            "Latency of one stage of a record's way, per metric family",
            ["stage", "family"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stale_keys = Gauge(
            "genesys_pipeline_freshness_stale_keys",
            "Stale keys at the last tick",
            ["family", "entity_type"],
            registry=r,
        )
        self.slo_breached = Gauge(
            "genesys_pipeline_freshness_slo_breached",
            "1 while an objective is breached",
            ["slo", "family", "entity_type"],
            registry=r,
        )
        self.reports = Counter(
            "genesys_pipeline_freshness_reports_published_total",
            "Freshness reports published",
            registry=r,
        )
        self.slo_changes = Counter(
            "genesys_pipeline_freshness_slo_changes_total",
            "SLO breaches and recoveries",
            ["kind"],
            registry=r,
        )
        self.partitions = Gauge(
            "genesys_pipeline_freshness_partitions_assigned",
            "Metrics partitions this instance holds",
            registry=r,
        )


class FreshnessWorker:
    """One freshness worker instance (see the module docstring).

    Args:
        config: where to read and write, and the objectives.
    """

    def __init__(self, config: FreshnessConfig) -> None:
        self.config = config
        self.metrics = FreshnessMetrics()
        self.monitor = FreshnessMonitor(config.instance, config.slo)
        self.latest_reports: tuple[FreshnessReport, ...] = ()
        """The reports of the last window published (for summaries)."""
        self.ops: OpsServer | None = None
        self._kafka: WorkerKafka | None = None
        self._stage_latency = HistogramTally(self.metrics.stage_latency)

    @property
    def freshness_topic(self) -> str:
        """``<prefix>.freshness``."""
        return f"{self.config.worker.topic_prefix}.freshness"

    def readiness(self) -> list[str]:
        """Why the worker is not ready (empty when ready)."""
        if self._kafka is None:
            return ["schema contract not checked yet"]
        self.metrics.partitions.set(len(self._kafka.metrics.assignment()))
        return self._kafka.readiness()

    def assignment(self) -> set[tuple[str, int]]:
        """The metrics partitions this instance holds now (empty before start)."""
        return set() if self._kafka is None else self._kafka.metrics.assignment()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; reports the open window, flushes and leaves the groups.

        Raises:
            SchemaError: the registry does not hold this build's freshness or audit schema.
            PublishError: the freshness topic cannot be created.
        """
        cfg = self.config.worker
        self.ops = OpsServer(self.metrics.registry, self.readiness, cfg.ops_host, cfg.ops_port)
        await self.ops.start()
        try:
            self._kafka = kafka = self._new_kafka()
            if not await kafka.start(stop):
                return  # stopped while waiting for the registry
            try:
                await self._loop(kafka, stop)
                await self._publish(kafka, self._final_output(time.time()))
            finally:
                await kafka.aclose()
        finally:
            await self.ops.aclose()

    def _new_kafka(self) -> WorkerKafka:
        cfg = self.config
        return WorkerKafka(
            cfg.kafka,
            cfg.registry,
            prefix=cfg.worker.topic_prefix,
            instance=cfg.instance,
            group_id=cfg.group_id,
            session_timeout_ms=cfg.worker.session_timeout_ms,
            writes=WORKER_TOPICS,
            create=[
                TopicSpec(
                    self.freshness_topic,
                    FRESHNESS_PARTITIONS,
                    cfg.worker.replication,
                    TOPIC_CONFIG["freshness"],
                )
            ],
            kind="freshness",
            metrics=self.metrics.kafka,
            retry=cfg.retry,
            max_record_bytes=cfg.worker.max_record_bytes,
        )

    # ------------------------------------------------------------------------------ loops
    async def _loop(self, kafka: WorkerKafka, stop: asyncio.Event) -> None:
        """Run the three loops until ``stop``; a failing loop stops the others and raises."""
        loops: list[Coroutine[Any, Any, None]] = [
            self._consume_metrics(kafka),
            self._consume_audit(kafka),
            self._tick_loop(kafka),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, stopper):
                task.cancel()
            results = await asyncio.gather(*tasks, stopper, return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]  # a loop's failure ends the worker

    async def _consume_metrics(self, kafka: WorkerKafka) -> None:
        """Fetch, feed the monitor, commit: forever."""
        offsets: dict[tuple[str, int], int] = {}  # not committed yet
        while True:
            polled = await kafka.poll_metrics(timeout_ms=200)
            self._on_metrics(polled, time.time())
            for raw, _ in polled:  # dead-lettered ones (None) are moved past too
                offsets[(raw.topic, raw.partition)] = raw.offset + 1
            if offsets and await kafka.commit(offsets):
                offsets.clear()
            elif offsets:  # put off: keep only partitions this member still holds
                assigned = kafka.metrics.assignment()
                offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}

    def _on_metrics(
        self, polled: Iterable[tuple[ConsumerRecord[bytes, bytes], MetricRecord | None]], now: float
    ) -> None:
        """Feed one fetch's records to the monitor; Prometheus is updated once per fetch."""
        on_record, add = self.monitor.on_record, self._stage_latency.add
        count = 0
        for raw, record in polled:
            if record is None:  # dead-lettered, moved past
                continue
            count += 1
            broker_ms = raw.timestamp if raw.timestamp and raw.timestamp > 0 else None
            family, latencies = on_record(record, broker_ms, now)
            for latency in latencies:
                add((latency.stage, family), latency.seconds)
        if count:
            self.metrics.records.labels("metrics").inc(count)
        self._stage_latency.flush()

    async def _consume_audit(self, kafka: WorkerKafka) -> None:
        """Read the whole audit topic; offsets are never committed (see the module doc)."""
        while True:
            for _, record in await kafka.poll_audit(timeout_ms=200):
                if record is not None:  # None: dead-lettered, skipped
                    self.metrics.records.labels("audit").inc()
                    self.monitor.on_audit(record)

    async def _tick_loop(self, kafka: WorkerKafka) -> None:
        """Tick every ``interval_s`` and publish what the monitor says."""
        while True:
            await asyncio.sleep(self.config.interval_s)
            await self._publish(kafka, self.monitor.tick(time.time()))

    def _final_output(self, now: float) -> FreshnessOutput:
        """The last tick, plus the window still open (reported with its nominal end)."""
        out = self.monitor.tick(now)
        close_at = self.monitor.windows.next_close_at()
        if close_at is None:
            return out
        counts = self.monitor.staleness.stale_counts()
        extra = self.monitor.windows.close(close_at, self.config.instance, counts)
        slo = [change for report in extra for change in self.monitor.slo.observe(report)]
        return FreshnessOutput(out.reports + tuple(extra), out.staleness, out.slo + tuple(slo))

    # ------------------------------------------------------------------------------ publishing
    async def _publish(self, kafka: WorkerKafka, out: FreshnessOutput) -> None:
        """Reports to ``.freshness``, SLO changes to ``.audit``; gauges updated."""
        for (family, entity_type), n in self.monitor.staleness.stale_counts().items():
            self.metrics.stale_keys.labels(family, entity_type).set(n)
        if out.reports:
            self.latest_reports = out.reports
        records = [kafka.outbox.freshness(report) for report in out.reports]
        records += [self._slo_record(kafka, change) for change in out.slo]
        if records:
            await kafka.publisher.publish_many(records)
        self.metrics.reports.inc(len(out.reports))
        self._count_slo(out.slo)

    def _count_slo(self, changes: Iterable[SloChange]) -> None:
        for change in changes:
            labels = (change.slo, change.family, change.entity_type)
            self.metrics.slo_breached.labels(*labels).set(1 if change.breached else 0)
            self.metrics.slo_changes.labels(change.kind).inc()
            log.warning(
                "%s %s for %s/%s: %.3f (threshold %.3f)",
                change.slo, change.kind, change.family, change.entity_type,
                change.value, change.threshold,
            )  # fmt: skip

    def _slo_record(self, kafka: WorkerKafka, change: SloChange) -> OutRecord:
        """One SLO transition as an audit record of this instance."""
        return kafka.outbox.audit(audit_record(change.audit_event(), self.config.instance))
