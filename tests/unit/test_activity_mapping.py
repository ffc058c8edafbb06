"""The queue activity topic maps to flat records (docs/genesys-api.md §6.3, §6.8).

Before issue 13 every ``v2.analytics.queues.{id}.activity`` frame was a dead letter ("no mapping
for topic family"); these tests feed real-shaped bodies (the SDK's
``V2QueueObservationObservationCountNotification``) and check the records.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.core.contract.mapping import MappingError, map_event
from pipeline.core.contract.records import MetricRecord
from pipeline.core.genesys.frames import TopicEvent, parse_frame
from pipeline.core.genesys.topics import TopicName
from pipeline.core.subscription.planner import PlannedTopic
from pipeline.core.subscription.selection import record_filter
from pipeline.core.subscription.spec import parse_spec
from tests.unit.test_mapping import metric_event_id

Q = "8f7e2c1a-0000-4000-8000-000000000001"
TOPIC = f"v2.analytics.queues.{Q}.activity"
INGEST = 1_735_552_000_000
OLDEST = INGEST - 95_000  # the longest waiting customer entered 95 s before the frame
BODY: dict[str, Any] = {
    "results": [
        {"mediaType": "voice", "data": [
            {"metric": "oWaiting", "count": 3},
            {"metric": "oInteracting", "count": 7},
            {"metric": "oAlerting", "count": 1},
            {"metric": "oFlow", "count": 2},
            {"metric": "oLongestWaiting", "count": 1, "calculatedMetricValue": OLDEST},
            {"metric": "oLongestInteracting", "count": 0},
        ]},
        {"mediaType": "chat", "data": [{"metric": "oWaiting", "count": 0}]},
    ]
}  # fmt: skip


def frame(body: Any, topic: str = TOPIC) -> TopicEvent:
    doc = {"topicName": topic, "version": "2", "eventBody": body,
           "metadata": {"CorrelationId": "corr-a"}}  # fmt: skip
    event = parse_frame(orjson.dumps(doc))
    assert isinstance(event, TopicEvent)
    return event


def run(body: Any) -> list[MetricRecord]:
    return map_event(frame(body), ingest_ms=INGEST, instance="p0")


def test_each_data_entry_becomes_one_queue_record_per_media_type() -> None:
    records = run(BODY)
    assert [(r.media_type, r.metric, r.count) for r in records] == [
        ("voice", "oWaiting", 3), ("voice", "oInteracting", 7), ("voice", "oAlerting", 1),
        ("voice", "oFlow", 2), ("voice", "oLongestWaiting", 1),
        ("voice", "oLongestInteracting", 0), ("chat", "oWaiting", 0),
    ]  # fmt: skip
    for rec in records:
        assert (rec.entity_type, rec.entity_id, rec.source_topic) == ("queue", Q, TOPIC)
        assert rec.qualifier is None
        assert rec.interval_start is rec.interval_end is None
        assert (rec.event_time, rec.ingest_time) == (INGEST, INGEST)  # the body has no time
        assert (rec.correlation_id, rec.producer_instance, rec.backfill) == ("corr-a", "p0", False)
        assert (rec.sum, rec.min, rec.max, rec.ratio) == (None, None, None, None)
        assert rec.schema_version == 2
        assert rec.event_id == metric_event_id(rec)


def test_counts_are_values_and_longest_is_an_age_from_the_start_time() -> None:
    by = {(r.media_type, r.metric): r for r in run(BODY)}
    assert (by["voice", "oWaiting"].value, by["voice", "oWaiting"].unit) == (3.0, "count")
    assert (by["voice", "oFlow"].value, by["voice", "oFlow"].unit) == (2.0, "count")
    longest = by["voice", "oLongestWaiting"]
    assert (longest.value, longest.unit) == (95_000.0, "ms")
    assert longest.calculated_metric_value == OLDEST  # what Genesys sent, kept
    nobody = by["voice", "oLongestInteracting"]
    assert (nobody.value, nobody.unit, nobody.calculated_metric_value) == (None, "ms", None)


def test_sdk_style_floats_are_read_as_whole_numbers() -> None:
    oldest = {"metric": "oLongestWaiting", "count": 1.0, "calculatedMetricValue": float(OLDEST)}
    body = {"results": [{"mediaType": "email", "data": [{"metric": "oWaiting", "count": 4.0},
                                                       oldest]}]}  # fmt: skip
    waiting, longest = run(body)
    assert (waiting.count, type(waiting.count)) == (4, int)
    assert longest.calculated_metric_value == OLDEST
    assert type(longest.calculated_metric_value) is int


def test_an_empty_body_gives_no_records() -> None:
    assert run({"results": []}) == []
    assert run({"results": [{"mediaType": "voice", "data": []}]}) == []


def test_the_same_counts_a_second_later_are_a_new_fact() -> None:
    first = map_event(frame(BODY), ingest_ms=INGEST, instance="p0")
    again = map_event(frame(BODY), ingest_ms=INGEST, instance="p1")
    later = map_event(frame(BODY), ingest_ms=INGEST + 1000, instance="p0")
    assert [r.event_id for r in first] == [r.event_id for r in again]
    assert not {r.event_id for r in first} & {r.event_id for r in later}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "eventBody.results is missing or not a list"),
        ({"results": {}}, "eventBody.results is missing or not a list"),
        ({"results": ["x"]}, "eventBody.results[0] is not an object"),
        ({"results": [{"mediaType": 5, "data": []}]},
         "eventBody.results[0].mediaType is not a string"),
        ({"results": [{"mediaType": "voice"}]},
         "eventBody.results[0].data is missing or not a list"),
        ({"results": [{"data": [7]}]}, "eventBody.results[0].data[0] is not an object"),
        ({"results": [{"data": [{"count": 1}]}]},
         "eventBody.results[0].data[0].metric is missing or not a string"),
        ({"results": [{"data": [{"metric": "waiting", "count": 1}]}]},
         "eventBody.results[0].data[0].metric 'waiting' is not a Genesys metric name"),
        ({"results": [{"data": [{"metric": "oWaiting", "count": 1.5}]}]},
         "eventBody.results[0].data[0].count is not a whole number: 1.5"),
        ({"results": [{"data": [{"metric": "oWaiting", "count": "3"}]}]},
         "eventBody.results[0].data[0].count is not a number"),
        ({"results": [{"data": [{"metric": "oLongestWaiting", "count": 1,
                                 "calculatedMetricValue": True}]}]},
         "eventBody.results[0].data[0].calculatedMetricValue is not a number"),
    ],
)  # fmt: skip
def test_a_malformed_body_is_a_dead_letter_that_says_where(body: Any, reason: str) -> None:
    with pytest.raises(MappingError) as caught:
        run(body)
    assert caught.value.reason == reason
    assert caught.value.topic == TOPIC
    assert caught.value.raw == frame(body).raw


def test_a_subscription_keeps_only_the_activity_metrics_and_media_it_named() -> None:
    spec = parse_spec(
        f"subscriptions:\n  - name: q\n    queues: [{{id: {Q}}}]\n    metrics: [oWaiting, oFlow]\n"
        "    topics: [activity]\n    media_types: [voice]\n",
        "subs.yaml",
    )
    planned = PlannedTopic(
        TopicName(TOPIC), "v2.analytics.queues.{id}.activity", "queue", Q, ("q",)
    )
    keep = record_filter(spec, [planned]).keep
    kept = [(r.media_type, r.metric) for r in run(BODY) if keep(r)]
    assert kept == [("voice", "oWaiting"), ("voice", "oFlow")]
