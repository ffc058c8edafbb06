"""Publishing to Kafka with confluent-kafka: idempotent, bounded, never silently lossy.

:class:`KafkaPublisher` wraps one ``confluent_kafka.Producer`` (``enable.idempotence=true``,
``acks=all``, ``partitioner=murmur2_random``) behind an asyncio interface:

- **Bounded**: at most ``max_in_flight`` records are waiting for their acknowledgement.
  :meth:`publish` waits for room, so when Kafka is slow or unreachable the caller (and through
  it the WebSocket reader) slows down instead of memory growing. librdkafka holds the
  unacknowledged records (an integer counts them: up per ``produce()``, down per delivery
  report); the publisher keeps no entry per record, only the ones waiting for a retry: a
  failed delivery report carries the record's topic, key, value and headers, so it can be
  produced again.
- **Cheap per record**: one ``produce()`` with one bound delivery callback; no clock read,
  no metric update per record. Acknowledgements reach the observer as one count per
  ``poll()``, and one frame in ``sample_every`` is timed from its receipt to its last
  record's acknowledgement (:meth:`PublishObserver.on_latency`).
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
  the producer unusable: it is replaced, the old one is purged, and every record its
  delivery reports hand back is produced again on the new one.
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.core.http_policy import full_jitter
from pipeline.errors import PublishError, RecordRejectedError
from pipeline.kafka.delivery import (
    PURGED_CODES,
    REJECTED_CODES,
    REPLACE_CODES,
    OutRecord,
    PublishObserver,
)

__all__ = ["KafkaPublisher", "OutRecord", "PublishObserver"]

log = logging.getLogger(__name__)


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
        sample_every: one :meth:`publish_many` call in this many (that gives a receive time)
            is timed to its acknowledgement (:meth:`PublishObserver.on_latency`).
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
        sample_every: int = 16,
    ) -> None:
        self._config = {
            "compression.type": "zstd",
            "linger.ms": 5,
            # room for the bound plus a frame: backpressure is ours, never a BufferError
            "queue.buffering.max.messages": max(100_000, 2 * max_in_flight),
            **config,
            **self._ENFORCED,
            "logger": logging.getLogger("librdkafka"),
            "error_cb": self._on_error,
        }
        self._max_in_flight = max_in_flight
        self._observer = observer or PublishObserver()
        self._backoff = retry_backoff_s
        self._log_interval_s = log_interval_s
        self._sample_every = max(1, sample_every)
        self._batches = 0
        self._logged_at: dict[str, float] = {}
        self._producer = Producer(self._config)
        self._retired: list[Producer] = []  # replaced, still holding records to hand back
        self._draining = False  # serving a replaced producer's reports: resend them all
        self._outstanding = 0  # produced, delivery report not served yet
        self._orphans: list[tuple[OutRecord, int]] = []  # failed fatally, for the new producer
        self._waiting: dict[int, tuple[OutRecord, int, asyncio.TimerHandle]] = {}
        self._ids = itertools.count()
        self._room = asyncio.Event()
        self._room.set()
        self._poller: asyncio.Task[None] | None = None
        self._fatal: str | None = None
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._reported = 0
        self.delivered = 0
        self.failed = 0
        self.callback_errors = 0

    @property
    def in_flight(self) -> int:
        """Records produced and not yet acknowledged (waiting for a retry included).

        librdkafka holds them (one count up per ``produce()``, one down per delivery report:
        not ``len(producer)``, which also counts librdkafka's unserved events); the publisher
        holds only the records waiting for their next attempt.
        """
        return self._outstanding + len(self._waiting) + len(self._orphans)

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
        self._produce(record, self._on_delivery, 1)

    async def publish_many(
        self, records: Sequence[OutRecord], received_at: float | None = None
    ) -> None:
        """Produce several records (one frame's) with one wait for room.

        The bound may be exceeded by ``len(records)`` at most.

        Args:
            records: the frame's records.
            received_at: when the frame was received (``time.time()``); one call in
                ``sample_every`` times its last record from then to its acknowledgement.

        Raises:
            RecordRejectedError: Kafka will never take one of the records; the ones before it
                were produced, the ones after it were not.
            PublishError: the publisher stopped working (:attr:`failure`).
        """
        await self._wait_for_room()
        on_delivery = self._on_delivery
        produce = self._produce
        last = len(records) - 1
        if received_at is not None and last >= 0:
            self._batches += 1
            if self._batches >= self._sample_every:  # time this frame's last record
                self._batches = 0
                for record in records[:last]:
                    produce(record, on_delivery, 1)
                produce(records[last], functools.partial(self._on_probe, received_at), 1)
                return
        for record in records:
            produce(record, on_delivery, 1)

    async def _wait_for_room(self) -> None:
        while True:
            if self._failure is not None:
                raise PublishError(f"the Kafka publisher stopped: {self._failure!r}")
            if self.in_flight < self._max_in_flight:
                return
            self._room.clear()
            await self._room.wait()

    def _produce(self, record: OutRecord, on_delivery: Callable[..., None], attempt: int) -> None:
        headers = record.headers
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=headers if type(headers) is list else list(headers),
                    on_delivery=on_delivery,
                )
                self._outstanding += 1
                return
            except BufferError:
                # librdkafka's own queue is full (a config below the bound): serve callbacks.
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._refused(record, attempt, exc)
                return

    def _refused(self, record: OutRecord, attempt: int, exc: KafkaException) -> None:
        """``produce()`` refused at once: reject, or keep the record for a later attempt."""
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is not None and err.code() in REJECTED_CODES:
            raise RecordRejectedError(record, err.str()) from exc
        reason = str(exc) if err is None else err.str()
        if err is not None and (err.fatal() or err.code() == KafkaError._FATAL):
            self._fatal = self._fatal or reason  # the poll loop replaces the producer
            self._orphans.append((record, attempt))
            return
        self._log_once(
            f"produce:{reason}", "producing to %s refused (%s); retrying", record.topic, reason
        )
        self._retry_later(record, attempt)

    # ------------------------------------------------------------------ delivery reports

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """The one delivery callback of every first attempt (bound once)."""
        self._outstanding -= 1
        if err is None:
            self.delivered += 1
            if self._waiting:
                self._release_waiting()
        else:
            self._delivery_failed(err, msg, 1)

    def _on_retried(self, attempt: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._on_delivery(err, msg)
        else:
            self._outstanding -= 1
            self._delivery_failed(err, msg, attempt)

    def _on_probe(self, received_at: float, err: KafkaError | None, msg: Message) -> None:
        """A sampled record: its frame's receive time to its acknowledgement."""
        if err is None:
            self._notify(self._observer.on_latency, time.time() - received_at)
        self._on_delivery(err, msg)

    def _delivery_failed(self, err: KafkaError, msg: Message, attempt: int) -> None:
        """A failed delivery report carries topic, key, value and headers: produce it again."""
        headers = cast(list[tuple[str, bytes]], msg.headers() or [])
        record = OutRecord(msg.topic() or "", msg.key(), msg.value() or b"", headers)
        code = err.code()
        if code in REJECTED_CODES:
            log.error("Kafka refused a record for %s for good (%s)", record.topic, err.str())
            self._notify(self._observer.on_rejected, record, err.str())
        elif self._draining or code in PURGED_CODES:  # from a replaced producer: to the new one
            self._produce_again(record, attempt)
        elif err.fatal() or code in REPLACE_CODES or code == KafkaError._FATAL:
            self._fatal = self._fatal or err.str()  # the poll loop replaces the producer
            self._orphans.append((record, attempt))
        else:
            self.failed += 1
            self._log_once(
                f"delivery:{code}",
                "deliveries to %s fail (%s); producing them again until Kafka takes them",
                record.topic,
                err.str(),
            )
            self._notify(self._observer.on_failed, record, err.str(), True)
            self._retry_later(record, attempt)

    def _retry_later(self, record: OutRecord, attempt: int) -> None:
        base, cap = self._backoff
        delay = full_jitter(attempt - 1, base, cap, random.random)
        ident = next(self._ids)
        handle = asyncio.get_running_loop().call_later(delay, self._retry_now, ident)
        self._waiting[ident] = (record, attempt + 1, handle)

    def _retry_now(self, ident: int) -> None:
        entry = self._waiting.pop(ident, None)
        if entry is not None:
            self._produce_again(entry[0], entry[1])

    def _release_waiting(self) -> None:
        """Kafka took a record: produce every record waiting for a retry now."""
        waiting = list(self._waiting.values())
        self._waiting.clear()
        for record, attempt, handle in waiting:
            handle.cancel()
            self._produce_again(record, attempt)

    def _produce_again(self, record: OutRecord, attempt: int) -> None:
        try:
            self._produce(record, functools.partial(self._on_retried, attempt), attempt)
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

    # ------------------------------------------------------------------ the poll loop

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
        """Serve callbacks once, report acknowledgements, replace the producer after a fatal
        error, and make room for waiting publishers."""
        try:
            self._producer.poll(0)
        except Exception as exc:  # noqa: BLE001 - a callback raised; the rest still get served
            self._callback_failed(exc)
        if self._retired:
            self._drain_retired()
        if self._fatal is not None:
            self._replace_producer(self._fatal)
        if self.delivered != self._reported:
            count, self._reported = self.delivered - self._reported, self.delivered
            self._notify(self._observer.on_delivered, count)
        if self.in_flight < self._max_in_flight:
            self._room.set()

    def _drain_retired(self) -> None:
        """Serve replaced producers: every report they give is produced again on the new one."""
        self._draining = True
        try:
            for old in self._retired:
                with contextlib.suppress(Exception):
                    old.poll(0)
        finally:
            self._draining = False
        self._retired = [old for old in self._retired if len(old)]

    def _replace_producer(self, reason: str) -> None:
        """A fatal error: a new producer, and every unacknowledged record produced again.

        The old producer's records are purged: each comes back in a delivery report (topic,
        key, value, headers) and is produced on the new producer. A report the purge does not
        bring at once comes later: the old producer is served until it holds nothing.
        """
        log.error("fatal producer error (%s): replacing the producer", reason)
        self._fatal = None
        old, self._producer = self._producer, Producer(self._config)
        resent = self._outstanding + len(self._orphans) + len(self._waiting)
        orphans, self._orphans = self._orphans, []
        for record, attempt in orphans:
            self._produce_again(record, attempt)
        self._release_waiting()
        with contextlib.suppress(KafkaException):
            old.purge()
        self._retired.append(old)
        self._drain_retired()
        self._notify(self._observer.on_producer_replaced, reason, resent)

    async def flush(self, timeout_s: float = 30.0) -> int:
        """Wait until every record is acknowledged (or ``timeout_s``); returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline and self._failure is None:
            if self._poller is None or self._poller.done():
                self._serve()
            await asyncio.sleep(0.01)
        return self.in_flight

    async def aclose(self, timeout_s: float = 30.0) -> int:
        """Flush within ``timeout_s`` and stop; returns how many records were left unacked."""
        left = await self.flush(timeout_s)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        self._serve_reports()
        for _, _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        if left:
            log.error("%d records not acknowledged at shutdown", left)
        return left

    def _serve_reports(self) -> None:
        """Serve the last reports (the poll loop is gone), so the counts are final."""
        with contextlib.suppress(Exception):
            self._producer.poll(0)
        if self.delivered != self._reported:
            count, self._reported = self.delivered - self._reported, self.delivered
            self._notify(self._observer.on_delivered, count)
