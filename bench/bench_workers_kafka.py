"""Part 3 of ``bench_workers.py``: Kafka → decoded → freshness / coalesced, local broker.

Starts its own broker (:class:`~pipeline.local.broker.LocalBroker`, Tansu, in a temporary
directory), fills a 6-partition ``.metrics`` topic with ``--kafka-records`` framed metric
values of the part-1 stream (confluent-kafka producer, zstd, as the producer service writes
them), then reads all of them back in the same run, once per path, each with a fresh consumer
group (same aiokafka settings as :class:`~pipeline.kafka.consumer.KafkaSource`,
``getmany(max_records=10_000)``):

- a plain: ``AIOKafkaConsumer.getmany`` and a count, no decode (the ceiling);
- b today: ``KafkaSource.fetch``, then per record today's decode (``AvroDecoder``'s fastavro
  path: ``split_confluent`` + ``schemaless_reader`` with the reader schema) +
  ``MetricRecord(**dict)`` + ``FreshnessMonitor.on_record`` (the baseline);
- c freshness: ``TopicReader.poll`` (the worker's reader: compiled decoder,
  ``new_metric_record``) + ``FreshnessMonitor.on_record``;
- c worker: ``TopicReader.poll`` + the freshness worker's own per-fetch code
  (``FreshnessWorker._on_metrics``: the monitor, the Prometheus counter and stage histograms);
- c dashboard: ``TopicReader.poll`` + the dashboard worker's own per-fetch code
  (``DashboardWorker._offer`` per record, ``count_in``), and every 250 ms ``take_batch`` until
  empty, ``acknowledged``, ``committable()`` (no HTTP).

Each path is timed from its first non-empty fetch (so the group join, which the local broker
delays by half the session timeout, is left out) to its last record processed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema
from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.core.contract.records import MetricRecord, new_metric_record
from pipeline.core.http_policy import Backoff
from pipeline.core.workers.freshness import FreshnessMonitor
from pipeline.errors import DecodeError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.reader import TopicReader
from pipeline.kafka.schemas import load_schema
from pipeline.local.broker import LocalBroker
from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
from pipeline.services.freshness_worker import FreshnessConfig, FreshnessWorker
from pipeline.settings import DashboardSettings, KafkaSettings, RegistrySettings, WorkerSettings

__all__ = ["KafkaResult", "measure_kafka", "report_kafka"]

PARTITIONS = 6
SESSION_TIMEOUT_MS = 2_000  # the local broker joins a group after half of it
MAX_RECORDS = 10_000
BATCH_EVERY_S = 0.25


class _Lookup:
    """The registry of the bench: every id is the metric schema."""

    def __init__(self) -> None:
        self._text = orjson.dumps(load_schema("metric")).decode()

    def get_schema(self, schema_id: int) -> Schema:
        return Schema(self._text, "AVRO")

    def close(self) -> None:
        return None


def new_avro_decoder() -> AvroDecoder:
    """A real AvroDecoder whose registry answers the metric schema for every id."""
    return AvroDecoder("http://registry.invalid", "metric", lookup=_Lookup())


@dataclass(frozen=True, slots=True)
class KafkaResult:
    """One path's run."""

    path: str
    records: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.records / self.seconds


def fill(bootstrap: str, topic: str, values: Sequence[tuple[bytes, int]]) -> None:
    """Produce ``(value, partition)`` pairs (zstd, acks=all, as the producer service)."""
    producer = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
        "linger.ms": 5, "compression.type": "zstd",
    })  # fmt: skip
    for i, (value, partition) in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1_000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the bench topic could not be filled")


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap)


async def _timed(
    path: str, n: int, fetch: Callable[[], Awaitable[int]], deadline_s: float = 120.0
) -> KafkaResult:
    """Call ``fetch`` (→ records processed) until ``n``; time from the first non-empty one."""
    done, start, cpu = 0, 0.0, 0.0
    give_up = time.monotonic() + deadline_s
    while done < n:
        if time.monotonic() > give_up:
            raise RuntimeError(f"{path}: only {done:,} of {n:,} records within {deadline_s} s")
        if not done:
            start, cpu = time.perf_counter(), time.process_time()
        done += await fetch()
    return KafkaResult(path, done, time.perf_counter() - start, time.process_time() - cpu)


