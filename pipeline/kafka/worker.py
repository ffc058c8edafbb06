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

Reading: :meth:`WorkerKafka.poll_metrics` and :meth:`WorkerKafka.poll_audit` hand each
record over decoded, or as None once it was dead-lettered (stage ``<kind>-decode``, cut to fit
one record by :mod:`pipeline.core.contract.dead_letter`, counted in
``<kind>_decode_errors_total``), or keep it for later while the registry cannot be asked
(:mod:`pipeline.kafka.reader`).

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
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.core.contract.dead_letter import fit_dead_letter
from pipeline.core.contract.records import (
    AuditRecord,
    MetricRecord,
    dead_letter_record,
    new_metric_record,
)
from pipeline.core.genesys.events import DeadLetter
from pipeline.core.http_policy import Backoff
from pipeline.errors import DecodeError, RegistryUnavailableError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.connection import check_connection
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import KafkaOrigin, Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.reader import Polled, TopicReader
from pipeline.kafka.registry import require_contract
from pipeline.kafka.schemas import topic_names
from pipeline.kafka.security import librdkafka_config
from pipeline.settings import KafkaSettings, RegistrySettings
from pipeline.telemetry import metric_name

__all__ = ["WorkerKafka", "WorkerKafkaMetrics", "audit_group_id"]

R = TypeVar("R", MetricRecord, AuditRecord)

log = logging.getLogger(__name__)

DEAD_LETTER_FLUSH_S: Final = 1.0
"""How long a commit waits for dead letters to be acknowledged before it is put off."""


def audit_group_id(group_id: str, instance: str) -> str:
    """The group in which ``instance`` reads the whole audit topic: ``<group>-audit-<instance>``.

    One member per group, so it gets every partition; offsets there are never committed, so a
    restart reads the audit history again.
    """
    return f"{group_id}-audit-{instance}"


class WorkerKafkaMetrics:
    """The Kafka-side metrics of one worker: ``genesys_pipeline_<kind>_...`` on its registry.

    Args:
        registry: the worker's Prometheus registry.
        kind: ``dashboard`` or ``freshness`` (the metric names' prefix).
    """

    def __init__(self, registry: CollectorRegistry, kind: str) -> None:
        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(metric_name(f"{kind}_{name}"), doc, labels, registry=registry)

        self.decode_errors = counter(
            "decode_errors_total", "Values not decoded: dead-lettered, moved past", ["topic"]
        )
        self.dead_letters = counter("dead_letters_total", "Dead letters written", ["stage"])
        self.truncated = counter(
            "dead_letters_truncated_total", "Dead letters cut to fit one Kafka record"
        )
        self.registry_waiting = Gauge(
            metric_name(f"{kind}_registry_waiting"),
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
        self.publisher = KafkaPublisher(librdkafka_config(kafka, producer=True))
        """The producer of the worker's side outputs."""
        self._decoders = [
            AvroDecoder(registry.url, schema, self._client_config(), timeout_s=registry.timeout_s)
            for schema in ("metric", "audit")
        ]
        self._metrics_reader = self._reader("metrics", self.metrics, new_metric_record)
        self._audit_reader = self._reader("audit", self.audit, AuditRecord)
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

    def _reader(self, name: str, source: KafkaSource, build: Callable[..., R]) -> TopicReader[R]:
        async def undecodable(error: DecodeError) -> None:
            self.counters.decode_errors.labels(name).inc()
            log.warning("undecodable record dead-lettered: %s", error)
            origin = None
            if error.topic is not None and error.partition is not None and error.offset is not None:
                origin = KafkaOrigin(error.topic, error.partition, error.offset)
            await self.dead_letter(error.raw, str(error), f"{self._kind}-decode", origin=origin)

        return TopicReader(
            name,
            source,
            self._decoders[0 if name == "metrics" else 1],
            build,
            on_undecodable=undecodable,
            retry=self._retry,
            # One registry request may take timeout_s to connect and as long to answer.
            registry_deadline_s=2 * self._registry.timeout_s + 1,
            waiting=self.counters.registry_waiting.labels(name),
            retries=self.counters.registry_retries,
        )

    def _client_config(self) -> dict[str, Any]:
        # One attempt per call: the worker waits and asks again itself, and can stop meanwhile.
        timeout = self._registry.timeout_s
        return {"timeout": timeout, "max.retries": 0, **self._registry.client_config()}

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
            ConfigError: Kafka refused the TLS handshake or the SASL authentication.
        """
        try:
            ids = await self._require_contract(stop)
            if ids is None:
                await self.aclose()
                return False
            self._outbox = Outbox(self._prefix, ids, self._instance)
            self._waiting = "connecting to Kafka"
            await asyncio.to_thread(check_connection, librdkafka_config(self._kafka))
            if self._create:
                self._waiting = "topics not created yet"
                client = librdkafka_config(self._kafka)
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
            check = asyncio.ensure_future(
                asyncio.to_thread(
                    require_contract,
                    self._registry.url,
                    self._prefix,
                    client_config=self._client_config(),
                    suffixes=self._writes,
                )
            )
            try:
                if not await _done_before_stop(check, stop):
                    return None  # the thread ends on its own, within the registry timeout
                return check.result()
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
        for decoder in self._decoders:
            decoder.close()
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
        """Fetch and decode metric records (:meth:`pipeline.kafka.reader.TopicReader.poll`).

        Args:
            timeout_ms: how long to wait for records.

        Returns:
            Each record fetched with its value, or None for one dead-lettered.
        """
        return await self._metrics_reader.poll(timeout_ms)

    async def poll_audit(self, timeout_ms: int) -> Polled[AuditRecord]:
        """Fetch and decode audit records (see :meth:`poll_metrics`)."""
        return await self._audit_reader.poll(timeout_ms)

    # ------------------------------------------------------------------ writing
    async def dead_letter(
        self,
        raw: bytes,
        reason: str,
        stage: str,
        at: float | None = None,
        origin: KafkaOrigin | None = None,
    ) -> None:
        """Write one dead letter to ``<prefix>.dlq``, cut to fit one record, and count it.

        Args:
            raw: the bytes that could not be handled.
            reason: why (safe text: no secrets).
            stage: where it failed (``dashboard``, ``<kind>-decode`` ...).
            at: when (epoch seconds; now when None).
            origin: the Kafka record ``raw`` was read from, if it was one (its
                ``__connect.errors.*`` headers).
        """
        dead = DeadLetter(raw, reason, stage, None, time.time() if at is None else at)
        fit = fit_dead_letter(dead, self._max_record_bytes)
        record = self.outbox.dead_letter(
            dead_letter_record(fit.dead_letter, self._instance), origin
        )
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


async def _done_before_stop(task: asyncio.Future[Any], stop: asyncio.Event | None) -> bool:
    """Wait for ``task`` unless ``stop`` is set first (then ``task`` is cancelled)."""
    if stop is None:
        await asyncio.wait([task])
        return True
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return True
    task.cancel()
    return False


async def _wait_or_stop(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when it was set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
