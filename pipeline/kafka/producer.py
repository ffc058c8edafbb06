"""Publishing to Kafka with confluent-kafka: idempotent, bounded, never silently lossy.

:class:`KafkaPublisher` wraps one ``confluent_kafka.Producer`` (``enable.idempotence=true``,
``acks=all``, ``partitioner=murmur2_random``) behind an asyncio interface:

- **Bounded**: at most ``max_in_flight`` records are waiting for their acknowledgement.
  :meth:`publish` waits for room, so when Kafka is slow or unreachable the caller (and through
  it the WebSocket reader) slows down instead of memory growing.
- **Never drops**: librdkafka retries inside ``delivery.timeout.ms`` with the same producer id
  and sequence numbers, so a broker outage shorter than that neither loses nor duplicates a
  record. A record whose delivery still fails is produced again after a full-jitter backoff,
  for as long as it takes: a long outage only keeps the buffer full (and the caller blocked).
  The first acknowledgement after failures ends every backoff: Kafka is back, so the records
  waiting for their next attempt are produced at once. A record that reached the broker
  just before its acknowledgement was lost can then be in the log twice; its ``event_id``
  lets consumers drop the copy.
- **Rejected records**: a record Kafka will never take (larger than ``message.max.bytes``,
  invalid) is not retried: :meth:`publish` raises :class:`~pipeline.errors.RecordRejectedError`
  when librdkafka refuses it at once, and the observer's ``on_rejected`` hears of one the
  broker refused; the caller dead-letters it.
- **Fatal errors** (e.g. ``UNKNOWN_PRODUCER_ID`` after a broker lost its state, or a fenced
  epoch after a long outage), reported by a delivery or by librdkafka's ``error_cb``, leave
  the producer unusable: it is replaced and every unacknowledged record is produced again.
- **Errors are visible, not noisy**: every ``error_cb`` error and failed delivery reaches the
  observer (metrics), while the log gets one line per kind of error per ``log_interval_s``
  (an hour-long outage is a handful of lines, not one per record).
- **A dead poll loop is never silent**: an exception inside a delivery callback is counted
  (:attr:`KafkaPublisher.callback_errors`) and the loop goes on. If the loop itself dies (the
  producer cannot be replaced), :attr:`KafkaPublisher.failure` holds the cause,
  :meth:`KafkaPublisher.publish` raises it, and :meth:`KafkaPublisher.wait_failed` returns it
  so the service ends with a non-zero exit.
- **Shutdown**: :meth:`KafkaPublisher.aclose` flushes within a deadline and says how many
  records were left.

Delivery callbacks run inside ``poll()``, which a small task calls on the event loop, so no
thread crosses into asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.core.http_policy import full_jitter
from pipeline.errors import PublishError, RecordRejectedError

__all__ = ["KafkaPublisher", "OutRecord", "PublishObserver"]

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]

_REJECTED: Final = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD}
)
"""Errors a record gets whatever the broker's state: retrying the same bytes cannot help."""
_REPLACE: Final = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError._FENCED,
    }
)
"""Errors about the producer's identity (id, epoch, sequence): only a new producer heals them
(seen after long outages on brokers that handle the epoch bump of KIP-360 badly)."""


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record ready to produce: topic, key, Confluent-framed value (None: a tombstone),
    headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default=())


class PublishObserver:
    """Hooks for delivery events; the default does nothing (override what you need).

    Hooks run inside delivery callbacks: they must be quick, and one that raises is counted
    (:attr:`KafkaPublisher.callback_errors`) without disturbing delivery.
    """

    def on_delivered(self, record: OutRecord, latency_s: float) -> None:
        """The broker acknowledged ``record`` ``latency_s`` after it was produced."""

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        """A delivery failed inside librdkafka; it is produced again (``retrying`` is True)."""

    def on_rejected(self, record: OutRecord, error: str) -> None:
        """The broker refused ``record`` for good; it is not produced again (dead-letter it)."""

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        """A fatal error: the producer was replaced and ``resent`` records produced again."""

    def on_kafka_error(self, code: str, error: str, fatal: bool) -> None:
        """librdkafka reported a client-level error (``error_cb``): brokers down, fatal ..."""

    def on_callback_error(self, error: str) -> None:
        """A delivery callback raised (a bug); the publisher carried on."""