async def plain(bootstrap: str, topic: str, n: int) -> KafkaResult:
    """a: getmany and count."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=SESSION_TIMEOUT_MS // 4,
    )  # fmt: skip
    await consumer.start()

    async def fetch() -> int:
        batches = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
        return sum(len(records) for records in batches.values())

    try:
        return await _timed("a plain aiokafka", n, fetch)
    finally:
        await consumer.stop()


def _source(bootstrap: str, topic: str) -> KafkaSource:
    return KafkaSource(
        _settings(bootstrap), [topic], f"bench-{uuid.uuid4().hex[:8]}", SESSION_TIMEOUT_MS
    )


async def today(bootstrap: str, topic: str, n: int) -> KafkaResult:
    """b: fastavro decode + MetricRecord(**dict) + the freshness core, per record."""
    source, decoder = _source(bootstrap, topic), new_avro_decoder()
    monitor = FreshnessMonitor("freshness-0")
    await source.start()

    async def fetch() -> int:
        records = await source.fetch(500, MAX_RECORDS)
        now = time.time()
        for raw in records:
            where = (raw.topic, raw.partition, raw.offset)
            record = MetricRecord(**decoder._decode_fastavro(raw.value, where))
            monitor.on_record(record, raw.timestamp, now)
        return len(records)

    try:
        return await _timed("b today: fastavro + freshness", n, fetch)
    finally:
        await source.stop()


def _reader(source: KafkaSource) -> TopicReader[MetricRecord]:
    async def undecodable(error: DecodeError) -> None:
        raise AssertionError(f"the bench values must decode: {error}")

    registry = CollectorRegistry()
    return TopicReader(
        "metrics", source, new_avro_decoder(), new_metric_record,
        on_undecodable=undecodable, retry=Backoff(), registry_deadline_s=10.0,
        waiting=Gauge("waiting", "", registry=registry),
        retries=Counter("retries", "", registry=registry),
    )  # fmt: skip


async def _with_reader(
    bootstrap: str,
    topic: str,
    n: int,
    path: str,
    handle: Callable[[list[tuple[ConsumerRecord[bytes, bytes], MetricRecord | None]]], Any],
) -> KafkaResult:
    source = _source(bootstrap, topic)
    reader = _reader(source)
    await source.start()

    async def fetch() -> int:
        polled = await reader.poll(500)
        handle(polled)
        return len(polled)

    try:
        return await _timed(path, n, fetch)
    finally:
        await source.stop()


async def freshness_core(bootstrap: str, topic: str, n: int) -> KafkaResult:
    """c: TopicReader + the freshness core."""
    monitor = FreshnessMonitor("freshness-0")

    def handle(polled: list[tuple[ConsumerRecord[bytes, bytes], MetricRecord | None]]) -> None:
        now = time.time()
        for raw, record in polled:
            if record is not None:
                monitor.on_record(record, raw.timestamp, now)

    return await _with_reader(bootstrap, topic, n, "c reader + freshness core", handle)


def _configs(bootstrap: str) -> tuple[KafkaSettings, RegistrySettings, WorkerSettings]:
    return _settings(bootstrap), RegistrySettings(url="http://registry.invalid"), WorkerSettings()


async def freshness_worker(bootstrap: str, topic: str, n: int) -> KafkaResult:
    """c: TopicReader + the freshness worker's per-fetch code (monitor + Prometheus)."""
    kafka, registry, worker_settings = _configs(bootstrap)
    worker = FreshnessWorker(FreshnessConfig(kafka, registry, worker_settings))

    def handle(polled: list[tuple[ConsumerRecord[bytes, bytes], MetricRecord | None]]) -> None:
        worker._on_metrics(polled, time.time())

    return await _with_reader(bootstrap, topic, n, "c reader + freshness worker", handle)


