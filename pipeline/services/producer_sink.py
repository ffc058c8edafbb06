"""The producer's sink: every stream event becomes Kafka records, or a dead letter.

:class:`EventWriter` is what the channel streams (and the producer's fact queue) hand their
events to. Topic events and backfill values are mapped to metric records, encoded and
published to ``.metrics``; the :class:`~pipeline.core.contract.table.CurrentTable` turns them
into the changelog table's upserts and tombstones (``.current.v2``). Gaps and audit facts
become audit records; dead letters go to the DLQ. Awaiting
:meth:`EventWriter.write` is the backpressure: it waits while the publisher's buffer is full.

A value that cannot be written never stops the stream: an unmappable event is a dead letter
of stage ``map``, a number its Avro type cannot carry one of stage ``encode`` (the other
records of the frame are still published), a record Kafka refuses for good one of stage
``publish``. A dead letter keeps at most ``max_dead_letter_bytes`` of raw bytes (the reason
says when they were cut), so that it fits in a Kafka record; a dead letter Kafka refuses is
logged and counted, never dead-lettered again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace

from pipeline.core.audit import AuditEvent
from pipeline.core.contract.mapping import MappingError, map_event
from pipeline.core.contract.records import (
    MetricRecord,
    audit_record,
    dead_letter_record,
    gap_audit,
    to_epoch_ms,
)
from pipeline.core.contract.table import CurrentTable
from pipeline.core.genesys.events import (
    BackfillEvent,
    DeadLetter,
    Gap,
    SnapshotTaken,
    StreamEvent,
)
from pipeline.core.genesys.frames import TopicEvent
from pipeline.core.subscription.selection import RecordFilter
from pipeline.errors import EncodeError, RecordRejectedError
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher, OutRecord
from pipeline.services.producer_metrics import ProducerMetrics

__all__ = ["EventWriter"]

log = logging.getLogger(__name__)


class EventWriter:
    """Writes stream events to Kafka through one publisher.

    Args:
        outbox: builds the Kafka records.
        publisher: sends them.
        metrics: the producer's metrics.
        instance: the producer instance, in every record.
        max_dead_letter_bytes: raw bytes a dead letter keeps at most.
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: KafkaPublisher,
        metrics: ProducerMetrics,
        instance: str,
        max_dead_letter_bytes: int,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._metrics = metrics
        self._instance = instance
        self._max_raw = max_dead_letter_bytes
        self._stream_frames = metrics.frames.labels("stream")
        self._backfill_frames = metrics.frames.labels("backfill")
        self._to_metrics = metrics.records.labels("metrics")
        self._to_current = metrics.records.labels("current")
        self.filter = RecordFilter({})
        """Which mapped records are kept (the subscription's selection); set once planned."""
        self.table = CurrentTable()
        """The changelog table's rows per subscribed topic: what each event upserts or deletes."""
        self.frames = 0
        self.dead_letters = 0
        self.gaps = 0

    async def write(self, event: StreamEvent) -> None:
        """Every stream event ends up in Kafka: records, gaps, dead letters, audit.

        Raises:
            PublishError: the publisher stopped working.
        """
        match event:
            case TopicEvent() | BackfillEvent():
                await self._metric_records(event)
            case SnapshotTaken():  # rows a complete snapshot did not renew are gone
                at = to_epoch_ms(event.fetched_at)
                changes = self.table.snapshot_taken(event.topics, at)
                for change in changes:
                    await self._publish(self._outbox.current(change))
                self._metrics.records.labels("current").inc(len(changes))
            case Gap():  # the session's one gap.closed fact (core.contract.records.gap_audit)
                self.gaps += 1
                self._metrics.gaps.inc()
                self._metrics.gap_seconds.observe(event.seconds)
                if event.reason == "publish.stalled":
                    self._metrics.publish_stalls.inc()
                await self._publish(self._outbox.audit(gap_audit(event, self._instance)))
            case DeadLetter():
                await self._dead_letter(event)
            case AuditEvent():
                await self._publish(self._outbox.audit(audit_record(event, self._instance)))

    async def _publish(self, record: OutRecord) -> None:
        try:
            await self._publisher.publish(record)
        except RecordRejectedError as exc:
            await self._rejected(exc)

    async def _rejected(self, exc: RecordRejectedError) -> None:
        self._metrics.rejected.inc()
        record = exc.record
        if not isinstance(record, OutRecord) or record.topic == self._outbox.topics["dlq"]:
            log.error("Kafka refused a dead letter for good: %s", exc.error)  # no loop via DLQ
            return
        raw = record.value or b""  # a tombstone has no value
        await self._dead_letter(DeadLetter(raw, str(exc), "publish", None, time.time()))

    async def _dead_letter(self, dead: DeadLetter) -> None:
        if len(dead.raw) > self._max_raw:
            reason = f"{dead.reason} [raw cut to {self._max_raw} of {len(dead.raw)} bytes]"
            dead = replace(dead, raw=dead.raw[: self._max_raw], reason=reason)
        self.dead_letters += 1
        self._metrics.dead_letters.labels(dead.stage).inc()
        await self._publish(self._outbox.dead_letter(dead_letter_record(dead, self._instance)))

    async def _metric_records(self, event: TopicEvent | BackfillEvent) -> None:
        self.frames += 1
        received: float | None
        if isinstance(event, BackfillEvent):
            self._backfill_frames.inc()
            ingest, received = event.fetched_at, None
        else:
            self._stream_frames.inc()
            ingest = received = time.time()
        ingest_ms = to_epoch_ms(ingest)
        try:
            records = map_event(event, ingest_ms=ingest_ms, instance=self._instance)
        except MappingError as exc:
            await self._dead_letter(DeadLetter(exc.raw, exc.reason, "map", exc.topic, time.time()))
            return
        keep = self.filter.keep
        records = [r for r in records if keep(r)]
        try:
            bodies = self._outbox.encode_metrics(records)
        except EncodeError:
            records, bodies = await self._encode_one_by_one(event, records)
        changes = self.table.apply(
            event.topic,
            event.body,
            records,
            at=ingest_ms,
            snapshot=isinstance(event, BackfillEvent),
        )
        out = self._outbox.metric_records(records, bodies, changes)
        try:
            await self._publisher.publish_many(out, received)
        except RecordRejectedError:
            for rec in out:  # rare: find the refused ones, send the rest (again: ids dedupe)
                await self._publish(rec)
        self._to_metrics.inc(len(records))
        self._to_current.inc(len(changes))

    async def _encode_one_by_one(
        self, event: TopicEvent | BackfillEvent, records: list[MetricRecord]
    ) -> tuple[list[MetricRecord], list[bytes]]:
        """The records that encode, with their bodies; each one that does not is
        dead-lettered (stage encode) and has no row in the table."""
        kept: list[MetricRecord] = []
        bodies: list[bytes] = []
        for record in records:
            try:
                (body,) = self._outbox.encode_metrics([record])
            except EncodeError as exc:
                raw = event.raw if isinstance(event, TopicEvent) else _json_bytes(record)
                dead = DeadLetter(raw, str(exc), "encode", event.topic, time.time())
                await self._dead_letter(dead)
                continue
            kept.append(record)
            bodies.append(body)
        return kept, bodies


def _json_bytes(record: MetricRecord) -> bytes:
    # stdlib json, not orjson: orjson refuses the integers beyond 64 bits that got us here.
    return json.dumps(asdict(record), default=str).encode()
