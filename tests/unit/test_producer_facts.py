"""The producer's own facts: a bounded queue that counts and summarises what does not fit,
and failed deliveries summarised per topic and interval."""

from __future__ import annotations

from pipeline.core.audit import AuditEvent, AuditKind, check_details
from pipeline.core.genesys.events import DeadLetter
from pipeline.kafka.producer import OutRecord
from pipeline.services.producer_facts import FactQueue, ProducerHooks
from pipeline.services.producer_metrics import ProducerMetrics


def drain(facts: FactQueue) -> list[object]:
    out: list[object] = []
    while (event := facts.get_nowait()) is not None:
        out.append(event)
    return out


def test_fact_queue_counts_what_does_not_fit_and_summarises_it_once_there_is_room() -> None:
    metrics = ProducerMetrics()
    facts = FactQueue(3, metrics, clock=lambda: 1000.0)
    for _ in range(5):
        facts.fact(AuditKind.THROTTLED, path="/p", wait_s=1.0)
    facts.fact(AuditKind.TOKEN_ISSUED, expires_in=10.0)  # never blocks, whatever the queue holds
    assert facts.suppressed == 3
    assert metrics.audit_suppressed.labels("throttled")._value.get() == 2
    events = drain(facts)
    # The summary goes out as soon as a fact left room for it.
    assert [e.kind for e in events if isinstance(e, AuditEvent)] == [
        AuditKind.THROTTLED, AuditKind.AUDIT_SUPPRESSED, AuditKind.THROTTLED, AuditKind.THROTTLED,
    ]  # fmt: skip
    summary = events[1]
    assert isinstance(summary, AuditEvent)
    assert summary.details == {"facts": 3, "kinds": ["throttled=2", "token.issued=1"]}
    assert check_details(summary.kind, summary.details) == []
    assert facts.suppressed == 0
    assert drain(facts) == []


async def test_fact_queue_hands_out_the_summary_first_when_waiting() -> None:
    facts = FactQueue(1, ProducerMetrics())
    facts.fact(AuditKind.TOKEN_ISSUED, expires_in=1.0)
    facts.fact(AuditKind.TOKEN_ISSUED, expires_in=1.0)
    first = await facts.get()
    assert isinstance(first, AuditEvent)
    assert first.kind is AuditKind.TOKEN_ISSUED  # no room for the summary while full
    second = await facts.get()
    assert isinstance(second, AuditEvent)
    assert second.kind is AuditKind.AUDIT_SUPPRESSED


def test_failed_deliveries_are_one_fact_per_topic_and_interval() -> None:
    now = [0.0]
    metrics = ProducerMetrics()
    facts = FactQueue(100, metrics)
    hooks = ProducerHooks(metrics, facts, summary_s=60.0, clock=lambda: now[0])
    record = OutRecord("genesys.metrics", b"k", b"v")
    for i in range(1000):
        now[0] = i * 0.01  # 10 s of failures
        hooks.on_failed(record, "Local: Message timed out", True)
    now[0] = 61.0
    hooks.on_failed(record, "Local: Message timed out", True)
    events = [e for e in drain(facts) if isinstance(e, AuditEvent)]
    assert [e.details["records"] for e in events] == [1, 1000]
    assert metrics.delivery_failures._value.get() == 1001


def test_a_record_kafka_refuses_becomes_a_dead_letter() -> None:
    facts = FactQueue(10, ProducerMetrics())
    ProducerHooks(ProducerMetrics(), facts).on_rejected(OutRecord("t", b"k", b"x" * 10), "too big")
    (dead,) = drain(facts)
    assert isinstance(dead, DeadLetter)
    assert (dead.stage, dead.raw) == ("publish", b"x" * 10)
    assert "too big" in dead.reason


def test_acknowledgements_are_counted_per_poll_and_sampled_latency_observed() -> None:
    metrics = ProducerMetrics()
    hooks = ProducerHooks(metrics, FactQueue(4, metrics))
    hooks.on_delivered(120)
    hooks.on_delivered(80)
    hooks.on_latency(0.004)
    registry = metrics.registry
    assert registry.get_sample_value("genesys_pipeline_records_delivered_total") == 200
    assert registry.get_sample_value("genesys_pipeline_frame_ack_latency_seconds_count") == 1
    bucket = "genesys_pipeline_frame_ack_latency_seconds_bucket"
    assert registry.get_sample_value(bucket, {"le": "0.005"}) == 1
    assert registry.get_sample_value(bucket, {"le": "0.003"}) == 0
