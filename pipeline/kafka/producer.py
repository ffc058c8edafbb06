"""Publishing to Kafka with confluent-kafka: idempotent, bounded, never silently lossy.

:class:`KafkaPublisher` wraps one ``confluent_kafka.Producer`` (``enable.idempotence=true``,
``acks=all``, ``partitioner=murmur2_random``) behind an asyncio interface:

- **Bounded**: at most ``max_in_flight`` records are waiting for their acknowledgement.
  :meth:`publish` waits for room, so when Kafka is slow or unreachable the caller (and through
  it the WebSocket reader) slows down instead of memory growing.
- **Delivery**: librdkafka retries inside ``delivery.timeout.ms`` with the same producer id and
  sequence numbers, so a broker outage shorter than that neither loses nor duplicates a record.
  A record that still fails is produced again (counted and reported to the observer): at
  least once, and the record's ``event_id`` lets consumers drop the rare duplicate.
- **Fatal errors** (e.g. ``UNKNOWN_PRODUCER_ID`` after a broker lost its state) leave the
  producer unusable: it is replaced and every unacknowledged record is produced again.
- **Shutdown**: :meth:`aclose` flushes.

Delivery callbacks run inside ``poll()``, which a small task calls on the event loop, so no
thread crosses into asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.errors import PublishError

__all__ = ["KafkaPublisher", "OutRecord", "PublishObserver"]

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record ready to produce: topic, key, Confluent-framed value, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default=())


class PublishObserver:
    """Hooks for delivery events; the default does nothing (override what you need)."""

    def on_delivered(self, record: OutRecord, latency_s: float) -> None:
        """The broker acknowledged ``record`` ``latency_s`` after it was produced."""

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        """A delivery failed for good inside librdkafka; it is produced again if retrying."""

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        """A fatal error: the producer was replaced and ``resent`` records produced again."""


class KafkaPublisher:
    """An idempotent, bounded, asyncio-friendly Kafka producer.

    Args:
        config: librdkafka settings (at least ``bootstrap.servers``); the delivery guarantees
            above are enforced on top of it.
        max_in_flight: records waiting for an acknowledgement before :meth:`publish` waits.
        max_attempts: produce attempts per record after delivery failures before giving up.
        observer: delivery hooks (metrics, audit).
    """

    _ENFORCED: Mapping[str, Any] = {
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
    }

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        max_in_flight: int = 50_000,
        max_attempts: int = 5,
        observer: PublishObserver | None = None,
    ) -> None:
        self._config = {
            "compression.type": "zstd",
            "linger.ms": 5,
            **config,
            **self._ENFORCED,
            "logger": logging.getLogger("librdkafka"),
        }
        self._max_in_flight = max_in_flight
        self._max_attempts = max_attempts
        self._observer = observer or PublishObserver()
        self._producer = Producer(self._config)
        self._pending: dict[int, tuple[OutRecord, float, int]] = {}
        self._ids = itertools.count()
        self._room = asyncio.Event()
        self._room.set()
        self._poller: asyncio.Task[None] | None = None
        self._fatal: str | None = None
        self.delivered = 0
        self.failed = 0

    @property
    def in_flight(self) -> int:
        """Records produced and not yet acknowledged."""
        return len(self._pending)

    async def start(self) -> None:
        """Start serving delivery callbacks."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_loop())

    async def publish(self, record: OutRecord) -> None:
        """Produce ``record``; waits while ``max_in_flight`` records are unacknowledged.

        Raises:
            PublishError: the producer cannot be used (bad configuration).
        """
        await self._wait_for_room()
        self._produce(next(self._ids), record, 1, time.monotonic())

    async def publish_many(self, records: Sequence[OutRecord]) -> None:
        """Produce several records (one frame's) with one wait for room.

        The bound may be exceeded by ``len(records)`` at most.
        """
        await self._wait_for_room()
        now = time.monotonic()
        for record in records:
            self._produce(next(self._ids), record, 1, now)

    async def _wait_for_room(self) -> None:
        while len(self._pending) >= self._max_in_flight:
            self._room.clear()
            await self._room.wait()

    def _produce(self, ident: int, record: OutRecord, attempt: int, now: float) -> None:
        self._pending[ident] = (record, now, attempt)
        headers = record.headers
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=headers if isinstance(headers, list) else list(headers),
                    on_delivery=functools.partial(self._on_delivery, ident),
                )
                return
            except BufferError:
                # librdkafka's own queue is full: serve callbacks until there is room.
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._pending.pop(ident, None)
                raise PublishError(f"cannot produce to {record.topic}: {exc}") from exc

    def _on_delivery(self, ident: int, err: KafkaError | None, msg: Message) -> None:
        entry = self._pending.pop(ident, None)
        if entry is None:
            return  # re-produced after a fatal error; the new copy reports
        record, sent_at, attempt = entry
        if err is None:
            self.delivered += 1
            self._observer.on_delivered(record, time.monotonic() - sent_at)
        elif err.fatal():
            self._pending[ident] = entry
            self._fatal = err.str()
        else:
            retrying = attempt < self._max_attempts
            self.failed += 1
            log.warning(
                "delivery to %s failed (%s); %s",
                record.topic,
                err.str(),
                "producing again" if retrying else "giving up",
            )
            self._observer.on_failed(record, err.str(), retrying)
            if retrying:
                self._produce(ident, record, attempt + 1, time.monotonic())
        if len(self._pending) < self._max_in_flight:
            self._room.set()

    async def _poll_loop(self) -> None:
        while True:
            self._producer.poll(0)
            if self._fatal is not None:
                self._replace_producer(self._fatal)
            await asyncio.sleep(0.01)

    def _replace_producer(self, reason: str) -> None:
        """A fatal error: a new producer, and every unacknowledged record produced again."""
        log.error("fatal producer error (%s): replacing the producer", reason)
        self._fatal = None
        with contextlib.suppress(KafkaException):
            self._producer.purge()
        self._producer = Producer(self._config)
        unacked = list(self._pending.items())
        self._pending.clear()
        now = time.monotonic()
        for ident, (record, _, attempt) in unacked:
            self._produce(ident, record, attempt, now)
        self._observer.on_producer_replaced(reason, len(unacked))

    async def flush(self, timeout_s: float = 30.0) -> int:
        """Wait until every record is acknowledged (or ``timeout_s``); returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            self._producer.poll(0)
            if self._fatal is not None:
                self._replace_producer(self._fatal)
            await asyncio.sleep(0.01)
        return len(self._pending)

    async def aclose(self, timeout_s: float = 30.0) -> int:
        """Flush and stop; returns how many records were left unacknowledged."""
        left = await self.flush(timeout_s)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if left:
            log.error("%d records not acknowledged at shutdown", left)
        return left