class KafkaPublisher:
    """An idempotent, bounded, asyncio-friendly Kafka producer that never drops a record.

    Args:
        config: librdkafka settings (at least ``bootstrap.servers``); the delivery guarantees
            above are enforced on top of it.
        max_in_flight: records waiting for an acknowledgement before :meth:`publish` waits.
        observer: delivery hooks (metrics, audit).
        retry_backoff_s: ``(base, cap)`` of the full-jitter delay before a failed record is
            produced again.
        log_interval_s: at most one log line per kind of error in this many seconds.
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
        observer: PublishObserver | None = None,
        retry_backoff_s: tuple[float, float] = (0.5, 30.0),
        log_interval_s: float = 60.0,
    ) -> None:
        self._config = {
            "compression.type": "zstd",
            "linger.ms": 5,
            **config,
            **self._ENFORCED,
            "logger": logging.getLogger("librdkafka"),
            "error_cb": self._on_error,
        }
        self._max_in_flight = max_in_flight
        self._observer = observer or PublishObserver()
        self._backoff = retry_backoff_s
        self._log_interval_s = log_interval_s
        self._logged_at: dict[str, float] = {}
        self._producer = Producer(self._config)
        self._pending: dict[int, tuple[OutRecord, float, int]] = {}
        self._waiting: dict[int, asyncio.TimerHandle] = {}  # failed, produced again later
        self._ids = itertools.count()
        self._room = asyncio.Event()
        self._room.set()
        self._poller: asyncio.Task[None] | None = None
        self._fatal: str | None = None
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self.delivered = 0
        self.failed = 0
        self.callback_errors = 0

    @property
    def in_flight(self) -> int:
        """Records produced and not yet acknowledged (waiting for a retry included)."""
        return len(self._pending)

    @property
    def failure(self) -> BaseException | None:
        """Why the publisher stopped working (its poll loop died), or None."""
        return self._failure

    async def start(self) -> None:
        """Start serving delivery callbacks."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_loop())

    async def wait_failed(self) -> BaseException:
        """Wait until the publisher stops working; returns the cause."""
        await self._failed.wait()
        assert self._failure is not None  # noqa: S101 - set before the event
        return self._failure

    async def publish(self, record: OutRecord) -> None:
        """Produce ``record``; waits while ``max_in_flight`` records are unacknowledged.

        Raises:
            RecordRejectedError: Kafka will never take this record (too large, invalid).
            PublishError: the publisher stopped working (:attr:`failure`).
        """
        await self._wait_for_room()
        self._produce(next(self._ids), record, 1, time.monotonic())

    async def publish_many(self, records: Sequence[OutRecord]) -> None:
        """Produce several records (one frame's) with one wait for room.

        The bound may be exceeded by ``len(records)`` at most.

        Raises:
            RecordRejectedError: Kafka will never take one of the records; the ones before it
                were produced, the ones after it were not.
            PublishError: the publisher stopped working (:attr:`failure`).
        """
        await self._wait_for_room()
        now = time.monotonic()
        for record in records:
            self._produce(next(self._ids), record, 1, now)

    async def _wait_for_room(self) -> None:
        while True:
            if self._failure is not None:
                raise PublishError(f"the Kafka publisher stopped: {self._failure!r}")
            if len(self._pending) < self._max_in_flight:
                return
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
                self._refused(ident, record, exc)
                return

    def _refused(self, ident: int, record: OutRecord, exc: KafkaException) -> None:
        """``produce()`` refused at once: reject, or keep the record for a later attempt."""
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is not None and err.code() in _REJECTED:
            self._pending.pop(ident, None)
            raise RecordRejectedError(record, err.str()) from exc
        reason = str(exc) if err is None else err.str()
        if err is not None and (err.fatal() or err.code() == KafkaError._FATAL):
            self._fatal = self._fatal or reason  # the poll loop replaces the producer
            return
        self._log_once(
            f"produce:{reason}", "producing to %s refused (%s); retrying", record.topic, reason
        )
        self._retry_later(ident)

    def _on_delivery(self, ident: int, err: KafkaError | None, msg: Message) -> None:
        entry = self._pending.get(ident)
        if entry is None or ident in self._waiting:
            return  # re-produced after a fatal error, or already failed: the new copy reports
        record, sent_at, _ = entry
        if err is None:
            del self._pending[ident]
            self.delivered += 1
            self._notify(self._observer.on_delivered, record, time.monotonic() - sent_at)
            if self._waiting:
                self._release_waiting()
        elif err.fatal() or err.code() in _REPLACE:
            self._fatal = self._fatal or err.str()  # the poll loop replaces the producer
        elif err.code() in _REJECTED:
            del self._pending[ident]
            log.error("Kafka refused a record for %s for good (%s)", record.topic, err.str())
            self._notify(self._observer.on_rejected, record, err.str())
        else:
            self.failed += 1
            self._log_once(
                f"delivery:{err.code()}",
                "deliveries to %s fail (%s); producing them again until Kafka takes them",
                record.topic,
                err.str(),
            )
            self._notify(self._observer.on_failed, record, err.str(), True)
            self._retry_later(ident)
        if len(self._pending) < self._max_in_flight:
            self._room.set()

    def _retry_later(self, ident: int) -> None:
        record, sent_at, attempt = self._pending[ident]
        self._pending[ident] = (record, sent_at, attempt + 1)
        base, cap = self._backoff
        delay = full_jitter(attempt - 1, base, cap, random.random)
        loop = asyncio.get_running_loop()
        self._waiting[ident] = loop.call_later(delay, self._produce_again, ident)

    def _release_waiting(self) -> None:
        """Kafka took a record: produce every record waiting for a retry now."""
        waiting = list(self._waiting.items())
        self._waiting.clear()
        for ident, handle in waiting:
            handle.cancel()
            self._produce_again(ident)

    def _produce_again(self, ident: int) -> None:
        self._waiting.pop(ident, None)
        entry = self._pending.get(ident)
        if entry is None:
            return
        record, _, attempt = entry
        try:
            self._produce(ident, record, attempt, time.monotonic())
        except RecordRejectedError as exc:  # cannot happen for bytes Kafka took before
            self._notify(self._observer.on_rejected, record, exc.error)

    def _notify(self, hook: Any, *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:  # noqa: BLE001 - an observer bug must not cost a record
            self._callback_failed(exc)

    def _callback_failed(self, exc: Exception) -> None:
        self.callback_errors += 1
        self._log_once(f"callback:{type(exc).__name__}", "a delivery callback raised: %r", exc)
        with contextlib.suppress(Exception):
            self._observer.on_callback_error(repr(exc))

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's ``error_cb`` (served by ``poll()``): client-level errors."""
        fatal = err.fatal()
        self._notify(self._observer.on_kafka_error, err.name(), err.str(), fatal)
        if fatal:
            self._fatal = self._fatal or err.str()
        else:  # e.g. _ALL_BROKERS_DOWN, _TRANSPORT: librdkafka reconnects by itself
            self._log_once(f"error:{err.code()}", "Kafka client error: %s", err.str())

    def _log_once(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is None or now - last >= self._log_interval_s:
            self._logged_at[kind] = now
            log.warning(message, *args)

    async def _poll_loop(self) -> None:
        try:
            while True:
                self._serve()
                await asyncio.sleep(0.01)
        except Exception as exc:
            self._failure = exc
            self._failed.set()
            self._room.set()  # wake blocked publishers: they raise
            log.error("the Kafka publisher stopped: %r", exc)
            raise

    def _serve(self) -> None:
        """Serve callbacks once; replace the producer after a fatal error."""
        try:
            self._producer.poll(0)
        except Exception as exc:  # noqa: BLE001 - a callback raised; the rest still get served
            self._callback_failed(exc)
        if self._fatal is not None:
            self._replace_producer(self._fatal)

    def _replace_producer(self, reason: str) -> None:
        """A fatal error: a new producer, and every unacknowledged record produced again."""
        log.error("fatal producer error (%s): replacing the producer", reason)
        self._fatal = None
        with contextlib.suppress(KafkaException):
            self._producer.purge()
        self._producer = Producer(self._config)
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        unacked = list(self._pending.items())
        self._pending.clear()
        now = time.monotonic()
        for ident, (record, _, attempt) in unacked:
            with contextlib.suppress(RecordRejectedError):  # it was taken before
                self._produce(ident, record, attempt, now)
        self._notify(self._observer.on_producer_replaced, reason, len(unacked))

    async def flush(self, timeout_s: float = 30.0) -> int:
        """Wait until every record is acknowledged (or ``timeout_s``); returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline and self._failure is None:
            if self._poller is None or self._poller.done():
                self._serve()
            await asyncio.sleep(0.01)
        return len(self._pending)

    async def aclose(self, timeout_s: float = 30.0) -> int:
        """Flush within ``timeout_s`` and stop; returns how many records were left unacked."""
        left = await self.flush(timeout_s)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        if left:
            log.error("%d records not acknowledged at shutdown", left)
        return left
