"""The dashboard worker against a real broker, registry and a fake dashboard (aiohttp).

The fake dashboard verifies every signature, applies each idempotency key once, keeps the
latest value per key and notes any value older than the one it holds (a regression). It can
be down (not listening), answer 500, answer 429 with ``Retry-After: 1``, be slow (answer after
the worker's timeout) or answer 400; it answers 413 to batches over ``max_values`` and 401 to a
wrong signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from pipeline.core.contract.records import MetricRecord
from pipeline.core.http_policy import Backoff
from pipeline.core.workers.push import verify
from pipeline.errors import DashboardError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
from pipeline.settings import DashboardSettings, KafkaSettings, RegistrySettings, WorkerSettings
from tests.conftest import seconds
from tests.polling import until
from tests.records import metric_record

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"
KEYS = 100
BASE_MS = 1_700_000_000_000


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

    def holds_round(self, round_: int) -> bool:
        """Whether every key holds its value of ``round_``."""
        want = [event_time(round_, k) for k in range(KEYS)]
        got = [self.store.get(key_of(k), {}).get("event_time") for k in range(KEYS)]
        return got == want

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(body, request.headers.get("X-Signature-SHA256", ""), SECRET.encode()):
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
    return f"q{k}|oWaiting||voice"


def event_time(round_: int, k: int) -> int:
    return BASE_MS + round_ * 1000 + k


def metric(round_: int, k: int) -> MetricRecord:
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
    """Contract, topics and a publisher under a fresh prefix."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.prefix = f"d{uuid.uuid4().hex[:8]}"
        self.outbox: Outbox | None = None
        self.publisher = KafkaPublisher({"bootstrap.servers": endpoints.bootstrap_servers})

    async def start(self) -> None:
        url = self.endpoints.schema_registry_url
        await asyncio.to_thread(register_contract, url, self.prefix)
        self.outbox = Outbox(
            self.prefix, await asyncio.to_thread(require_contract, url, self.prefix), "p"
        )
        t = self.outbox.topics
        specs = [TopicSpec(t["metrics"], 3), TopicSpec(t["dlq"], 1), TopicSpec(t["audit"], 1)]
        await asyncio.to_thread(ensure_topics, self.endpoints.bootstrap_servers, specs)
        await self.publisher.start()

    async def publish_rounds(self, rounds: range) -> None:
        assert self.outbox is not None
        out = [self.outbox.metric(metric(r, k))[0] for r in rounds for k in range(KEYS)]
        await self.publisher.publish_many(out)
        assert await self.publisher.flush() == 0

    def config(
        self, dashboard: FakeDashboard, group: str, session_ms: int, secret: str = SECRET
    ) -> DashboardConfig:
        return DashboardConfig(
            kafka=KafkaSettings(bootstrap_servers=self.endpoints.bootstrap_servers),
            registry=RegistrySettings(url=self.endpoints.schema_registry_url),
            worker=WorkerSettings(
                topic_prefix=self.prefix,
                group_id=group,
                session_timeout_ms=session_ms,
                ops_port=0,
                ops_host="127.0.0.1",
            ),
            dashboard=DashboardSettings(
                url=dashboard.url,
                secret=SecretStr(secret),
                push_interval_s=0.1,
                max_batch=40,
                timeout_s=0.3,
                failure_threshold=3,
                reset_after_s=0.5,
            ),
            retry=Backoff(base_s=0.05, cap_s=0.2),
        )

    def topic(self, suffix: str) -> str:
        """The full name of one of the contract's topics."""
        assert self.outbox is not None
        return self.outbox.topics[suffix]

    async def read(self, suffix: str, schema: str, count: int) -> list[dict[str, Any]]:
        """The first ``count`` records of a topic, decoded."""
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
                while len(out) < count:
                    out += [decoder.decode(r.value) for r in await source.fetch()]
        finally:
            await source.stop()
            decoder.close()
        return out

    async def aclose(self) -> None:
        assert await self.publisher.aclose() == 0


def pushes_met(worker: DashboardWorker, dashboard: FakeDashboard, mode: str) -> float:
    """Pushes that met the dashboard in ``mode``: answered in it, or failed while it was down."""
    if mode == "down":
        failed = worker.metrics.registry.get_sample_value(
            "dashboard_pushes_total", {"outcome": "failed"}
        )
        return failed or 0.0
    return dashboard.answers.get(mode, 0)


