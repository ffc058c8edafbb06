"""The producer end to end: emulator → producer → local broker + registry, read back by a
plain confluent-kafka consumer with AvroDeserializer (no project code on the reading side)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pipeline.core.audit import AuditKind, check_details
from pipeline.core.contract.partition import partition_for_key
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.subscription.spec import load_spec
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import DropSocket, MalformedFrames
from pipeline.emulator.thread import EmulatorThread
from pipeline.errors import SchemaError
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services.producer import ProducerConfig, ProducerService
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings
from tests.conftest import seconds
from tests.polling import until
from tests.producer_rig import proxied_broker, spec_file, start_rig
from tests.reading import read_topic

pytestmark = pytest.mark.integration

FAST = SessionSettings(
    heartbeat_timeout_s=1.5, ping_timeout_s=0.5, backoff_base_s=0.05, backoff_cap_s=0.3
)
PARTITIONS = 3
SLACK_S = 0.5


def config_for(
    emulator: EmulatorThread, endpoints: Endpoints, spec: Path, prefix: str
) -> ProducerConfig:
    return ProducerConfig(
        load_spec(spec),
        GenesysSettings(
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,  # type: ignore[arg-type]
            api_url=emulator.base_url,
        ),
        KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers),
        RegistrySettings(url=endpoints.schema_registry_url),
        ProducerSettings(
            topic_prefix=prefix,
            partitions=PARTITIONS,
            ops_port=0,
            ops_host="127.0.0.1",
            heartbeat_s=0.5,
        ),
        session=FAST,
    )


async def test_every_frame_becomes_records_downstream_tools_can_read(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    emulator = emulator_factory(
        queues=4, agents=24, speed=60.0, frame_interval_s=0.2, heartbeat_s=0.5, keep_frame_text=True
    )
    assert emulator.emulator is not None
    queue_names = [q.name for q in emulator.emulator.center.queues[:4]]
    prefix = f"t{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
    service = ProducerService(
        config_for(emulator, endpoints, spec_file(tmp_path, queue_names), prefix)
    )
    stop = asyncio.Event()
    run = asyncio.create_task(service.run(stop))

    def live() -> list[str]:
        return [
            s.session.channel_id or "" for s in service._streams if s.session.state.name == "LIVE"
        ]

    await until(
        lambda: bool(live()) and service.metrics.delivered._value.get() > 50,
        seconds(20),
        message="a live channel and records delivered",
    )
    assert service.readiness() == []
    assert service.ops is not None
    async with httpx.AsyncClient(base_url=service.ops.url) as ops:
        assert (await ops.get("/healthz")).status_code == 200
        assert (await ops.get("/readyz")).json() == {"status": "ready"}
        exposition = (await ops.get("/metrics")).text
    assert 'genesys_pipeline_records_total{topic="metrics"}' in exposition
    assert "pipeline_delivery_latency_seconds_bucket" in exposition
    channel = live()[0]
    emulator.inject(MalformedFrames(channel, 1))
    await until(
        lambda: service.metrics.dead_letters.labels("parse")._value.get() == 1,
        seconds(20),
        message="the malformed frame dead-lettered",
    )
    emulator.inject(DropSocket(channel))
    await until(
        lambda: service.metrics.gaps._value.get() == 1 and bool(live()),
        seconds(20),
        message="one gap and a live channel again",
    )
    sent = emulator.emulator.frames.frames
    await until(
        lambda: len([f for f in sent() if f.kind == "event"]) >= 40,
        seconds(20),
        message="40 events sent by the emulator",
    )

    async def audit_tells_backfill_and_dead_letter() -> bool:
        # The heartbeats keep the audit topic busy: read what is there within 3 s.
        audit = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.audit", 1, 1.0, 3.0)
        facts = [(v["kind"], orjson.loads(v["details_json"])) for _, _, v, _ in audit]
        return any(
            kind == "backfill.finished" and details["backfill"] == "gap" for kind, details in facts
        ) and any(
            kind == "producer.heartbeat" and details["dead_letters"] == 1 for kind, details in facts
        )

    await until(
        audit_tells_backfill_and_dead_letter,
        seconds(30),
        message="the gap's backfill finished and a heartbeat counted the dead letter",
        poll_s=0.2,
    )
    stop.set()
    stopped_at = time.time()
    await asyncio.wait_for(run, seconds(30))

    metrics = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.metrics", PARTITIONS)
    audit = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.audit", 1)
    dlq = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.dlq", 1)

    # keys are entity ids on Java's murmur2 partition; CloudEvents headers on every record
    for key, partition, value, headers in metrics:
        assert key == value["entity_id"]
        assert partition == partition_for_key(key.encode(), PARTITIONS)
        assert headers["ce_id"] == value["event_id"].encode()
        assert headers["ce_specversion"] == b"1.0"
        assert headers["content-type"] == b"application/avro"
        assert headers["ce_subject"] == value["source_topic"].encode()

    # every intact frame the emulator sent is in Kafka, value for value
    by_correlation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, _, value, _ in metrics:
        if value["correlation_id"]:
            by_correlation[value["correlation_id"]].append(value)
    gap_audits = [v for _, _, v, _ in audit if v["kind"] == "gap.closed"]
    assert len(gap_audits) == 1
    gap = orjson.loads(gap_audits[0]["details_json"])
    frames = [f for f in emulator.emulator.frames.frames() if f.kind == "event"]
    checked = 0
    for frame in frames:
        if not frame.intact or frame.wall > stopped_at - SLACK_S:
            continue
        if gap["started_at_ms"] / 1000 - SLACK_S <= frame.wall <= gap["ended_at_ms"] / 1000:
            continue  # in flight when the socket dropped: covered by the gap and its backfill
        assert frame.text is not None
        records = by_correlation[frame.correlation_id or ""]
        assert records, f"frame {frame.seq} on {frame.topic} is not in Kafka"
        check_values(orjson.loads(frame.text), records)
        checked += 1
    assert checked >= 30

    # the malformed frame is a dead letter with its bytes
    (dead,) = [v for _, _, v, _ in dlq]
    broken = [f for f in frames if not f.intact]
    assert dead["raw"] == broken[0].text.encode()  # type: ignore[union-attr]
    assert dead["stage"] == "parse"
    assert "invalid JSON" in dead["reason"]

    # the audit trail tells the lifecycle, every record as its kind declares
    kinds = {v["kind"] for _, _, v, _ in audit}
    for _, _, v, _ in audit:
        assert check_details(AuditKind(v["kind"]), orjson.loads(v["details_json"])) == []
    heartbeats = [
        orjson.loads(v["details_json"]) for _, _, v, _ in audit if v["kind"] == "producer.heartbeat"
    ]
    assert heartbeats
    assert heartbeats[-1]["dead_letters"] == 1
    assert {
        "subscription.validated",
        "subscription.planned",
        "availability.report",
        "channel.created",
        "channel.subscribed",
        "socket.connected",
        "gap.closed",
        "backfill.finished",
        "session.stopped",
    } <= kinds
    assert any(v["backfill"] for _, _, v, _ in metrics)


def check_values(frame: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Each metric datum of an analytics frame is a record with the same stats."""
    body = frame["eventBody"]
    if "data" not in body:
        return  # presence / routing status: checked by their state records existing
    media = body["group"].get("mediaType")
    index = {(r["metric"], r["qualifier"], r["media_type"]): r for r in records if not r["derived"]}
    for element in body["data"]:
        for datum in element["metrics"]:
            record = index[(datum["metric"], datum.get("qualifier"), media)]
            stats = datum["stats"]
            if "count" in stats:
                assert record["count"] == stats["count"]
            if "sum" in stats:
                assert record["sum"] == stats["sum"]
            if "ratio" in stats:
                assert record["ratio"] == stats["ratio"]


async def test_producer_refuses_to_start_without_its_schemas(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    emulator = emulator_factory()
    assert emulator.emulator is not None
    names = [q.name for q in emulator.emulator.center.queues[:1]]
    config = config_for(emulator, endpoints, spec_file(tmp_path, names), f"t{uuid.uuid4().hex[:8]}")
    with pytest.raises(SchemaError, match="pipeline schemas register"):
        await ProducerService(config).run(asyncio.Event())


async def test_producer_stops_within_its_deadline_while_kafka_is_unreachable(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    async with proxied_broker(tmp_path / "broker") as (bootstrap, proxy):
        rig = await start_rig(
            emulator_factory,
            replace(endpoints, bootstrap_servers=bootstrap),
            tmp_path,
            settings={"shutdown_timeout_s": 2.0, "max_in_flight": 200},
        )
        proxy.cut()
        # Kafka gone: the buffer fills, the stream blocks in the sink, facts pile up.
        await until(
            lambda: rig.service.stats().in_flight >= 200, seconds(20), message="buffer full"
        )
        rig.stop.set()
        started = time.monotonic()
        await asyncio.wait_for(rig.task, seconds(10))
        assert time.monotonic() - started < 2.0 + 1.0  # the deadline, and a little slack
