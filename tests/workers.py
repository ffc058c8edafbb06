"""What the consumer-worker tests share: a contract under a fresh prefix, a fake dashboard,
poison values, and ways to read back what the workers did (commits, dead letters).

The fake dashboard verifies every signature, applies each idempotency key once, keeps the
latest value per key and notes any value older than the one it holds (a regression). It can
be down (not listening), answer 500, answer 429 with ``Retry-After: 1``, be slow (answer after
the worker's timeout) or answer 400; it answers 413 to batches over ``max_values`` and 401 to a
wrong signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import fastavro
import orjson
from aiohttp import web
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from pydantic import SecretStr

from pipeline.core.contract.records import MetricRecord
from pipeline.core.contract.wire import confluent_header
from pipeline.core.http_policy import Backoff
from pipeline.core.workers.push import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureCheck, verify
from pipeline.core.workers.slo import SloSettings
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher, OutRecord
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.local.process import free_port
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
from pipeline.services.freshness_worker import FreshnessConfig
from pipeline.settings import DashboardSettings, KafkaSettings, RegistrySettings, WorkerSettings
from tests.conftest import seconds
from tests.reading import Read, read_topic
from tests.records import metric_record
from tests.tcp_proxy import TcpProxy, proxied_local_broker

__all__ = [
    "BASE_MS",
    "KEYS",
    "METRIC_PARTITIONS",
    "SECRET",
    "FakeDashboard",
    "Stack",
    "committed",
    "dead_letters",
    "event_time",
    "key_of",
    "metric",
    "proxied_broker",
    "pushes_met",
    "running",
]

SECRET = "s3cret-for-tests"
KEYS = 100
BASE_MS = 1_700_000_000_000
METRIC_PARTITIONS = 3


class FakeDashboard:
    """A push endpoint with switchable failure modes."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.port = 0
        self.store: dict[str, dict[str, Any]] = {}
        self.applied: list[tuple[str, int]] = []  # (key, event_time) in the order applied
        self.regressions: list[tuple[str, int, int]] = []
        self.seen: set[str] = set()
        self.pushes = 0  # distinct batches applied
        self.duplicates = 0
        self.bad_signatures = 0
        self.rejected = 0
        self.answers: dict[str, int] = {}  # mode → requests answered in it
        self.max_values: int | None = None  # larger batches get 413
        self.too_large = 0
        self._runner: web.AppRunner | None = None

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def holds_round(self, round_: int, keys: int = KEYS) -> bool:
        """Whether every key holds its value of ``round_``."""
        want = [event_time(round_, k) for k in range(keys)]
        got = [self.store.get(key_of(k), {}).get("event_time") for k in range(keys)]
        return got == want

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        check = verify(
            SECRET.encode(),
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            now=time.time(),
        )
        if check is not SignatureCheck.VALID:
            self.bad_signatures += 1
            return web.Response(status=401)
        self.answers[self.mode] = self.answers.get(self.mode, 0) + 1
        match self.mode:
            case "500":
                return web.Response(status=500)
            case "429":
                return web.Response(status=429, headers={"Retry-After": "1"})
            case "slow":
                await asyncio.sleep(1.0)  # the fault itself: answer after the worker's timeout
                return web.Response(status=503)
            case "400":
                self.rejected += 1
                return web.Response(status=400)
        values = orjson.loads(body)["values"]
        if self.max_values is not None and len(values) > self.max_values:
            self.too_large += 1
            return web.Response(status=413)
        key = request.headers["Idempotency-Key"]
        if key in self.seen:
            self.duplicates += 1
            return web.json_response({"status": "duplicate"})
        self.seen.add(key)
        self.pushes += 1
        for value in values:
            self._apply(value)
        return web.json_response({"status": "ok"})

    def _apply(self, value: dict[str, Any]) -> None:
        current = self.store.get(value["key"])
        if current is not None and value["event_time"] < current["event_time"]:
            self.regressions.append((value["key"], value["event_time"], current["event_time"]))
            return
        self.store[value["key"]] = value
        self.applied.append((value["key"], value["event_time"]))


def key_of(k: int) -> str:
    """The current key of queue ``k``'s ``oWaiting`` value."""
    return f"q{k}|oWaiting||voice"


def event_time(round_: int, k: int) -> int:
    """The event time of queue ``k``'s value in round ``round_`` (rounds are 1 s apart)."""
    return BASE_MS + round_ * 1000 + k


def metric(round_: int, k: int) -> MetricRecord:
    """Queue ``k``'s value in round ``round_``."""
    t = event_time(round_, k)
    return metric_record(
        event_id=f"r{round_}-k{k}",
        source_topic=f"v2.analytics.queues.q{k}.observations",
        entity_id=f"q{k}",
        count=round_,
        value=float(round_),
        event_time=t,
        ingest_time=t + 50,
        correlation_id=None,
    )


