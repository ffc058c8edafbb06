"""The producer's own facts on their way to the audit topic: bounded, summarised, never blocking.

Client events (a token issued, a 429, a failed delivery, a replaced producer) happen inside
callbacks that cannot wait, so :class:`_Hooks` turns them into metrics at once and into
:class:`~pipeline.core.audit.AuditEvent` values that :class:`FactQueue` holds until the service
publishes them. While Kafka is unreachable nothing drains the queue, so it is bounded: a fact
that finds it full is counted by kind (metric ``genesys_pipeline_audit_suppressed_total``), and once
there is room again one ``audit.suppressed`` fact says how many of which kinds were not
written. Nothing here ever blocks the stream.

Failed deliveries are summarised too: while Kafka is down every buffered record fails once per
``delivery.timeout.ms``, so ``publish.failed`` is written at most once per topic and
``summary_s``, with the number of failures since the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.events import DeadLetter, StreamEvent
from pipeline.genesys.auth import TokenObserver
from pipeline.genesys.rest import RestObserver
from pipeline.kafka.producer import OutRecord, PublishObserver
from pipeline.services.producer_metrics import ProducerMetrics

__all__ = ["FactQueue", "ProducerHooks"]


class FactQueue:
    """A bounded queue of facts for the audit topic (and the odd dead letter).

    Args:
        size: facts held at most; more are counted and summarised.
        metrics: where suppressed facts are counted.
        clock: epoch seconds.
    """

    def __init__(
        self, size: int, metrics: ProducerMetrics, clock: Callable[[], float] = time.time
    ) -> None:
        self._queue: asyncio.Queue[StreamEvent] = asyncio.Queue(size)
        self._metrics = metrics
        self._clock = clock
        self._suppressed: Counter[str] = Counter()

    @property
    def suppressed(self) -> int:
        """Facts counted and not yet summarised."""
        return sum(self._suppressed.values())

    def put(self, event: StreamEvent) -> None:
        """Queue ``event``, or count it when the queue is full (never waits)."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            kind = str(event.kind) if isinstance(event, AuditEvent) else "dead_letter"
            self._suppressed[kind] += 1
            self._metrics.audit_suppressed.labels(kind).inc()

    def fact(self, kind: AuditKind, **details: object) -> None:
        """Queue a producer fact of ``kind`` stamped now."""
        self.put(AuditEvent(kind, self._clock(), None, details))

    async def get(self) -> StreamEvent:
        """The next fact, waiting for one; a summary of suppressed ones comes first."""
        summary = self._summary()
        return summary if summary is not None else await self._queue.get()

    def get_nowait(self) -> StreamEvent | None:
        """The next fact, or None when there is none."""
        summary = self._summary()
        if summary is not None:
            return summary
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def _summary(self) -> AuditEvent | None:
        if not self._suppressed or self._queue.full():
            return None
        counts, self._suppressed = self._suppressed, Counter()
        kinds = [f"{kind}={n}" for kind, n in sorted(counts.items())]
        facts = sum(counts.values())
        return AuditEvent(
            AuditKind.AUDIT_SUPPRESSED, self._clock(), None, {"facts": facts, "kinds": kinds}
        )


class ProducerHooks(TokenObserver, RestObserver, PublishObserver):
    """Turns client events into metrics at once and into facts for the audit topic.

    Args:
        metrics: the producer's metrics.
        facts: where facts go.
        summary_s: at most one ``publish.failed`` fact per topic in this many seconds.
        clock: monotonic seconds, for the summaries.
    """

    def __init__(
        self,
        metrics: ProducerMetrics,
        facts: FactQueue,
        summary_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._facts = facts
        self._summary_s = summary_s
        self._clock = clock
        self._failures: Counter[str] = Counter()
        self._reported_at: dict[str, float] = {}
        self.kafka_trouble: str | None = None
        """What Kafka last did wrong since its last acknowledgement (None: it acknowledges)."""

    def on_token_refreshed(self, expires_in: float) -> None:
        self._facts.fact(AuditKind.TOKEN_ISSUED, expires_in=expires_in)

    def on_login_throttled(self, wait_s: float) -> None:
        self._metrics.throttled.inc()
        self._facts.fact(AuditKind.THROTTLED, path="/oauth/token", wait_s=wait_s)

    def on_throttled(self, path: str, wait_s: float) -> None:
        self._metrics.throttled.inc()
        self._facts.fact(AuditKind.THROTTLED, path=path, wait_s=wait_s)

    def on_delivered(self, count: int) -> None:
        self.kafka_trouble = None
        self._metrics.delivered.inc(count)

    def on_latency(self, seconds: float) -> None:
        self._metrics.frame_latency.observe(seconds)  # sampled: frame received → acked
        self._metrics.delivery_latency.observe(seconds)

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        self._metrics.delivery_failures.inc()
        self.kafka_trouble = f"delivery failed: {error}"
        topic = record.topic
        self._failures[topic] += 1
        now = self._clock()
        last = self._reported_at.get(topic)
        if last is None or now - last >= self._summary_s:
            self._reported_at[topic] = now
            records, self._failures[topic] = self._failures[topic], 0
            self._facts.fact(
                AuditKind.PUBLISH_FAILED,
                topic=topic,
                error=error,
                retrying=retrying,
                records=records,
            )

    def on_rejected(self, record: OutRecord, error: str) -> None:
        self._metrics.rejected.inc()
        reason = f"Kafka refused the record for {record.topic}: {error}"
        self._facts.put(DeadLetter(record.value or b"", reason, "publish", None, time.time()))

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        self._metrics.producer_replaced.inc()
        self._facts.fact(AuditKind.PRODUCER_REPLACED, reason=reason, resent=resent)

    def on_kafka_error(self, code: str, error: str, fatal: bool) -> None:
        self._metrics.kafka_errors.labels(code).inc()
        if code == "_ALL_BROKERS_DOWN" or fatal:
            self.kafka_trouble = f"{code}: {error}"

    def on_callback_error(self, error: str) -> None:
        self._metrics.callback_errors.inc()
