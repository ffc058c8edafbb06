"""Helpers of the TLS and SASL tests: a private broker advertising a front end's port, a
produce-and-read round trip with both clients, and the fast-refusal check."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.connection import check_connection
from pipeline.kafka.consumer import KafkaSource
from pipeline.kafka.producer import KafkaPublisher, OutRecord
from pipeline.kafka.security import librdkafka_config
from pipeline.local.broker import LocalBroker
from pipeline.local.process import free_port
from pipeline.settings import KafkaSettings
from tests.conftest import seconds

__all__ = ["advertised_broker", "refused_by_both", "round_trip"]


@contextmanager
def advertised_broker(workdir: Path) -> Iterator[tuple[int, int]]:
    """A private broker advertising 127.0.0.1:<front>; yields (broker port, front port).

    Whatever listens on the front port (a TLS proxy, a SASL front end) sees every
    connection, the ones after the first metadata answer included.
    """
    front = free_port()
    broker = LocalBroker(workdir, advertised_port=front)
    broker.start()
    try:
        yield broker.port, front
    finally:
        broker.stop()


async def round_trip(kafka: KafkaSettings) -> None:
    """Create a topic, produce a record with librdkafka, read it back with aiokafka."""
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(ensure_topics, librdkafka_config(kafka), [TopicSpec(topic, 1)])
    publisher = KafkaPublisher(librdkafka_config(kafka, producer=True))
    await publisher.start()
    await publisher.publish(OutRecord(topic, b"k", b"secured"))
    assert await publisher.flush() == 0
    assert publisher.delivered == 1
    await publisher.aclose()
    source = KafkaSource(kafka, [topic], f"g-{topic}", 2000)
    await source.start()
    try:
        values: list[bytes | None] = []
        async with asyncio.timeout(seconds(30)):
            while not values:
                values = [record.value for record in await source.fetch()]
        assert values == [b"secured"]
    finally:
        await source.stop()


async def refused_by_both(kafka: KafkaSettings, expected: str) -> list[str]:
    """librdkafka's start-up check and aiokafka's start both fail within seconds, on one
    line each; returns the two messages."""
    started = time.monotonic()
    with pytest.raises(ConfigError, match=expected) as producer_error:
        await asyncio.to_thread(check_connection, librdkafka_config(kafka))
    source = KafkaSource(kafka, ["any"], "g", 2000)
    with pytest.raises(ConfigError, match=expected) as worker_error:
        await source.start()
    assert time.monotonic() - started < seconds(8)
    texts = [str(producer_error.value), str(worker_error.value)]
    for text in texts:
        assert "\n" not in text
        assert text.startswith(f"Kafka at {kafka.bootstrap_servers} refused the connection: ")
    return texts