class Stack:
    """Contract, topics and a publisher under a fresh prefix.

    Args:
        endpoints: the broker and registry.
        registry_url: where the workers ask the registry (a proxy in front of it), if not
            the registry itself.
    """

    def __init__(self, endpoints: Endpoints, registry_url: str | None = None) -> None:
        self.endpoints = endpoints
        self.registry_url = registry_url or endpoints.schema_registry_url
        self.prefix = f"d{uuid.uuid4().hex[:8]}"
        self.outbox: Outbox | None = None
        self.ids: dict[str, int] = {}
        self.publisher = KafkaPublisher({"bootstrap.servers": endpoints.bootstrap_servers})

    async def start(self) -> None:
        url = self.endpoints.schema_registry_url
        await asyncio.to_thread(register_contract, url, self.prefix)
        self.ids = await asyncio.to_thread(require_contract, url, self.prefix)
        self.outbox = Outbox(self.prefix, self.ids, "p")
        t = self.outbox.topics
        specs = [
            TopicSpec(t["metrics"], METRIC_PARTITIONS),
            TopicSpec(t["dlq"], 1),
            TopicSpec(t["audit"], 1),
        ]
        await asyncio.to_thread(ensure_topics, self.endpoints.bootstrap_servers, specs)
        await self.publisher.start()

    async def publish_rounds(self, rounds: range, keys: int = KEYS) -> None:
        assert self.outbox is not None
        out = [self.outbox.metric(metric(r, k)) for r in rounds for k in range(keys)]
        await self.publish(out)

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Produce ``records`` and wait until Kafka holds every one."""
        await self.publisher.publish_many(records)
        assert await self.publisher.flush() == 0

    def raw(self, suffix: str, value: bytes, key: bytes = b"poison") -> OutRecord:
        """A record of the contract's topic ``suffix`` with any value bytes."""
        return OutRecord(self.topic(suffix), key, value)

    def poison_values(self, schema: str) -> dict[str, bytes]:
        """Values on a ``schema`` topic no worker can decode, by what is wrong with them.

        ``truncated`` (6 bytes: the header and one byte of body), ``unknown_id`` (a schema id
        the registry never gave), ``unresolvable`` (a schema registered under another subject
        that cannot be read as ``schema``: a required field is missing).
        """
        schema_id = self.ids[self.topic("metrics" if schema == "metric" else "audit")]
        odd = {
            "type": "record",
            "name": "MetricRecord" if schema == "metric" else "AuditRecord",
            "namespace": "io.github.genesys_kafka_pipeline.v1",
            "fields": [{"name": "event_id", "type": "int"}],
        }
        registry = SchemaRegistryClient({"url": self.endpoints.schema_registry_url})
        try:
            subject = f"{self.prefix}-poison-{schema}-value"
            odd_id = registry.register_schema(subject, Schema(orjson.dumps(odd).decode(), "AVRO"))
        finally:
            registry.close()
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(odd), {"event_id": 5})
        return {
            "truncated": confluent_header(schema_id) + b"\x02",
            "unknown_id": confluent_header(987_654) + b"\x02",
            "unresolvable": confluent_header(odd_id) + body.getvalue(),
        }

    def dashboard_config(
        self,
        dashboard: FakeDashboard | str,
        group: str,
        session_ms: int,
        secret: str = SECRET,
        **dashboard_settings: Any,
    ) -> DashboardConfig:
        """A dashboard worker's configuration: small batches, short timeouts and waits."""
        url = dashboard if isinstance(dashboard, str) else dashboard.url
        settings: dict[str, Any] = {
            "push_interval_s": 0.1,
            "max_batch": 40,
            "timeout_s": 0.3,
            "failure_threshold": 3,
            "reset_after_s": 0.5,
            **dashboard_settings,
        }
        return DashboardConfig(
            kafka=KafkaSettings(bootstrap_servers=self.endpoints.bootstrap_servers),
            registry=self.registry(),
            worker=self.worker_settings(group, session_ms),
            dashboard=DashboardSettings(url=url, secret=SecretStr(secret), **settings),
            retry=Backoff(base_s=0.05, cap_s=0.2),
        )

    def freshness_config(self, group: str, session_ms: int, instance: str) -> FreshnessConfig:
        """A freshness worker's configuration: quarter-second ticks, short waits."""
        return FreshnessConfig(
            KafkaSettings(bootstrap_servers=self.endpoints.bootstrap_servers),
            self.registry(),
            self.worker_settings(group, session_ms, instance=instance),
            SloSettings(window_s=1.0),
            report_interval_s=0.25,
            retry=Backoff(base_s=0.05, cap_s=0.2),
        )

    def registry(self, timeout_s: float = 1.0) -> RegistrySettings:
        """The registry as the workers see it (through :attr:`registry_url`)."""
        return RegistrySettings(url=self.registry_url, timeout_s=timeout_s)

    def worker_settings(self, group: str, session_ms: int, **changes: Any) -> WorkerSettings:
        """Worker settings under this prefix (ops on a free port of 127.0.0.1)."""
        return WorkerSettings(
            topic_prefix=self.prefix,
            group_id=group,
            session_timeout_ms=session_ms,
            ops_port=0,
            ops_host="127.0.0.1",
            **changes,
        )

    def env(self, group: str, session_ms: int, dashboard_url: str, secret: str) -> dict[str, str]:
        """The environment of a ``pipeline worker dashboard`` process for this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.endpoints.bootstrap_servers,
            "SCHEMA_REGISTRY_URL": self.registry_url,
            "PIPELINE_TOPIC_PREFIX": self.prefix,
            "PIPELINE_GROUP_ID": group,
            "PIPELINE_SESSION_TIMEOUT_MS": str(session_ms),
            "PIPELINE_OPS_HOST": "127.0.0.1",
            "PIPELINE_OPS_PORT": str(free_port()),
            "DASHBOARD_URL": dashboard_url,
            "DASHBOARD_SECRET": secret,
            "DASHBOARD_PUSH_INTERVAL_S": "0.1",
            "DASHBOARD_MAX_BATCH": "40",
            "DASHBOARD_TIMEOUT_S": "0.3",
            "DASHBOARD_FAILURE_THRESHOLD": "3",
            "DASHBOARD_RESET_AFTER_S": "0.5",
        }

    def topic(self, suffix: str) -> str:
        """The full name of one of the contract's topics."""
        assert self.outbox is not None
        return self.outbox.topics[suffix]

    async def read(
        self,
        suffix: str,
        schema: str,
        count: int,
        done: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """The first ``count`` records of a topic, decoded (or more: until ``done`` says so)."""
        assert self.outbox is not None
        kafka = KafkaSettings(bootstrap_servers=self.endpoints.bootstrap_servers)
        source = KafkaSource(
            kafka, [self.outbox.topics[suffix]], f"reader-{uuid.uuid4().hex}", 2000
        )
        decoder = AvroDecoder(self.endpoints.schema_registry_url, schema)
        out: list[dict[str, Any]] = []
        await source.start()
        try:
            async with asyncio.timeout(seconds(20)):
                while len(out) < count or (done is not None and not done(out)):
                    out += [decoder.decode(r.value) for r in await source.fetch()]
        finally:
            await source.stop()
            decoder.close()
        return out

    async def dead_letters(self, idle_s: float = 1.0) -> list[Read]:
        """Every record of ``.dlq`` so far (key, partition, value, headers)."""
        return await asyncio.to_thread(
            read_topic, self.endpoints, self.topic("dlq"), 1, idle_s=seconds(idle_s)
        )

    def committed(self, group: str) -> int:
        """The metrics records ``group`` has committed, over every partition."""
        return committed(self.endpoints, group, self.topic("metrics"))

    async def aclose(self) -> None:
        assert await self.publisher.aclose() == 0


def committed(endpoints: Endpoints, group: str, topic: str) -> int:
    """The records of ``topic`` that ``group`` has committed, over its 3 partitions."""
    consumer = Consumer({"bootstrap.servers": endpoints.bootstrap_servers, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(METRIC_PARTITIONS)]
        offsets = consumer.committed(partitions, timeout=seconds(10))
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def pushes_met(worker: DashboardWorker, dashboard: FakeDashboard, mode: str) -> float:
    """Pushes that met the dashboard in ``mode``: answered in it, or failed while it was down."""
    if mode == "down":
        failed = worker.metrics.registry.get_sample_value(
            "genesys_pipeline_dashboard_pushes_total", {"outcome": "failed"}
        )
        return failed or 0.0
    return dashboard.answers.get(mode, 0)


def dead_letters(worker: DashboardWorker, stage: str = "dashboard") -> float:
    """Dead letters the worker wrote at ``stage`` (refused pushes by default)."""
    value = worker.metrics.registry.get_sample_value(
        "genesys_pipeline_dashboard_dead_letters_total", {"stage": stage}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def proxied_broker(
    endpoints: Endpoints, workdir: Path
) -> AsyncIterator[tuple[Endpoints, TcpProxy]]:
    """A private broker behind a proxy it advertises, so the proxy can cut Kafka off; yields
    its endpoints (the shared registry) and the proxy."""
    async with proxied_local_broker(workdir) as (_, proxy):
        yield Endpoints(f"127.0.0.1:{proxy.listen_port}", endpoints.schema_registry_url), proxy


@contextlib.asynccontextmanager
async def running(worker: Any) -> AsyncIterator[asyncio.Task[None]]:
    """Run a worker (``run(stop)``) for the block; stop it cleanly after, and re-raise its
    failure if it failed."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield task
    finally:
        if not task.done():
            stop.set()
            await asyncio.wait_for(task, seconds(30))
        elif not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
