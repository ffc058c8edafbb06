"""Reading topics back the way a downstream team would: a plain confluent-kafka consumer with
AvroDeserializer and SchemaRegistryClient, no project code on the reading side."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.local.stack import Endpoints

# (key, partition, value, headers) of one record
Read = tuple[str | None, int, dict[str, Any], dict[str, bytes]]


def read_topic(
    endpoints: Endpoints,
    topic: str,
    partitions: int,
    idle_s: float = 2.0,
    max_s: float | None = None,
) -> list[Read]:
    """Every record of ``topic`` from the beginning, until it stays quiet for ``idle_s``.

    A topic that never stays quiet (a producer still writing to it) is read for at most
    ``max_s`` seconds, when given.
    """
    registry = SchemaRegistryClient({"url": endpoints.schema_registry_url})
    deserializer = AvroDeserializer(registry)
    consumer = Consumer(
        {"bootstrap.servers": endpoints.bootstrap_servers, "group.id": f"reader-{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
    out: list[Read] = []
    idle_since = started = time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_s:
            if max_s is not None and time.monotonic() - started >= max_s:
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            idle_since = time.monotonic()
            value = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
            key = msg.key()
            headers = dict(msg.headers() or [])
            out.append((key.decode() if key else None, msg.partition(), value, headers))
    finally:
        consumer.close()
        registry.close()
    return out
