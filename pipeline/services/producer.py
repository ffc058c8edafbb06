"""The producer service: validate → verify metric availability → stream → map → publish.

Wiring only: the Genesys half is ``genesys/stream.py`` over the pure session, mapping and
encoding are ``core/contract/mapping.py`` and ``core/contract/wire.py`` (via
``kafka/outbox.py``), delivery is
``kafka/producer.py``. This module connects them, keeps the audit trail, and serves
``/metrics``, ``/healthz`` and ``/readyz``.

Start-up refuses to run, with a clear message, when the schema registry does not hold exactly
this build's contract (``pipeline schemas register`` fixes it) — unless ``auto_register`` is
on (local development).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.contract.mapping import MappingError, map_event
from pipeline.core.contract.records import audit_record, dead_letter_record, gap_audit, to_epoch_ms
from pipeline.core.genesys.events import BackfillEvent, DeadLetter, Gap, StreamEvent
from pipeline.core.genesys.frames import TopicEvent
from pipeline.core.genesys.session import SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.subscription.selection import RecordFilter, record_filter
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.genesys.auth import TokenObserver
from pipeline.genesys.client import genesys_client
from pipeline.genesys.directory import check_availability
from pipeline.genesys.rest import RestObserver
from pipeline.genesys.stream import ChannelStream, run_streams
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher, OutRecord, PublishObserver
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.kafka.schemas import PRODUCER_TOPICS
from pipeline.services.ops import OpsServer
from pipeline.services.planning import resolve_plan
from pipeline.services.producer_metrics import ProducerMetrics
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings

__all__ = ["ProducerConfig", "ProducerService", "ProducerStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """Everything one producer instance needs."""

    spec: SubscriptionSpec
    genesys: GenesysSettings
    kafka: KafkaSettings
    registry: RegistrySettings
    settings: ProducerSettings
    shard: int = 0
    shards: int = 1
    session: SessionSettings | None = None

    @property
    def instance(self) -> str:
        """This instance's name in records and audit."""
        return self.settings.instance or f"producer-{self.shard}"


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """Counts since start, for summaries and health decisions."""

    frames: int
    delivered: int
    in_flight: int
    dead_letters: int
    gaps: int
    channels: int
    channels_live: int


class _Hooks(TokenObserver, RestObserver, PublishObserver):
    """Turns client events into metrics and audit facts (queued; published by the service)."""

    def __init__(self, metrics: ProducerMetrics, audit: Callable[[AuditEvent], None]) -> None:
        self._metrics = metrics
        self._audit = audit

    def _fact(self, kind: AuditKind, **details: object) -> None:
        self._audit(AuditEvent(kind, time.time(), None, details))

    def on_token_refreshed(self, expires_in: float) -> None:
        self._fact(AuditKind.TOKEN_ISSUED, expires_in=expires_in)

    def on_login_throttled(self, wait_s: float) -> None:
        self._metrics.throttled.inc()
        self._fact(AuditKind.THROTTLED, path="/oauth/token", wait_s=wait_s)

    def on_throttled(self, path: str, wait_s: float) -> None:
        self._metrics.throttled.inc()
        self._fact(AuditKind.THROTTLED, path=path, wait_s=wait_s)

    def on_delivered(self, record: OutRecord, latency_s: float) -> None:
        self._metrics.delivered.inc()
        self._metrics.delivery_latency.observe(latency_s)

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        self._metrics.delivery_failures.inc()
        self._fact(AuditKind.PUBLISH_FAILED, topic=record.topic, error=error, retrying=retrying)

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        self._fact(AuditKind.PRODUCER_REPLACED, reason=reason, resent=resent)


