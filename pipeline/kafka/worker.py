"""The Kafka side of a consumer worker, in one place for the freshness and dashboard workers.

A worker reads ``<prefix>.metrics`` in a consumer group shared with its peers, reads the whole
``<prefix>.audit`` in a group of its own (the freshness rules need every producer's lifecycle,
:mod:`pipeline.core.workers.freshness`), decodes both with :class:`AvroDecoder`, and writes
side outputs (reports, audit, dead letters) built by :class:`Outbox` through one
:class:`KafkaPublisher`. :class:`WorkerKafka` opens all of that in order and closes it in
reverse.

Start-up order: check the registry holds the schemas the worker writes (``require_contract``),
create the topics it owns, start the producer, join both groups. Each step shows in
:meth:`WorkerKafka.readiness` until it is done. A registry that cannot be asked at start
(down, hung, 5xx: :class:`~pipeline.errors.RegistryUnavailableError`) is asked again with
backoff until it answers or the worker is told to stop; a registry that answers without this
build's schemas stops the start with a :class:`~pipeline.errors.SchemaError`.

Reading (theory of operation of :meth:`WorkerKafka.poll_metrics` and
:meth:`WorkerKafka.poll_audit`)
------------------------------------------------------------------------------------------
Every fetched record ends in exactly one of three ways:

- **decoded**: handed to the worker with its record;
- **dead-lettered**: a value that cannot be decoded (truncated, not Confluent-framed, a
  schema id the registry does not know (404), a writer schema that does not resolve to this
  build's) goes to ``<prefix>.dlq`` (stage ``<kind>-decode``, cut to fit one record,
  :mod:`pipeline.core.contract.dead_letter`), is counted (``<kind>_decode_errors_total``) and
  handed to the worker as None: the worker moves past it (and commits past it);
- **not yet read**: when the registry cannot be asked for a new schema id (down, timed out,
  5xx), the value is nobody's fault, so it must neither go to the DLQ nor be committed. The
  topic's consumer goes back to that record (and every later one of the fetch), fetching is
  paused, and the registry is asked again with backoff; when it answers, fetching resumes from
  that record. The worker keeps calling the poll meanwhile, which keeps its group membership
  (aiokafka heartbeats in the background; the poll keeps the poll interval alive).

Registry requests happen only for schema ids not cached yet; they run in a thread (never on
the event loop, whose heartbeats and ops endpoints must go on), with a timeout per request
(``RegistrySettings.timeout_s``) and an overall deadline.

Committing: :meth:`WorkerKafka.commit` first waits for the dead letters written so far to be
acknowledged by Kafka, so no offset is committed past a bad value whose dead letter could
still be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.core.contract.dead_letter import fit_dead_letter
from pipeline.core.contract.records import AuditRecord, MetricRecord, dead_letter_record
from pipeline.core.genesys.events import DeadLetter
from pipeline.core.http_policy import Backoff
from pipeline.errors import DecodeError, RegistryUnavailableError, SchemaError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.registry import require_contract
from pipeline.kafka.schemas import topic_names
from pipeline.settings import KafkaSettings, RegistrySettings

__all__ = ["Polled", "WorkerKafka", "WorkerKafkaMetrics", "audit_group_id"]

log = logging.getLogger(__name__)

R = TypeVar("R", MetricRecord, AuditRecord)

Polled = list[tuple[ConsumerRecord[bytes, bytes], R | None]]
"""What a poll returns: each record with its decoded value, or None when it was
dead-lettered (move past it)."""

DEAD_LETTER_FLUSH_S: Final = 1.0
"""How long a commit waits for dead letters to be acknowledged before it is put off."""
REGISTRY_PAUSE: Final = "schema registry unavailable"
"""The reason a topic's fetching is paused while the registry cannot be asked."""


def audit_group_id(group_id: str, instance: str) -> str:
    """The group in which ``instance`` reads the whole audit topic: ``<group>-audit-<instance>``.

    One member per group, so it gets every partition; offsets there are never committed, so a
    restart reads the audit history again.
    """
    return f"{group_id}-audit-{instance}"


