"""The local infrastructure is real: partitions, idempotent keyed produce, two consumer-group
clients, Java-compatible partitioning and Confluent wire format through a schema registry."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.core.contract.partition import partition_for_key
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.local.stack import Endpoints
from tests.conftest import seconds

pytestmark = pytest.mark.integration

RECORDS = 10_000
KEYS = 97
PARTITIONS = 3

# (key, seq, partition) as each consumer saw them
Seen = list[tuple[str, int, int]]


@pytest.fixture(scope="module")
def keyed_topic(endpoints: Endpoints) -> str:
    """A 3-partition topic holding 10k keyed records, produced idempotently."""
    topic = f"infra-keyed-{int(time.time() * 1000)}"
    created = ensure_topics(endpoints.bootstrap_servers, [TopicSpec(topic, PARTITIONS)])
    assert created == [topic]
    producer = Producer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
        }
    )
    failures: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for i in range(RECORDS):
        key = f"queue-{i % KEYS}"
        producer.produce(topic, key=key, value=str(i // KEYS).encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(seconds(30)) == 0
    assert failures == []
    return topic


def check_seen(seen: Seen) -> None:
    """Every record once, per-key order kept, each key on Java's murmur2 partition."""
    assert len(seen) == RECORDS
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, seq, partition in seen:
        assert partition == partition_for_key(key.encode(), PARTITIONS), key
        by_key[key].append(seq)
    assert len(by_key) == KEYS
    for key, seqs in by_key.items():
        assert seqs == list(range(len(seqs))), f"order broken for {key}"


def test_topic_has_three_partitions(endpoints: Endpoints, keyed_topic: str) -> None:
    metadata = AdminClient({"bootstrap.servers": endpoints.bootstrap_servers}).list_topics(
        keyed_topic, timeout=seconds(10)
    )
    assert len(metadata.topics[keyed_topic].partitions) == PARTITIONS


def test_confluent_consumer_group_reads_all_in_key_order(
    endpoints: Endpoints,
    keyed_topic: str,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "group.id": unique_name("confluent-group"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **group_timeouts,
        }
    )
    consumer.subscribe([keyed_topic])
    seen: Seen = []
    deadline = time.monotonic() + seconds(60)
    try:
        while len(seen) < RECORDS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key, value = msg.key(), msg.value()
            assert key is not None
            assert value is not None
            seen.append((key.decode(), int(value), msg.partition()))
    finally:
        consumer.close()
    check_seen(seen)


async def test_aiokafka_consumer_group_reads_all_in_key_order(
    endpoints: Endpoints,
    keyed_topic: str,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    consumer = AIOKafkaConsumer(
        keyed_topic,
        bootstrap_servers=endpoints.bootstrap_servers,
        group_id=unique_name("aiokafka-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=group_timeouts["session.timeout.ms"],
        heartbeat_interval_ms=group_timeouts["heartbeat.interval.ms"],
    )
    await consumer.start()
    seen: Seen = []
    try:
        async with asyncio.timeout(seconds(60)):
            while len(seen) < RECORDS:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for msg in messages:
                        assert msg.key is not None
                        assert msg.value is not None
                        seen.append((msg.key.decode(), int(msg.value), tp.partition))
    finally:
        await consumer.stop()
    check_seen(seen)


AVRO_SCHEMA = """{
  "type": "record", "name": "InfraCheck", "namespace": "pipeline.test",
  "fields": [
    {"name": "entity_id", "type": "string"},
    {"name": "value", "type": ["null", "double"], "default": null},
    {"name": "label", "type": "string"}
  ]
}"""


def test_avro_round_trip_in_confluent_wire_format(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("infra-avro")
    ensure_topics(endpoints.bootstrap_servers, [TopicSpec(topic, PARTITIONS)])
    registry = SchemaRegistryClient({"url": endpoints.schema_registry_url})
    reader_registry = SchemaRegistryClient({"url": endpoints.schema_registry_url})
    try:
        _round_trip(endpoints, registry, reader_registry, group_timeouts, topic)
    finally:
        registry.close()
        reader_registry.close()


def _round_trip(
    endpoints: Endpoints,
    registry: SchemaRegistryClient,
    reader_registry: SchemaRegistryClient,
    group_timeouts: dict[str, int],
    topic: str,
) -> None:
    schema_id = registry.register_schema(f"{topic}-value", Schema(AVRO_SCHEMA, "AVRO"))
    serializer = AvroSerializer(
        registry,
        AVRO_SCHEMA,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": topic_subject_name_strategy,
        },
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = [
        {"entity_id": "q-1", "value": 0.25, "label": "Ünïcødé ✓"},
        {"entity_id": "q-2", "value": None, "label": ""},
    ]
    producer = Producer({"bootstrap.servers": endpoints.bootstrap_servers, "acks": "all"})
    for record in records:
        producer.produce(topic, key=record["entity_id"], value=serializer(record, ctx))
    assert producer.flush(seconds(15)) == 0

    # A second, independent registry client: ids resolve through the server, not a cache.
    deserializer = AvroDeserializer(reader_registry)
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "group.id": f"{topic}-group",
            "auto.offset.reset": "earliest",
            **group_timeouts,
        }
    )
    consumer.subscribe([topic])
    got: list[dict[str, object]] = []
    deadline = time.monotonic() + seconds(30)
    try:
        while len(got) < len(records) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None
            raw = msg.value()
            assert raw is not None
            assert raw[0] == 0
            assert int.from_bytes(raw[1:5], "big") == schema_id
            got.append(deserializer(raw, ctx))
    finally:
        consumer.close()
    assert sorted(got, key=lambda r: str(r["entity_id"])) == records
