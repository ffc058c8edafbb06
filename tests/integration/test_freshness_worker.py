"""The freshness worker against the real local broker and registry: two instances share the
metrics partitions, take over on stop, publish reports a plain confluent-kafka consumer
decodes, and write an SLO breach audit when latencies are large."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.contract.records import MetricRecord, audit_record
from pipeline.core.workers.slo import SloSettings
from pipeline.errors import SchemaError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.outbox import CE_TYPES, Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.local.stack import Endpoints
from pipeline.services.freshness_worker import FreshnessConfig, FreshnessWorker
from pipeline.settings import KafkaSettings, RegistrySettings, WorkerSettings
from tests.conftest import seconds
from tests.polling import until
from tests.reading import read_topic
from tests.records import metric_record

pytestmark = pytest.mark.integration

PARTITIONS = 3
SLO = SloSettings(live_p95_s=5.0, window_s=1.0, liveness_cadence_s=30.0)


def metric(i: int, age_s: float) -> MetricRecord:
    """A live observation whose Genesys time lies ``age_s`` in the past."""
    now_ms = round(time.time() * 1000)
    return metric_record(
        event_id=f"e{i}-{uuid.uuid4().hex[:6]}",
        source_topic=f"v2.analytics.queues.q{i % 30}.observations",
        entity_id=f"q{i % 30}",
        count=i,
        value=float(i),
        event_time=now_ms - round(age_s * 1000),
        ingest_time=now_ms - 100,
        correlation_id=None,
    )


def consumed(worker: FreshnessWorker, topic: str = "metrics") -> float:
    return (
        worker.metrics.registry.get_sample_value(
            "genesys_pipeline_freshness_records_total", {"topic": topic}
        )
        or 0.0
    )


def committed(endpoints: Endpoints, group: str, topic: str) -> int:
    """The records of ``topic`` that ``group`` committed, over all partitions (the local
    broker's watermarks are wrong, so callers compare with what they published)."""
    consumer = Consumer({"bootstrap.servers": endpoints.bootstrap_servers, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = consumer.committed(partitions, timeout=seconds(10))
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def config(
    endpoints: Endpoints, prefix: str, group: str, instance: str, session_ms: int
) -> FreshnessConfig:
    return FreshnessConfig(
        KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers),
        RegistrySettings(url=endpoints.schema_registry_url),
        WorkerSettings(
            topic_prefix=prefix,
            instance=instance,
            group_id=group,
            session_timeout_ms=session_ms,
            ops_port=0,
            ops_host="127.0.0.1",
        ),
        SLO,
        report_interval_s=0.25,
    )


async def test_two_workers_share_take_over_report_and_flag_slo_breaches(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    url = endpoints.schema_registry_url
    await asyncio.to_thread(register_contract, url, prefix)
    outbox = Outbox(prefix, await asyncio.to_thread(require_contract, url, prefix), "producer-0")
    topics = outbox.topics
    specs = [TopicSpec(topics["metrics"], PARTITIONS), TopicSpec(topics["audit"], 1)]
    await asyncio.to_thread(ensure_topics, endpoints.bootstrap_servers, specs)
    publisher = KafkaPublisher({"bootstrap.servers": endpoints.bootstrap_servers})
    await publisher.start()

    group, session_ms = unique_name("freshness"), group_timeouts["session.timeout.ms"]
    workers = [
        FreshnessWorker(config(endpoints, prefix, group, f"fw-{i}", session_ms)) for i in (0, 1)
    ]
    stops = [asyncio.Event(), asyncio.Event()]
    runs = [asyncio.create_task(w.run(s)) for w, s in zip(workers, stops, strict=True)]
    everything = {(topics["metrics"], p) for p in range(PARTITIONS)}
    try:
        # (a) both hold partitions, disjointly, and together consume every record once.
        def shared() -> bool:
            a, b = (w.assignment() for w in workers)
            ready = all(w.readiness() == [] for w in workers)
            return ready and bool(a) and bool(b) and not a & b and a | b == everything

        await until(shared, seconds(20), message="both workers ready on disjoint partitions")
        event = AuditEvent(AuditKind.SOCKET_CONNECTED, time.time(), "channel-1", {"socket_id": 1})
        await publisher.publish(outbox.audit(audit_record(event, "producer-0")))
        old = [metric(i, age_s=300.0) for i in range(60)]
        await publisher.publish_many([outbox.metric(r) for r in old])
        await until(
            lambda: sum(consumed(w) for w in workers) >= len(old),
            seconds(20),
            message="every old record consumed",
        )

        # Once the group committed every record, none can be delivered again: a record read
        # twice would have been counted by now.
        async def all_committed() -> bool:
            done = await asyncio.to_thread(committed, endpoints, group, topics["metrics"])
            return done == len(old)

        await until(
            all_committed,
            seconds(20),
            message="the group committed every old record",
            poll_s=0.2,
        )
        assert sum(consumed(w) for w in workers) == len(old)
        assert all(consumed(w) > 0 for w in workers)
        await until(
            lambda: all(consumed(w, "audit") >= 1 for w in workers),
            seconds(20),
            message="each worker read the whole audit topic",
        )

        # (b) the survivor takes every partition and keeps consuming.
        stops[0].set()
        await runs[0]
        survivor = workers[1]
        await until(
            lambda: survivor.assignment() == everything,
            seconds(20),
            message="the survivor holds every partition",
        )
        before = consumed(survivor)
        fresh = [metric(100 + i, age_s=0.0) for i in range(30)]
        await publisher.publish_many([outbox.metric(r) for r in fresh])
        await until(
            lambda: consumed(survivor) >= before + len(fresh),
            seconds(20),
            message="the survivor consumed the fresh records",
        )
        assert survivor.ops is not None
        async with httpx.AsyncClient(base_url=survivor.ops.url) as ops:
            assert (await ops.get("/readyz")).json() == {"status": "ready"}
            exposition = (await ops.get("/metrics")).text
        assert 'freshness_stage_latency_seconds_bucket{family="observation"' in exposition
        assert "genesys_pipeline_freshness_partitions_assigned 3.0" in exposition
        stops[1].set()
        await runs[1]
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*runs, return_exceptions=True)
        assert await publisher.aclose() == 0

    # (c) reports decode with a plain AvroDeserializer.
    reports = await asyncio.to_thread(read_topic, endpoints, topics["freshness"], 3)
    end_to_end = [v for _, _, v, _ in reports if v["stage"] == "end_to_end" and v["count"] > 0]
    assert end_to_end, reports
    assert all(v["p95_seconds"] is not None and v["p95_seconds"] >= 0 for v in end_to_end)
    assert {v["worker_instance"] for v in end_to_end} == {"fw-0", "fw-1"}
    key, _, value, headers = reports[0]
    assert key == f"{value['stage']}|{value['family']}|{value['entity_type']}"
    assert headers["ce_type"] == CE_TYPES["freshness"]
    assert headers["ce_id"] == value["event_id"].encode()

    # (d) the old records breached the live latency objective: an audit record says so.
    audits = await asyncio.to_thread(read_topic, endpoints, topics["audit"], 1)
    breaches = [v for _, _, v, _ in audits if v["kind"] == "freshness.slo_breached"]
    details = [orjson.loads(v["details_json"]) for v in breaches]
    latency = [d for d in details if d["slo"] == "latency_p95" and d["family"] == "observation"]
    assert latency, audits
    assert all(d["value"] > SLO.live_p95_s for d in latency)


async def test_refuses_to_start_without_the_contract(
    endpoints: Endpoints, unique_name: Callable[[str], str]
) -> None:
    prefix = f"n{uuid.uuid4().hex[:8]}"
    worker = FreshnessWorker(config(endpoints, prefix, unique_name("g"), "fw-x", 2000))
    with pytest.raises(SchemaError, match="freshness"):
        await worker.run(asyncio.Event())