class WorkerKafkaMetrics:
    """The Kafka-side metrics of one worker, named ``<kind>_...`` on the worker's registry.

    Args:
        registry: the worker's Prometheus registry.
        kind: ``dashboard`` or ``freshness`` (the metric names' prefix).
    """

    def __init__(self, registry: CollectorRegistry, kind: str) -> None:
        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(f"{kind}_{name}", doc, labels, registry=registry)

        self.decode_errors = counter(
            "decode_errors_total", "Values not decoded: dead-lettered, moved past", ["topic"]
        )
        self.dead_letters = counter("dead_letters_total", "Dead letters written", ["stage"])
        self.truncated = counter(
            "dead_letters_truncated_total", "Dead letters cut to fit one Kafka record"
        )
        self.registry_waiting = Gauge(
            f"{kind}_registry_waiting",
            "1 while reading a topic is paused until the schema registry answers",
            ["topic"],
            registry=registry,
        )
        self.registry_retries = counter(
            "registry_retries_total", "Registry requests failed, to be asked again"
        )
        self.commit_failures = counter(
            "commit_failures_total", "Offset commits failed or put off (the next one covers them)"
        )


class _Reader(Generic[R]):
    """One consumed topic: its consumer, decoder, record type and wait for the registry."""

    def __init__(
        self, name: str, source: KafkaSource, decoder: AvroDecoder, build: Callable[..., R]
    ) -> None:
        self.name, self.source, self.decoder = name, source, decoder
        self.build: Callable[..., R] = build
        self.blocked: ConsumerRecord[bytes, bytes] | None = None  # waits for the registry
        self.attempt = 0
        self.retry_at = 0.0