async def dashboard_worker(bootstrap: str, topic: str, n: int) -> KafkaResult:
    """c: TopicReader + the dashboard worker's per-fetch code + coalesced pushes (no HTTP)."""
    kafka, registry, worker_settings = _configs(bootstrap)
    dashboard = DashboardSettings(url="http://dashboard.invalid/push", secret="bench")  # noqa: S106
    worker = DashboardWorker(DashboardConfig(kafka, registry, worker_settings, dashboard))
    values = worker.values
    next_push = time.monotonic() + BATCH_EVERY_S

    def handle(polled: list[tuple[ConsumerRecord[bytes, bytes], MetricRecord | None]]) -> None:
        nonlocal next_push
        for raw, metric in polled:
            worker._offer(raw, metric)
        worker.metrics.count_in(len(polled))
        if time.monotonic() >= next_push or not polled:
            while (batch := values.take_batch(worker.batch_limit)) is not None:
                values.acknowledged(batch.batch_id)
                worker.metrics.count_out(len(batch.values))
            values.committable()
            next_push = time.monotonic() + BATCH_EVERY_S

    return await _with_reader(bootstrap, topic, n, "c reader + dashboard worker", handle)


PATHS = (plain, today, freshness_core, freshness_worker, dashboard_worker)


async def _measure(bootstrap: str, values: Sequence[tuple[bytes, int]], rounds: int) -> list[
    list[KafkaResult]
]:  # fmt: skip
    topic = f"bench-workers-{uuid.uuid4().hex[:8]}.metrics"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, PARTITIONS)])
    await asyncio.to_thread(fill, bootstrap, topic, values)
    out: list[list[KafkaResult]] = []
    for i in range(rounds):
        row = [await path(bootstrap, topic, len(values)) for path in PATHS]
        print(f"   round {i + 1}/{rounds}: " + ", ".join(
            f"{r.path.split(' ')[0]} {r.per_s:,.0f}/s" for r in row), flush=True)  # fmt: skip
        out.append(row)
    return out


def measure_kafka(values: Sequence[tuple[bytes, int]], rounds: int) -> list[list[KafkaResult]]:
    """Start a local broker, fill a topic with ``values``, run every path ``rounds`` times.

    The broker may use every CPU; this process keeps the CPU it was pinned to (if any).
    """
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        broker = LocalBroker(Path(tmp))
        try:
            if pinned is not None:
                os.sched_setaffinity(0, range(os.cpu_count() or 1))  # the broker inherits it
            bootstrap = broker.start()
            if pinned is not None:
                os.sched_setaffinity(0, pinned)
            return asyncio.run(_measure(bootstrap, values, rounds))
        finally:
            broker.stop()


def report_kafka(rounds: list[list[KafkaResult]]) -> str:
    """The best round of each path, with ratios to a (plain) and b (today)."""
    best = {r.path: r for row in rounds for r in row}
    for row in rounds:
        for r in row:
            if r.per_s > best[r.path].per_s:
                best[r.path] = r
    plain_rate = best["a plain aiokafka"].per_s
    today_rate = best["b today: fastavro + freshness"].per_s
    lines = [
        f"3. Kafka → decoded → worker core, local broker, {next(iter(best.values())).records:,} "
        f"records, best of {len(rounds)} rounds",
        f"   {'path':<30} {'records/s':>10} {'µs/record':>10} {'CPU µs':>7} {'x a':>6} {'x b':>6}",
    ]
    for r in best.values():
        lines.append(
            f"   {r.path:<30} {r.per_s:>10,.0f} {1e6 / r.per_s:>10.2f} "
            f"{1e6 * r.cpu_s / r.records:>7.2f} {r.per_s / plain_rate:>6.2f} "
            f"{r.per_s / today_rate:>6.2f}"
        )
    lines.append(
        "   (CPU µs: process CPU time per record, all threads; x a, x b: records/s ratios)"
    )
    worker = min((r for r in best.values() if "worker" in r.path), key=lambda r: r.per_s)
    to_plain, to_today = worker.per_s / plain_rate, worker.per_s / today_rate
    lines.append(
        f"   slowest worker path: {to_plain:.2f} x a (target >= 0.5: "
        f"{'met' if to_plain >= 0.5 else 'NOT met'}), {to_today:.2f} x b (target >= 10: "
        f"{'met' if to_today >= 10 else 'NOT met'})"
    )
    return "\n".join(lines)
