"""The record filter (metrics and media a subscription asked for) and the outbox framing."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro

from pipeline.core.contract.records import DeadLetterRecord, MetricRecord
from pipeline.core.contract.table import TableChange, table_key
from pipeline.core.contract.wire import split_confluent
from pipeline.core.genesys.topics import TopicName
from pipeline.core.subscription.planner import PlannedTopic
from pipeline.core.subscription.selection import record_filter
from pipeline.core.subscription.spec import parse_spec
from pipeline.core.workers.latency import freshness_report
from pipeline.kafka.outbox import CE_TYPES, KafkaOrigin, Outbox
from pipeline.kafka.schemas import load_schema
from tests.records import QUEUE_ID as Q, QUEUE_TOPIC as TOPIC, metric_record

SPEC = f"""
subscriptions:
  - name: narrow
    queues: [{{id: {Q}}}]
    metrics: [oWaiting, avgHandleTime]
    media_types: [voice]
"""


def record(metric: str, **changes: object) -> MetricRecord:
    return metric_record(metric=metric, **changes)


def topics(*subscriptions: str) -> list[PlannedTopic]:
    return [
        PlannedTopic(
            TopicName(TOPIC), "v2.analytics.queues.{id}.observations", "queue", Q, subscriptions
        )
    ]


def test_filter_keeps_named_metrics_and_media_only() -> None:
    keep = record_filter(parse_spec(SPEC), topics("narrow")).keep
    assert keep(record("oWaiting"))
    assert keep(record("tHandle", unit="ms"))  # avgHandleTime → tHandle
    assert not keep(record("oInteracting"))
    assert not keep(record("oWaiting", media_type="chat"))
    assert keep(record("oWaiting", media_type=None))  # the agent-state group: no media, passes


def test_filter_keeps_kpis_whose_inputs_were_named_and_states() -> None:
    keep = record_filter(parse_spec(SPEC), topics("narrow")).keep
    assert keep(record("averageHandleTimeMs", derived=True, unit="ms"))
    assert not keep(record("serviceLevelPercent", derived=True, unit="percent"))
    assert keep(record("presence", unit="state", value=None))


def test_filter_keeps_everything_for_unplanned_topics_or_no_metric_list() -> None:
    everything = parse_spec(f"subscriptions:\n  - name: all\n    queues: [{{id: {Q}}}]\n")
    assert record_filter(everything, topics("all")).keep(record("oInteracting", media_type="chat"))
    assert record_filter(parse_spec(SPEC), []).keep(record("oInteracting"))


def test_outbox_frames_values_and_headers() -> None:
    outbox = Outbox(
        "genesys",
        {"genesys.metrics": 7, "genesys.current.v2": 7, "genesys.audit": 8, "genesys.dlq": 9},
        "producer-0",
    )
    metric = record("oWaiting")
    to_metrics = outbox.metric(metric)
    to_current = outbox.current(TableChange(table_key(metric), metric, metric.source_topic, 5))
    assert to_metrics.topic == "genesys.metrics"
    assert to_metrics.key == Q.encode()
    assert to_current.topic == "genesys.current.v2"
    assert to_current.key == f"queue|{Q}|oWaiting||voice".encode()
    assert to_current.value == to_metrics.value
    assert to_current.headers == to_metrics.headers
    assert to_metrics.value is not None
    schema_id, body = split_confluent(to_metrics.value)
    assert schema_id == 7
    decoded = fastavro.schemaless_reader(
        io.BytesIO(body), fastavro.parse_schema(load_schema("metric"))
    )
    assert decoded["metric"] == "oWaiting"
    assert decoded["count"] == 3
    headers = dict(to_metrics.headers)
    assert headers["ce_id"] == b"e1"
    assert headers["ce_time"] == b"2023-11-14T22:13:20.000Z"
    assert headers["ce_source"] == b"urn:genesys-kafka-pipeline:producer-0"
    assert headers["ce_dataschema"] == b"urn:genesys-kafka-pipeline:schema:metric:v2"


def test_outbox_writes_a_tombstone_without_data_headers() -> None:
    outbox = Outbox("genesys", {"genesys.current.v2": 7}, "producer-0")
    key = f"queue|{Q}|member|u1|"
    out = outbox.current(TableChange(key, None, f"v2.routing.queues.{Q}.users", 5, "t1"))
    assert (out.topic, out.key, out.value) == ("genesys.current.v2", key.encode(), None)
    headers = dict(out.headers)
    assert headers["ce_type"] == CE_TYPES["deleted"]
    assert headers["ce_id"] == b"t1"
    assert headers["ce_time"] == b"1970-01-01T00:00:00.005Z"
    assert "ce_dataschema" not in headers
    assert "content-type" not in headers


def test_outbox_encodes_once_for_both_topics() -> None:
    outbox = Outbox("genesys", {"genesys.metrics": 7, "genesys.current.v2": 8}, "p")
    metric = record("oWaiting")
    change = TableChange(table_key(metric), metric, metric.source_topic, 5)
    to_metrics, to_current = outbox.metric_records([metric], [b"BODY"], [change])
    assert to_metrics.value == b"\x00\x00\x00\x00\x07BODY"
    assert to_current.value == b"\x00\x00\x00\x00\x08BODY"


def test_outbox_frames_freshness_reports_like_every_record() -> None:
    outbox = Outbox("genesys", {"genesys.freshness": 11}, "freshness-0")
    report = freshness_report(
        "freshness-0", (1_700_000_000_000, 1_700_000_060_000), ("end_to_end", "kpi", "queue"), None
    )
    out = outbox.freshness(report)
    assert (out.topic, out.key) == ("genesys.freshness", b"end_to_end|kpi|queue")
    assert out.value is not None
    schema_id, body = split_confluent(out.value)
    assert schema_id == 11
    reader = fastavro.parse_schema(load_schema("freshness"))
    assert fastavro.schemaless_reader(io.BytesIO(body), reader)["event_id"] == report.event_id
    assert list(out.headers) == [
        ("ce_specversion", b"1.0"),
        ("ce_id", report.event_id.encode()),
        ("ce_source", b"urn:genesys-kafka-pipeline:freshness-0"),
        ("ce_type", CE_TYPES["freshness"]),
        ("ce_time", b"2023-11-14T22:14:20.000Z"),
        ("ce_subject", b"end_to_end|kpi|queue"),
        ("ce_dataschema", b"urn:genesys-kafka-pipeline:schema:freshness:v1"),
        ("content-type", b"application/avro"),
    ]
    assert CE_TYPES["freshness"] == b"io.github.genesys_kafka_pipeline.freshness.v1"


def test_every_ce_type_is_documented() -> None:
    contract = (Path(__file__).resolve().parents[2] / "docs" / "kafka-contract.md").read_text()
    for name, ce_type in CE_TYPES.items():
        assert f"`{ce_type.decode()}`" in contract, name


def _dead(source_topic: str | None) -> DeadLetterRecord:
    return DeadLetterRecord("d1", b"raw", source_topic, "bad body", "map", 5, "p-0")


def test_genesys_dead_letter_has_pipeline_headers_not_connects() -> None:
    outbox = Outbox("genesys", {"genesys.dlq": 9}, "producer-0")
    headers = dict(outbox.dead_letter(_dead(f"v2.users.{Q}.presence")).headers)
    assert headers["pipeline.errors.genesys.topic"] == f"v2.users.{Q}.presence".encode()
    assert headers["pipeline.errors.stage"] == b"map"
    assert headers["pipeline.errors.reason"] == b"bad body"
    assert headers["ce_dataschema"] == b"urn:genesys-kafka-pipeline:schema:dead_letter:v1"
    assert not [name for name in headers if name.startswith("__connect.")]
    assert "pipeline.errors.genesys.topic" not in dict(outbox.dead_letter(_dead(None)).headers)


def test_kafka_record_dead_letter_has_connects_headers() -> None:
    outbox = Outbox("genesys", {"genesys.dlq": 9}, "worker-0")
    origin = KafkaOrigin("genesys.metrics", 2, 41)
    headers = dict(outbox.dead_letter(_dead(None), origin).headers)
    assert headers["__connect.errors.topic"] == b"genesys.metrics"
    assert headers["__connect.errors.partition"] == b"2"
    assert headers["__connect.errors.offset"] == b"41"
    assert headers["__connect.errors.exception.message"] == b"bad body"
    assert headers["pipeline.errors.stage"] == b"map"