class WorkerKafka:
    """Consumers, decoders and the side-output producer of one worker instance.

    Use it as ``async with WorkerKafka(...) as kafka:`` (or :meth:`start` / :meth:`aclose`),
    built inside the running event loop (aiokafka's consumers want one).

    Args:
        kafka: connection settings.
        registry: the schema registry.
        prefix: the contract's topic prefix.
        instance: this worker (``ce_source`` of what it writes; its audit group).
        group_id: the consumer group on ``<prefix>.metrics``.
        session_timeout_ms: group session timeout of both consumers.
        writes: topic suffixes the worker writes; their schemas must be registered.
        create: topics to create when missing (the ones this worker owns).
        kind: ``dashboard`` or ``freshness``: the stage of its decode dead letters.
        metrics: where to count (a fresh registry's when None).
        retry: backoff while the registry cannot be asked.
        max_record_bytes: the largest record written; dead letters are cut to fit.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        registry: RegistrySettings,
        *,
        prefix: str,
        instance: str,
        group_id: str,
        session_timeout_ms: int,
        writes: Sequence[str],
        create: Sequence[TopicSpec] = (),
        kind: str = "worker",
        metrics: WorkerKafkaMetrics | None = None,
        retry: Backoff | None = None,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        self._kafka, self._registry = kafka, registry
        self._prefix, self._instance, self._writes, self._create = prefix, instance, writes, create
        self._kind = kind
        self.counters = metrics or WorkerKafkaMetrics(CollectorRegistry(), kind)
        self._retry = retry or Backoff()
        self._max_record_bytes = max_record_bytes
        topics = topic_names(prefix)
        self.metrics = KafkaSource(kafka, [topics["metrics"]], group_id, session_timeout_ms)
        """The metrics consumer (shares partitions with the group's other members)."""
        self.audit = KafkaSource(
            kafka, [topics["audit"]], audit_group_id(group_id, instance), session_timeout_ms
        )
        """The audit consumer (reads every partition; never commits)."""
        self.publisher = KafkaPublisher(kafka.producer_config())
        """The producer of the worker's side outputs."""
        url, config = registry.url, self._client_config()
        timeout_s = registry.timeout_s
        self._metrics_reader = _Reader(
            "metrics", self.metrics, AvroDecoder(url, "metric", config, timeout_s=timeout_s),
            MetricRecord,
        )  # fmt: skip
        self._audit_reader = _Reader(
            "audit", self.audit, AvroDecoder(url, "audit", config, timeout_s=timeout_s),
            AuditRecord,
        )  # fmt: skip
        # One registry request may take timeout_s to connect and as long to answer.
        self._registry_deadline_s = 2 * timeout_s + 1
        self._outbox: Outbox | None = None
        self._waiting: str | None = "schema contract not checked yet"
        self._unflushed = False  # dead letters written since the last acknowledged flush

    @property
    def outbox(self) -> Outbox:
        """Builds the records the worker writes (available once started).

        Raises:
            RuntimeError: :meth:`start` has not checked the contract yet.
        """
        if self._outbox is None:
            raise RuntimeError("the worker's Kafka side is not started")
        return self._outbox

    def readiness(self) -> list[str]:
        """What start-up still waits for (empty once both groups are joined)."""
        return [] if self._waiting is None else [self._waiting]

    def _client_config(self) -> dict[str, Any]:
        return {"timeout": self._registry.timeout_s, **self._registry.client_config()}

    # ------------------------------------------------------------------ lifecycle
    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Check the contract, create the worker's topics, start the producer, join the groups.

        While the registry cannot be asked, asks again with backoff until it answers or
        ``stop`` is set. On failure, whatever was started is closed again before the error
        propagates.

        Args:
            stop: set to give up waiting for the registry.

        Returns:
            True when started; False when ``stop`` was set before the registry answered.

        Raises:
            SchemaError: the registry does not hold this build's schemas for ``writes``.
            PublishError: a topic in ``create`` cannot be created.
        """
        try:
            ids = await self._require_contract(stop)
            if ids is None:
                await self.aclose()
                return False
            self._outbox = Outbox(self._prefix, ids, self._instance)
            if self._create:
                self._waiting = "topics not created yet"
                client = self._kafka.client_config()
                await asyncio.to_thread(ensure_topics, client, list(self._create))
            self._waiting = "consumers not started yet"
            await self.publisher.start()
            await self.metrics.start()
            await self.audit.start()
        except BaseException:
            await self.aclose()
            raise
        self._waiting = None
        return True

    async def _require_contract(self, stop: asyncio.Event | None) -> dict[str, int] | None:
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(
                    require_contract,
                    self._registry.url,
                    self._prefix,
                    client_config=self._client_config(),
                    suffixes=self._writes,
                )
            except RegistryUnavailableError as exc:
                wait = self._retry.delay(attempt, None, random.random)
                attempt += 1
                self._waiting = f"waiting for the schema registry (attempt {attempt}): {exc}"
                self.counters.registry_retries.inc()
                log.warning("%s; asking again in %.1f s", exc, wait)
                if await _wait_or_stop(stop, wait):
                    return None

    async def aclose(self) -> int:
        """Leave both groups, flush the producer, close the decoders.

        Returns:
            Records the producer could not deliver before closing (it logs them too).
        """
        self._waiting = "stopped"
        for source in (self.metrics, self.audit):
            with contextlib.suppress(Exception):  # one that never started, a broker gone
                await source.stop()
        left = await self.publisher.aclose()
        self._metrics_reader.decoder.close()
        self._audit_reader.decoder.close()
        return left

    async def __aenter__(self) -> WorkerKafka:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ reading
    async def poll_metrics(self, timeout_ms: int) -> Polled[MetricRecord]:
        """Fetch and decode metric records (see the module docstring for what can happen).

        Args:
            timeout_ms: how long to wait for records.

        Returns:
            Each record fetched with its value, or None for one dead-lettered.
        """
        return await self._poll(self._metrics_reader, timeout_ms)

    async def poll_audit(self, timeout_ms: int) -> Polled[AuditRecord]:
        """Fetch and decode audit records (see :meth:`poll_metrics`)."""
        return await self._poll(self._audit_reader, timeout_ms)

    async def _poll(self, reader: _Reader[R], timeout_ms: int) -> Polled[R]:
        if reader.blocked is not None and not await self._registry_back(reader):
            await reader.source.fetch(timeout_ms)  # paused: nothing comes; the group stays
            return []
        records = await reader.source.fetch(timeout_ms)
        out: Polled[R] = []
        for index, raw in enumerate(records):
            try:
                value = await self._decode(reader, raw)
            except DecodeError as exc:
                await self._undecodable(reader, exc)
                out.append((raw, None))
                continue
            except SchemaError as exc:
                self._wait_for_registry(reader, records[index:], exc)
                break
            out.append((raw, reader.build(**value)))
        return out

    async def _decode(self, reader: _Reader[R], raw: ConsumerRecord[bytes, bytes]) -> Any:
        where: Mapping[str, Any] = {
            "topic": raw.topic, "partition": raw.partition, "offset": raw.offset,
        }  # fmt: skip
        decoder = reader.decoder
        if not decoder.needs_registry(raw.value):
            return decoder.decode(raw.value, **where)
        # A thread cannot be cancelled: past the deadline it is left to its own timeout.
        try:
            async with asyncio.timeout(self._registry_deadline_s):
                return await asyncio.to_thread(decoder.decode, raw.value, **where)
        except TimeoutError as exc:
            raise RegistryUnavailableError(
                f"the schema registry did not answer within {self._registry_deadline_s:.0f} s"
            ) from exc

    def _wait_for_registry(
        self, reader: _Reader[R], unread: list[ConsumerRecord[bytes, bytes]], exc: SchemaError
    ) -> None:
        reader.source.rewind(unread)
        reader.source.pause(REGISTRY_PAUSE)
        reader.blocked, reader.attempt = unread[0], 0
        reader.retry_at = time.monotonic() + self._retry.delay(0, None, random.random)
        self.counters.registry_waiting.labels(reader.name).set(1)
        log.warning("%s: fetching paused until the schema registry answers: %s", reader.name, exc)

    async def _registry_back(self, reader: _Reader[R]) -> bool:
        """Ask the registry again when it is time; True (and resumed) once it answered."""
        if reader.blocked is None or time.monotonic() < reader.retry_at:
            return False
        try:
            await self._decode(reader, reader.blocked)
        except DecodeError:
            pass  # the registry answered; the value is bad, and is dead-lettered when re-read
        except SchemaError as exc:
            reader.attempt += 1
            wait = self._retry.delay(reader.attempt, None, random.random)
            reader.retry_at = time.monotonic() + wait
            self.counters.registry_retries.inc()
            log.info("%s: the schema registry still cannot be asked (%s); again in %.1f s",
                     reader.name, exc, wait)  # fmt: skip
            return False
        reader.blocked = None
        reader.source.resume(REGISTRY_PAUSE)
        self.counters.registry_waiting.labels(reader.name).set(0)
        log.info("%s: the schema registry answers again; fetching resumed", reader.name)
        return True

    async def _undecodable(self, reader: _Reader[R], error: DecodeError) -> None:
        self.counters.decode_errors.labels(reader.name).inc()
        log.warning("undecodable record dead-lettered: %s", error)
        await self.dead_letter(error.raw, str(error), f"{self._kind}-decode")

    # ------------------------------------------------------------------ writing
    async def dead_letter(
        self, raw: bytes, reason: str, stage: str, at: float | None = None
    ) -> None:
        """Write one dead letter to ``<prefix>.dlq``, cut to fit one record, and count it.

        Args:
            raw: the bytes that could not be handled.
            reason: why (safe text: no secrets).
            stage: where it failed (``dashboard``, ``<kind>-decode`` ...).
            at: when (epoch seconds; now when None).
        """
        dead = DeadLetter(raw, reason, stage, None, time.time() if at is None else at)
        fit = fit_dead_letter(dead, self._max_record_bytes)
        record = self.outbox.dead_letter(dead_letter_record(fit.dead_letter, self._instance))
        if fit.truncated:
            record = dataclasses.replace(record, headers=(*record.headers, *fit.headers()))
            self.counters.truncated.inc()
            log.warning("dead letter of %d bytes cut to %d to fit one record", fit.raw_length,
                        len(fit.dead_letter.raw))  # fmt: skip
        await self.publisher.publish(record)
        self._unflushed = True
        self.counters.dead_letters.labels(stage).inc()

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit metrics offsets, once every dead letter written so far is acknowledged.

        Returns:
            True when committed; False when put off (dead letters not yet acknowledged, or
            the commit failed): the next commit covers these offsets.
        """
        if self._unflushed:
            if await self.publisher.flush(DEAD_LETTER_FLUSH_S):
                self.counters.commit_failures.inc()
                return False
            self._unflushed = False
        if await self.metrics.commit(offsets):
            return True
        self.counters.commit_failures.inc()
        return False


async def _wait_or_stop(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when it was set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
