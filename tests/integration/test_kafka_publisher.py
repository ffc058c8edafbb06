"""The publisher against a real broker behind a TCP proxy: everything acknowledged, bounded
memory while Kafka is unreachable, and after an outage no record lost and none duplicated."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.producer import KafkaPublisher, OutRecord, PublishObserver
from pipeline.local.broker import LocalBroker
from pipeline.local.process import free_port
from tests.conftest import seconds
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


class Latencies(PublishObserver):
    def __init__(self) -> None:
        self.delivered: list[float] = []
        self.failed: list[str] = []

    def on_delivered(self, record: OutRecord, latency_s: float) -> None:
        self.delivered.append(latency_s)

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        self.failed.append(error)


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A private broker that advertises a proxy in front of it; yields (bootstrap, proxy)."""
    proxy_port = free_port()
    broker = LocalBroker(tmp_path, advertised_port=proxy_port)
    await asyncio.to_thread(broker.start)
    proxy = TcpProxy(broker.port, proxy_port)
    await proxy.start()
    try:
        yield f"127.0.0.1:{proxy_port}", proxy
    finally:
        await proxy.aclose()
        broker.stop()


def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + seconds(60)
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and (value := msg.value()) is not None:
                values.append(value)
            if len(values) >= expected and msg is None:
                break
    finally:
        consumer.close()
    return values


async def test_every_record_is_acknowledged(proxied: tuple[str, TcpProxy]) -> None:
    bootstrap, _ = proxied
    topic = "pub-all"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 3)])
    observer = Latencies()
    publisher = KafkaPublisher({"bootstrap.servers": bootstrap}, observer=observer)
    await publisher.start()
    for i in range(5000):
        await publisher.publish(OutRecord(topic, f"k{i % 50}".encode(), f"v{i}".encode()))
    assert await publisher.aclose() == 0
    assert publisher.delivered == 5000
    assert len(observer.delivered) == 5000
    values = await asyncio.to_thread(read_all, bootstrap, topic, 5000)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(5000))


async def test_outage_blocks_publishers_then_loses_and_duplicates_nothing(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, proxy = proxied
    topic = "pub-outage"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 3)])
    publisher = KafkaPublisher(
        {"bootstrap.servers": bootstrap, "linger.ms": 1, "reconnect.backoff.max.ms": 500},
        max_in_flight=200,
    )
    await publisher.start()
    for i in range(500):
        await publisher.publish(OutRecord(topic, b"k", f"v{i}".encode()))
    assert await publisher.flush() == 0

    proxy.cut()
    sent = 500

    async def publish_until_blocked() -> None:
        nonlocal sent
        while True:  # keep producing until the bound stops us
            await publisher.publish(OutRecord(topic, b"k", f"v{sent}".encode()))
            sent += 1

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(publish_until_blocked(), 3)
    assert publisher.in_flight == 200  # bounded: the caller waited instead of buffering
    proxy.restore()
    for i in range(sent, sent + 300):
        await publisher.publish(OutRecord(topic, b"k", f"v{i}".encode()))
    sent += 300
    assert await publisher.aclose(timeout_s=seconds(60)) == 0

    values = await asyncio.to_thread(read_all, bootstrap, topic, sent)
    counts = Counter(values)
    assert len(counts) == sent, "records lost"
    assert max(counts.values()) == 1, "records duplicated in the log"
    # one key, one partition: the log order is the publish order
    assert values == [f"v{i}".encode() for i in range(sent)]
