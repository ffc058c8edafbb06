"""Producer metrics that read the sessions: refused topics (§5.6), channel states and
degradation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.core.genesys.session import SessionState
from pipeline.core.subscription.spec import load_spec
from pipeline.services.demo import EXAMPLE
from pipeline.services.producer import ProducerConfig, ProducerService
from pipeline.services.producer_facts import FactQueue, ProducerHooks
from pipeline.services.producer_health import ProducerHealth
from pipeline.services.producer_metrics import ProducerMetrics
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings


def _config() -> ProducerConfig:
    """A complete configuration; nothing connects while the service is only constructed."""
    return ProducerConfig(
        load_spec(EXAMPLE),
        GenesysSettings(client_id="c", client_secret=SecretStr("s"), api_url="http://127.0.0.1:1"),
        KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        RegistrySettings(url="http://127.0.0.1:1"),
        ProducerSettings(),
    )


def test_topics_rejected_gauge_sums_every_channels_refused_topics() -> None:
    service = ProducerService(_config())
    sample = lambda: service.metrics.registry.get_sample_value("genesys_pipeline_topics_rejected")  # noqa: E731
    assert sample() == 0.0
    refused = (RejectedTopic("v2.analytics.queues.q1.observations"), RejectedTopic("t2"))
    streams: list[Any] = [
        SimpleNamespace(session=SimpleNamespace(rejected_topics=refused)),
        SimpleNamespace(session=SimpleNamespace(rejected_topics=())),
    ]
    service._streams = streams
    assert sample() == 2.0


def _health(clock: list[float]) -> tuple[ProducerHealth, ProducerMetrics, ProducerHooks, FactQueue]:
    metrics = ProducerMetrics()
    facts = FactQueue(100, metrics)
    hooks = ProducerHooks(metrics, facts)
    return ProducerHealth(metrics, hooks, facts, clock=lambda: clock[0]), metrics, hooks, facts


def _streams(*states: SessionState) -> list[Any]:
    return [SimpleNamespace(session=SimpleNamespace(state=state)) for state in states]


def test_a_channel_not_live_past_the_hold_time_is_genesys_degradation() -> None:
    clock = [0.0]
    health, metrics, _, facts = _health(clock)
    sample = metrics.registry.get_sample_value
    assert health.observe(_streams(SessionState.LIVE, SessionState.CONNECTING), None) == []
    name = "genesys_pipeline_channel_state"
    assert sample(name, {"channel": "1", name: "connecting"}) == 1.0
    assert sample("genesys_pipeline_channels_live") == 1.0
    clock[0] = 6.0
    changes = health.observe(_streams(SessionState.LIVE, SessionState.WAITING), None)
    assert changes == [("genesys", True, "channel 1 waiting")]
    assert sample("genesys_pipeline_degraded", {"reason": "genesys"}) == 1.0
    for reason, degraded, detail in changes:
        health.report(reason, degraded, detail)
    fact = facts.get_nowait()
    assert isinstance(fact, AuditEvent)
    assert fact.kind is AuditKind.SERVICE_DEGRADED
    assert fact.details == {"reason": "genesys", "detail": "channel 1 waiting"}
    clock[0] = 7.0
    assert health.observe(_streams(SessionState.LIVE, SessionState.LIVE), None) == [
        ("genesys", False, "2 channels live")
    ]


def test_kafka_is_degraded_from_a_failed_delivery_until_the_next_acknowledgement() -> None:
    clock = [0.0]
    health, _, hooks, _ = _health(clock)
    record: Any = SimpleNamespace(topic="genesys.metrics")
    hooks.on_failed(record, "Local: Message timed out", retrying=True)
    assert health.observe([], None) == []
    clock[0] = 5.0
    assert health.observe([], None) == [
        ("kafka", True, "delivery failed: Local: Message timed out")
    ]
    hooks.on_delivered(1)
    assert health.observe([], None) == [("kafka", False, "Kafka acknowledges")]
    hooks.on_kafka_error("_TRANSPORT", "disconnected", fatal=False)  # librdkafka reconnects
    assert hooks.kafka_trouble is None
    hooks.on_kafka_error("_ALL_BROKERS_DOWN", "all brokers down", fatal=False)
    assert hooks.kafka_trouble == "_ALL_BROKERS_DOWN: all brokers down"
