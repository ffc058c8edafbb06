"""The publisher against a real broker behind a TCP proxy: everything acknowledged, bounded
memory while Kafka is unreachable, and after an outage no record lost and none duplicated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError

from pipeline.errors import RecordRejectedError
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.producer import KafkaPublisher, OutRecord, PublishObserver
from pipeline.local.process import free_port
from tests.conftest import seconds
from tests.polling import until
from tests.tcp_proxy import TcpProxy, proxied_local_broker

pytestmark = pytest.mark.integration


class Latencies(PublishObserver):
    def __init__(self) -> None:
        self.delivered = 0
        self.failed: list[str] = []

    def on_delivered(self, count: int) -> None:
        self.delivered += count

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        self.failed.append(error)


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A private broker that advertises a proxy in front of it; yields (bootstrap, proxy)."""
    async with proxied_local_broker(tmp_path) as (_, proxy):
        yield f"127.0.0.1:{proxy.listen_port}", proxy


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
    assert observer.delivered == 5000  # counted per poll, not per record
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


class RaisingOnce(PublishObserver):
    """An observer with a bug: its first delivery hook raises."""

    def __init__(self) -> None:
        self.calls = 0

    def on_delivered(self, count: int) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("observer bug")


async def test_publisher_keeps_serving_after_a_delivery_callback_raises(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, _ = proxied
    topic = "pub-callback-bug"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 1)])
    publisher = KafkaPublisher({"bootstrap.servers": bootstrap}, observer=RaisingOnce())
    await publisher.start()
    for i in range(20):
        await publisher.publish(OutRecord(topic, b"k", f"v{i}".encode()))
    # No flush: only the poll loop serves the callbacks, so it must survive the bug.
    await until(lambda: publisher.delivered == 20, seconds(20), message="every record acknowledged")
    assert publisher.callback_errors == 1
    assert await publisher.aclose() == 0


class KafkaErrors(PublishObserver):
    def __init__(self) -> None:
        self.errors: list[tuple[str, bool]] = []

    def on_kafka_error(self, code: str, error: str, fatal: bool) -> None:
        self.errors.append((code, fatal))


async def test_publisher_reports_unreachable_brokers_and_logs_them_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer = KafkaErrors()
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens: every connection is refused
    publisher = KafkaPublisher(
        {"bootstrap.servers": nobody, "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50},
        observer=observer,
        log_interval_s=3600,
    )
    caplog.set_level(logging.WARNING, logger="pipeline.kafka.producer")
    await publisher.start()
    await until(lambda: len(observer.errors) >= 3, seconds(20), message="several errors reported")
    assert not any(fatal for _, fatal in observer.errors)
    lines = [r for r in caplog.records if r.name == "pipeline.kafka.producer"]
    assert len({r.getMessage() for r in lines}) <= 2, "one line per error kind and interval"
    assert len(lines) <= 2
    await publisher.aclose(timeout_s=0.1)


class Failures(PublishObserver):
    def __init__(self) -> None:
        self.failed: list[tuple[str, bool]] = []
        self.rejected: list[str] = []

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        self.failed.append((error, retrying))

    def on_rejected(self, record: OutRecord, error: str) -> None:
        self.rejected.append(error)


async def test_outage_longer_than_the_delivery_timeout_loses_nothing(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, proxy = proxied
    topic = "pub-long-outage"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 1)])
    observer = Failures()
    publisher = KafkaPublisher(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 1,
            "delivery.timeout.ms": 1000,
            "reconnect.backoff.max.ms": 200,
        },
        max_in_flight=100,
        observer=observer,
        retry_backoff_s=(0.05, 0.2),
    )
    await publisher.start()
    for i in range(50):
        await publisher.publish(OutRecord(topic, b"k", f"v{i}".encode()))
    assert await publisher.flush() == 0
    proxy.cut()
    sent = 50
    for i in range(50, 150):  # fills the bound (100) and blocks for the rest of the outage
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                publisher.publish(OutRecord(topic, b"k", f"v{i}".encode())), 0.05
            )
            sent += 1
    # Stay cut for many delivery timeouts: every record fails again and again.
    await until(
        lambda: len(observer.failed) >= 6 * 100, seconds(30), message="six rounds of timeouts"
    )
    assert all(retrying for _, retrying in observer.failed), "a record was given up"
    assert observer.rejected == []
    assert publisher.in_flight == 100
    proxy.restore()
    assert await publisher.aclose(timeout_s=seconds(60)) == 0
    values = set(await asyncio.to_thread(read_all, bootstrap, topic, sent))
    assert values == {f"v{i}".encode() for i in range(sent)}, "records lost"