def committed(endpoints: Endpoints, group: str, topic: str) -> int:
    """The records of ``topic`` that ``group`` has committed, over its 3 partitions."""
    consumer = Consumer({"bootstrap.servers": endpoints.bootstrap_servers, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        offsets = consumer.committed(partitions, timeout=seconds(10))
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def dead_letters(worker: DashboardWorker) -> float:
    """Dead letters the worker wrote for refused pushes."""
    value = worker.metrics.registry.get_sample_value(
        "dashboard_dead_letters_total", {"stage": "dashboard"}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def running(worker: DashboardWorker) -> Any:
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


async def test_latest_values_survive_outages_and_a_400_goes_to_the_dlq(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    session_ms = group_timeouts["session.timeout.ms"]
    worker = DashboardWorker(stack.config(dashboard, unique_name("dash"), session_ms))
    try:
        async with running(worker):
            # 2,000 records: 4 rounds (one update per key each) under each condition.
            phases = ["ok", "down", "500", "429", "slow"]
            for i, mode in enumerate(phases):
                if mode == "down":
                    await dashboard.down()
                elif not dashboard.is_up:
                    await dashboard.up()
                dashboard.mode = mode
                hits, records = pushes_met(worker, dashboard, mode), 4 * KEYS * (i + 1)
                await stack.publish_rounds(range(4 * i, 4 * i + 4))
                # While the circuit is open (down, 500, slow) the worker stops fetching; under
                # 429 it re-sends its batch after each Retry-After before it fetches more.
                wanted = records if mode == "ok" else 0
                await until(
                    lambda mode=mode, hits=hits, wanted=wanted: (
                        worker.metrics.records_in >= wanted
                        and pushes_met(worker, dashboard, mode) > hits
                    ),
                    seconds(30),
                    message=f"the records of phase {mode!r} consumed and pushed into it",
                )
            dashboard.mode = "ok"
            await until(lambda: dashboard.holds_round(19), seconds(30), message="round 19 shown")
            assert worker.metrics.records_in == 2000
            assert set(dashboard.answers) == {"ok", "500", "429", "slow"}  # each one was hit
            assert worker.breaker.state == "closed"
            assert dashboard.regressions == []
            assert dashboard.bad_signatures == 0
            assert dashboard.pushes < 200  # HTTP pushes, for 2,000 records
            assert worker.metrics.values_out <= 1000  # coalesced: ≥ 2 records per value
            assert worker.metrics.records_in >= 2 * worker.metrics.values_out

            # A 400: the batches go to the DLQ, with an audit record, and the worker goes on.
            dashboard.mode = "400"
            await stack.publish_rounds(range(20, 21))
            # 100 keys / 40 per batch
            await until(lambda: worker.rejected >= 3, seconds(20), message="3 batches rejected")
            dashboard.mode = "ok"
            await stack.publish_rounds(range(21, 22))
            await until(lambda: dashboard.holds_round(21), seconds(20), message="round 21 shown")
            assert worker.readiness() == []
        dead = await stack.read("dlq", "dead_letter", 3)
        audits = await stack.read("audit", "audit", 3)
    finally:
        await dashboard.down()
        await stack.aclose()
    assert {d["stage"] for d in dead} == {"dashboard"}
    assert {d["reason"] for d in dead} == {"HTTP 400"}
    rejected = [v for d in dead for v in orjson.loads(d["raw"])["values"]]
    assert sorted(v["key"] for v in rejected) == sorted(key_of(k) for k in range(KEYS))
    assert {v["event_time"] for v in rejected} == {event_time(20, k) for k in range(KEYS)}
    assert {a["kind"] for a in audits} == {"dashboard.rejected"}
    assert dashboard.regressions == []


async def test_a_killed_worker_is_resumed_from_the_last_acknowledged_values(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    group = unique_name("dash")
    session_ms = group_timeouts["session.timeout.ms"]
    try:
        first = DashboardWorker(stack.config(dashboard, group, session_ms))
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        await stack.publish_rounds(range(5))
        await until(lambda: dashboard.holds_round(4), seconds(30), message="round 4 shown")
        metrics_topic = stack.topic("metrics")

        async def acknowledged_is_committed() -> bool:
            offsets = await asyncio.to_thread(committed, stack.endpoints, group, metrics_topic)
            return offsets == 5 * KEYS

        await until(
            acknowledged_is_committed,
            seconds(10),
            message="the offsets of the acknowledged rounds 0-4 committed",
            poll_s=0.1,
        )
        dashboard.mode = "500"
        await stack.publish_rounds(range(5, 10))
        await until(
            lambda: first.metrics.records_in == 1000 and dashboard.answers.get("500", 0) >= 1,
            seconds(30),
            message="rounds 5-9 consumed and a push of them refused",
        )
        task.cancel()  # a crash: no last push, no commit
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not dashboard.holds_round(9)

        dashboard.mode = "ok"
        applied_before = len(dashboard.applied)
        second = DashboardWorker(stack.config(dashboard, group, session_ms))
        async with running(second):
            await until(lambda: dashboard.holds_round(9), seconds(30), message="round 9 shown")
        assert second.metrics.records_in == 500  # only the unacknowledged half is re-read
        resent = dashboard.applied[applied_before:]
        assert resent
        assert all(t >= event_time(5, 0) for _, t in resent)
        assert dashboard.regressions == []
        assert dashboard.bad_signatures == 0
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_values_of_a_silent_producer_are_pushed_as_stale_then_fresh_again(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    worker = DashboardWorker(
        stack.config(dashboard, unique_name("stale"), group_timeouts["session.timeout.ms"])
    )
    try:
        # Round 0 was ingested long ago (BASE_MS) and the producer has said nothing since.
        await stack.publish_rounds(range(1))
        async with running(worker):
            await until(
                lambda: len(dashboard.store) == KEYS, seconds(30), message="every key shown"
            )
            await until(
                lambda: all(v["stale"] for v in dashboard.store.values()),
                seconds(30),
                message="every key shown as stale",
            )
            # The producer speaks again: one fresh record makes its keys fresh again.
            assert stack.outbox is not None
            now_ms = int(time.time() * 1000)
            fresh = dataclasses.replace(metric(1, 0), event_time=now_ms, ingest_time=now_ms)
            await stack.publisher.publish_many([stack.outbox.metric(fresh)[0]])
            assert await stack.publisher.flush() == 0
            await until(
                lambda: not any(v["stale"] for v in dashboard.store.values()),
                seconds(30),
                message="every key shown as fresh again",
            )
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_a_413_splits_batches_until_they_pass_and_nothing_is_dead_lettered(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    dashboard.max_values = 15  # the worker starts with batches of 40
    await stack.start()
    await dashboard.up()
    worker = DashboardWorker(
        stack.config(dashboard, unique_name("split"), group_timeouts["session.timeout.ms"])
    )
    try:
        async with running(worker):
            await stack.publish_rounds(range(2))
            await until(lambda: dashboard.holds_round(1), seconds(30), message="round 1 shown")
            assert dashboard.too_large >= 1
            assert worker.batch_limit <= 15
            assert worker.rejected == 0
            assert not dead_letters(worker)
            assert dashboard.regressions == []
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_a_wrong_secret_stops_the_worker_loudly_without_dead_letters_or_commits(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    group, session_ms = unique_name("wrong"), group_timeouts["session.timeout.ms"]
    worker = DashboardWorker(stack.config(dashboard, group, session_ms, "canary-wrong"))
    try:
        await stack.publish_rounds(range(1))
        task = asyncio.create_task(worker.run(asyncio.Event()))
        with pytest.raises(DashboardError) as info:
            await asyncio.wait_for(task, seconds(60))
        assert "401" in str(info.value)
        assert "canary-wrong" not in str(info.value)
        assert dashboard.bad_signatures == 1  # one push, no retries
        assert worker.rejected == 0
        assert not dead_letters(worker)

        fixed = DashboardWorker(stack.config(dashboard, group, session_ms))
        async with running(fixed):
            await until(lambda: dashboard.holds_round(0), seconds(30), message="round 0 shown")
        assert fixed.metrics.records_in == KEYS  # nothing was committed: all read again
    finally:
        await dashboard.down()
        await stack.aclose()