class ProducerService:
    """One producer instance (one shard of the subscription plan).

    Args:
        config: what to stream and where to publish.
    """

    def __init__(self, config: ProducerConfig) -> None:
        self.config = config
        self.metrics = ProducerMetrics()
        self.metrics.topics_rejected.set_function(self._topics_rejected)
        self._audits: asyncio.Queue[AuditEvent] = asyncio.Queue()
        self._hooks = _Hooks(self.metrics, self._audits.put_nowait)
        self._streams: list[ChannelStream] = []
        self._outbox: Outbox | None = None
        self._publisher: KafkaPublisher | None = None
        self._not_ready = ["schema contract not checked yet"]
        self._filter = RecordFilter({})
        self.dead_letters = 0
        self.frames = 0
        self.gaps = 0
        self.ops: OpsServer | None = None

    def stats(self) -> ProducerStats:
        """What the service did so far."""
        publisher = self._publisher
        return ProducerStats(
            frames=self.frames,
            delivered=0 if publisher is None else publisher.delivered,
            in_flight=0 if publisher is None else publisher.in_flight,
            dead_letters=self.dead_letters,
            gaps=self.gaps,
            channels=len(self._streams),
            channels_live=sum(s.session.state is SessionState.LIVE for s in self._streams),
        )

    def _topics_rejected(self) -> float:
        return float(sum(len(s.session.rejected_topics) for s in self._streams))

    def readiness(self) -> list[str]:
        """Why the service is not ready (empty when ready)."""
        reasons = list(self._not_ready)
        live = sum(s.session.state is SessionState.LIVE for s in self._streams)
        self.metrics.channels_live.set(live)
        if not reasons and self._streams and not live:
            reasons.append("no notification channel is live")
        if self._publisher is not None:
            self.metrics.in_flight.set(self._publisher.in_flight)
        return reasons

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; flushes Kafka before returning.

        Raises:
            SchemaError: the registry does not hold this build's contract.
            SubscriptionError: names the org does not have.
            AuthError: Genesys refused the credentials.
        """
        cfg = self.config
        self.ops = OpsServer(
            self.metrics.registry, self.readiness, cfg.settings.ops_host, cfg.settings.ops_port
        )
        await self.ops.start()
        try:
            await self._start_kafka()
            await self._stream(stop)
        finally:
            await self._stop_kafka()
            await self.ops.aclose()

    async def _start_kafka(self) -> None:
        cfg = self.config
        prefix, url = cfg.settings.topic_prefix, cfg.registry.url
        registry_config = cfg.registry.client_config()
        if cfg.settings.auto_register:
            await asyncio.to_thread(register_contract, url, prefix, client_config=registry_config)
        ids = await asyncio.to_thread(
            require_contract, url, prefix, client_config=registry_config, suffixes=PRODUCER_TOPICS
        )
        self._outbox = Outbox(prefix, ids, cfg.instance)
        self._not_ready = ["topics not created yet"]
        specs = self._topic_specs(self._outbox)
        await asyncio.to_thread(ensure_topics, cfg.kafka.client_config(), specs)
        self._publisher = KafkaPublisher(
            cfg.kafka.producer_config(),
            max_in_flight=cfg.settings.max_in_flight,
            observer=self._hooks,
        )
        await self._publisher.start()
        self._not_ready = []

    def _kafka(self) -> tuple[Outbox, KafkaPublisher]:
        if self._outbox is None or self._publisher is None:
            raise RuntimeError("the producer's Kafka side is not started")
        return self._outbox, self._publisher

    def _topic_specs(self, outbox: Outbox) -> list[TopicSpec]:
        s = self.config.settings
        topics = outbox.topics
        compacted = {"cleanup.policy": "compact"}
        return [
            TopicSpec(topics["metrics"], s.partitions, s.replication),
            TopicSpec(topics["current"], s.partitions, s.replication, compacted),
            TopicSpec(topics["audit"], 1, s.replication),
            TopicSpec(topics["dlq"], 1, s.replication),
        ]

    async def _heartbeat(self) -> None:
        """A ``producer.heartbeat`` audit every ``heartbeat_s``: liveness and dead letters."""
        reported = 0
        while True:
            await asyncio.sleep(self.config.settings.heartbeat_s)
            stats = self.stats()
            self._audit(
                AuditKind.PRODUCER_HEARTBEAT,
                channels=stats.channels,
                channels_live=stats.channels_live,
                in_flight=stats.in_flight,
                delivered=stats.delivered,
                dead_letters=stats.dead_letters,
                dead_letters_since_last=stats.dead_letters - reported,
            )
            reported = stats.dead_letters

    async def _stream(self, stop: asyncio.Event) -> None:
        cfg = self.config
        drain = asyncio.create_task(self._drain_audits())
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            subscriptions = len(cfg.spec.subscriptions)
            self._audit(AuditKind.SUBSCRIPTION_VALIDATED, subscriptions=subscriptions)
            async with genesys_client(
                cfg.genesys.api_base(cfg.spec.genesys.region, cfg.spec.genesys.api_url),
                cfg.genesys.client_id,
                cfg.genesys.client_secret,
                observer=self._hooks,
            ) as rest:
                plan, directory = await resolve_plan(rest, cfg.spec, cfg.shards, False)
                shard = plan.shards[cfg.shard]
                self._filter = record_filter(
                    cfg.spec, (t for c in shard.channels for t in c.topics)
                )
                channels = [[t.topic for t in c.topics] for c in shard.channels]
                self._audit(
                    AuditKind.SUBSCRIPTION_PLANNED,
                    shard=cfg.shard,
                    shards=cfg.shards,
                    channels=len(channels),
                    topics=sum(map(len, channels)),
                )
                report = await check_availability(rest, cfg.spec, directory)
                self._audit(AuditKind.AVAILABILITY_REPORT, **report.to_dict())
                self._streams = [
                    ChannelStream(rest, topics, self._sink, settings=cfg.session)
                    for topics in channels
                ]
                await run_streams(self._streams, stop)
        finally:
            heartbeat.cancel()
            await self._flush_audits()
            drain.cancel()
            for task in (heartbeat, drain):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _audit(self, kind: AuditKind, **details: object) -> None:
        self._audits.put_nowait(AuditEvent(kind, time.time(), None, details))

    async def _drain_audits(self) -> None:
        while True:
            await self._sink(await self._audits.get())

    async def _flush_audits(self) -> None:
        while not self._audits.empty():
            await self._sink(self._audits.get_nowait())

    async def _sink(self, event: StreamEvent) -> None:
        """Every stream event ends up in Kafka: records, gaps, dead letters, audit."""
        outbox, publisher = self._kafka()
        instance = self.config.instance
        match event:
            case TopicEvent() | BackfillEvent():
                await self._publish_metrics(event)
            case Gap():  # the session's one gap.closed fact (core.contract.records.gap_audit)
                self.gaps += 1
                self.metrics.gaps.inc()
                self.metrics.gap_seconds.observe(event.seconds)
                await publisher.publish(outbox.audit(gap_audit(event, instance)))
            case DeadLetter():
                self.dead_letters += 1
                self.metrics.dead_letters.labels(event.stage).inc()
                await publisher.publish(outbox.dead_letter(dead_letter_record(event, instance)))
            case AuditEvent():
                await publisher.publish(outbox.audit(audit_record(event, instance)))

    async def _publish_metrics(self, event: TopicEvent | BackfillEvent) -> None:
        outbox, publisher = self._kafka()
        source = "backfill" if isinstance(event, BackfillEvent) else "stream"
        self.frames += 1
        self.metrics.frames.labels(source).inc()
        ingest = event.fetched_at if isinstance(event, BackfillEvent) else time.time()
        try:
            records = map_event(event, ingest_ms=to_epoch_ms(ingest), instance=self.config.instance)
        except MappingError as exc:
            await self._sink(DeadLetter(exc.raw, exc.reason, "map", exc.topic, time.time()))
            return
        records = [r for r in records if self._filter.keep(r)]
        await publisher.publish_many([out for r in records for out in outbox.metric(r)])
        self.metrics.records.labels("metrics").inc(len(records))
        self.metrics.records.labels("current").inc(len(records))

    async def _stop_kafka(self) -> None:
        if self._publisher is not None:
            left = await self._publisher.aclose()
            if left:
                log.error("%d records were not acknowledged before shutdown", left)