async def test_publisher_rejects_a_record_kafka_never_takes(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, _ = proxied
    topic = "pub-too-large"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 1)])
    publisher = KafkaPublisher({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000})
    await publisher.start()
    with pytest.raises(RecordRejectedError, match="pub-too-large") as caught:
        await publisher.publish(OutRecord(topic, b"k", b"x" * 20_000))
    assert caught.value.record.topic == topic
    await publisher.publish(OutRecord(topic, b"k", b"small"))
    assert await publisher.aclose() == 0
    assert publisher.in_flight == 0


class Replaced(PublishObserver):
    def __init__(self) -> None:
        self.replaced: list[int] = []

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        self.replaced.append(resent)


async def test_replaced_producer_hands_every_unacknowledged_record_to_the_new_one(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, proxy = proxied
    topic = "pub-replaced"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 1)])
    observer = Replaced()
    publisher = KafkaPublisher(
        {"bootstrap.servers": bootstrap, "linger.ms": 1, "reconnect.backoff.max.ms": 200},
        observer=observer,
    )
    await publisher.start()
    await publisher.publish(OutRecord(topic, b"k", b"v0"))
    assert await publisher.flush() == 0
    proxy.cut()
    for i in range(1, 101):  # held by librdkafka: nothing reaches the broker
        await publisher.publish(OutRecord(topic, b"k", f"v{i}".encode(), [("h", b"x")]))
    assert publisher.in_flight == 100
    # librdkafka reports a fatal error: the publisher replaces the producer, and the records
    # the old one held come back in its purge reports and go to the new one.
    publisher._on_error(KafkaError(KafkaError.UNKNOWN_PRODUCER_ID, "fatal", fatal=True))
    await until(lambda: observer.replaced != [], seconds(10), message="the producer replaced")
    assert observer.replaced == [100]
    assert publisher.in_flight == 100
    proxy.restore()
    assert await publisher.aclose(timeout_s=seconds(60)) == 0
    values = await asyncio.to_thread(read_all, bootstrap, topic, 101)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(101))


class Sampled(PublishObserver):
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.delivered = 0

    def on_delivered(self, count: int) -> None:
        self.delivered += count

    def on_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)


async def test_one_frame_in_n_is_timed_from_its_receipt_to_its_acknowledgement(
    proxied: tuple[str, TcpProxy],
) -> None:
    bootstrap, _ = proxied
    topic = "pub-sampled"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(topic, 1)])
    observer = Sampled()
    publisher = KafkaPublisher({"bootstrap.servers": bootstrap}, observer=observer, sample_every=4)
    await publisher.start()
    received = time.time() - 1.0  # the frames waited a second before they were published
    for frame in range(12):
        records = [OutRecord(topic, b"k", f"f{frame}r{i}".encode()) for i in range(3)]
        await publisher.publish_many(records, received)
    await publisher.publish_many([OutRecord(topic, b"k", b"no receive time")])
    assert await publisher.aclose() == 0
    assert observer.delivered == 37
    assert len(observer.latencies) == 3  # frames 4, 8 and 12
    assert all(1.0 <= s < 1.0 + seconds(30) for s in observer.latencies)
