"""A round-trip through the local broker and registry: the proof that both are real.

Registers an Avro schema, produces keyed records in Confluent wire format with an idempotent
producer, and reads them back with a deserializer built from a separate registry client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.errors import InfrastructureError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.local.stack import Endpoints

__all__ = ["SMOKE_SCHEMA", "SmokeResult", "run_smoke"]

SMOKE_SCHEMA = """{
  "type": "record", "name": "SmokeRecord", "namespace": "pipeline.smoke",
  "doc": "A record that only proves the local infrastructure works.",
  "fields": [
    {"name": "key", "type": "string"},
    {"name": "seq", "type": "long"},
    {"name": "sent_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}"""


@dataclass(frozen=True, slots=True)
class SmokeResult:
    """What the round-trip did."""

    topic: str
    produced: int
    consumed: int
    schema_id: int
    seconds: float


def run_smoke(endpoints: Endpoints, topic: str = "pipeline.smoke", count: int = 100) -> SmokeResult:
    """Produce ``count`` Avro records to ``topic`` and read them all back.

    Raises:
        InfrastructureError: a record was lost, or the broker/registry misbehaved.
    """
    started = time.monotonic()
    ensure_topics(endpoints.bootstrap_servers, [TopicSpec(topic, partitions=3)])
    with SchemaRegistryClient({"url": endpoints.schema_registry_url}) as registry:
        _produce(endpoints, registry, topic, count)
    with SchemaRegistryClient({"url": endpoints.schema_registry_url}) as registry:
        consumed, schema_id = _read_back(endpoints, registry, topic, count)
    if consumed < count:
        raise InfrastructureError(f"smoke: produced {count} records, read back {consumed}")
    return SmokeResult(topic, count, consumed, schema_id, time.monotonic() - started)


def _produce(endpoints: Endpoints, registry: SchemaRegistryClient, topic: str, count: int) -> None:
    serializer = AvroSerializer(
        registry, SMOKE_SCHEMA, conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )
    now_ms = int(time.time() * 1000)
    for seq in range(count):
        key = f"entity-{seq % 10}"
        value = serializer({"key": key, "seq": seq, "sent_at": now_ms}, ctx)
        producer.produce(topic, key=key.encode(), value=value)
    if producer.flush(15) != 0:
        raise InfrastructureError(f"smoke: {len(producer)} records not acknowledged")


def _read_back(
    endpoints: Endpoints, registry: SchemaRegistryClient, topic: str, count: int
) -> tuple[int, int]:
    deserializer = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "group.id": "pipeline-smoke",
            "enable.auto.commit": False,
        }
    )
    # Assign explicitly: no group join (slow on Tansu) and no dependence on "latest" offsets.
    consumer.assign([TopicPartition(topic, p, -2) for p in range(3)])  # -2 = OFFSET_BEGINNING
    seen: set[int] = set()
    schema_id = -1
    deadline = time.monotonic() + 20
    try:
        while len(seen) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            raw = msg.value()
            if raw is None:
                continue
            schema_id = int.from_bytes(raw[1:5], "big")
            record = deserializer(raw, ctx)
            seen.add(record["seq"])
    finally:
        consumer.close()
    return len(seen), schema_id
