"""Reading the contract back: decode by schema id through the registry, commit manually,
resume after the last commit."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.contract.records import MetricRecord
from pipeline.core.contract.wire import confluent_header
from pipeline.errors import DecodeError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher, OutRecord
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.local.stack import Endpoints
from pipeline.settings import KafkaSettings
from tests.conftest import seconds
from tests.polling import until
from tests.records import metric_record
from tests.workers import proxied_broker

pytestmark = pytest.mark.integration


def metric(i: int) -> MetricRecord:
    return metric_record(
        event_id=f"e{i}",
        entity_id=f"q{i % 5}",
        count=i,
        value=float(i),
        event_time=1_700_000_000_000 + i,
        ingest_time=1_700_000_000_100 + i,
        correlation_id=None,
    )


async def test_records_decode_and_a_new_member_resumes_after_the_commit(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}"
    url = endpoints.schema_registry_url
    await asyncio.to_thread(register_contract, url, prefix)
    ids = await asyncio.to_thread(require_contract, url, prefix)
    outbox = Outbox(prefix, ids, "producer-0")
    topic = outbox.topics["metrics"]
    await asyncio.to_thread(ensure_topics, endpoints.bootstrap_servers, [TopicSpec(topic, 3)])
    publisher = KafkaPublisher({"bootstrap.servers": endpoints.bootstrap_servers})
    await publisher.start()
    for i in range(100):
        await publisher.publish(outbox.metric(metric(i)))
    assert await publisher.aclose() == 0

    kafka = KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers)
    group = unique_name("workers")
    decoder = AvroDecoder(url, "metric")
    first = KafkaSource(kafka, [topic], group, group_timeouts["session.timeout.ms"])
    await first.start()
    seen: list[dict[str, object]] = []
    committed: dict[tuple[str, int], int] = {}
    try:
        async with asyncio.timeout(seconds(30)):
            while len(seen) < 40:
                for record in await first.fetch(max_records=10):
                    seen.append(decoder.decode(record.value))
                    committed[(record.topic, record.partition)] = record.offset + 1
        await first.commit(committed)
    finally:
        await first.stop()
    assert seen[0] == dataclasses.asdict(metric(int(str(seen[0]["event_id"])[1:])))

    second = KafkaSource(kafka, [topic], group, group_timeouts["session.timeout.ms"])
    await second.start()
    rest: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(seconds(30)):
            while len(seen) + len(rest) < 100:
                rest += [decoder.decode(r.value) for r in await second.fetch()]
    finally:
        await second.stop()
        decoder.close()
    ids_seen = [r["event_id"] for r in seen + rest]
    assert sorted(ids_seen) == sorted(f"e{i}" for i in range(100))  # nothing twice, none lost


def test_decoder_refuses_a_schema_id_the_registry_does_not_know(endpoints: Endpoints) -> None:
    decoder = AvroDecoder(endpoints.schema_registry_url, "metric")
    try:
        with pytest.raises(DecodeError, match="schema id 2147000000 is not in the registry"):
            decoder.decode(confluent_header(2_147_000_000) + b"\x00", topic="t", offset=3)
    finally:
        decoder.close()


async def test_a_commit_while_kafka_is_unreachable_is_put_off_not_raised(
    endpoints: Endpoints, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    async with proxied_broker(endpoints, tmp_path) as (private, proxy):
        topic = unique_name("commits")
        specs = [TopicSpec(topic, 1)]
        await asyncio.to_thread(ensure_topics, private.bootstrap_servers, specs)
        publisher = KafkaPublisher({"bootstrap.servers": private.bootstrap_servers})
        await publisher.start()
        await publisher.publish(OutRecord(topic, b"k", b"v"))
        assert await publisher.aclose() == 0
        kafka = KafkaSettings(bootstrap_servers=private.bootstrap_servers)
        source = KafkaSource(kafka, [topic], unique_name("g"), 2000, commit_timeout_s=1.0)
        await source.start()
        try:
            records: list[Any] = []
            async with asyncio.timeout(seconds(20)):
                while not records:
                    records = await source.fetch()
            proxy.cut()
            assert not await source.commit({(topic, 0): 1})  # put off within its timeout
            assert source.commit_failures == 1
            proxy.restore()

            async def committed() -> bool:  # retried like the workers do: with the next one
                return await source.commit({(topic, 0): 1})

            await until(committed, seconds(30), message="committed once Kafka is back")
        finally:
            proxy.restore()
            await source.stop()
