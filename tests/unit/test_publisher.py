"""The publisher without a broker: a dead poll loop is never silent."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.errors import PublishError
from pipeline.kafka import producer as producer_module
from pipeline.kafka.producer import KafkaPublisher, OutRecord, PublishObserver
from pipeline.local.process import free_port
from tests.conftest import seconds
from tests.polling import until


class Replacements(PublishObserver):
    def __init__(self) -> None:
        self.errors: list[tuple[str, bool]] = []

    def on_kafka_error(self, code: str, error: str, fatal: bool) -> None:
        self.errors.append((code, fatal))


async def test_publisher_surfaces_a_poll_loop_that_died(monkeypatch: pytest.MonkeyPatch) -> None:
    observer = Replacements()
    publisher = KafkaPublisher({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, observer=observer)
    await publisher.start()

    def no_producer(config: object) -> None:
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "cannot build a producer"))

    monkeypatch.setattr(producer_module, "Producer", no_producer)
    # librdkafka reports a fatal error: the poll loop tries to replace the producer and cannot.
    publisher._on_error(KafkaError(KafkaError.UNKNOWN_PRODUCER_ID, "fatal", fatal=True))
    cause = await publisher.wait_failed()
    assert "cannot build a producer" in repr(cause)
    assert ("UNKNOWN_PRODUCER_ID", True) in observer.errors
    with pytest.raises(PublishError, match="the Kafka publisher stopped"):
        await publisher.publish(OutRecord("t", b"k", b"v"))
    await publisher.aclose(timeout_s=0.1)


async def test_in_flight_counts_records_not_librdkafka_events() -> None:
    nobody = f"127.0.0.1:{free_port()}"  # connections refused: librdkafka queues error events
    publisher = KafkaPublisher(
        {"bootstrap.servers": nobody, "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50}
    )  # not started: nothing serves the events, so they stay in librdkafka's queue
    await until(lambda: len(publisher._producer) > 0, seconds(10), message="an event queued")
    assert publisher.in_flight == 0
    assert await publisher.aclose(timeout_s=5) == 0
