"""Golden inputs: frames and lifecycle facts whose records are pinned byte for byte.

``tests/fixtures/golden/records.json`` holds what these inputs produced when it was written:
every event id and, for metric records, the exact Kafka record (topic, key, value, headers)
the outbox builds for ``.metrics``; under ``current``, the changelog table's records (upserts
and tombstones) of each input, the inputs fed in order to one table. Consumers de-duplicate
on event ids and sinks read these bytes, so a change here is a contract change: regenerate
the file only on purpose, with ``python -m tests.golden --write``, and say why in the commit
and in ``docs/kafka-contract.md``.
"""

from __future__ import annotations

import argparse
import base64
import pathlib
import warnings
from typing import Any

import orjson

from pipeline.core.audit import AuditDetailsWarning, AuditEvent, AuditKind
from pipeline.core.contract.mapping import map_event
from pipeline.core.contract.records import audit_record, dead_letter_record, gap_audit
from pipeline.core.contract.table import CurrentTable
from pipeline.core.genesys.events import BackfillEvent, DeadLetter, Gap
from pipeline.core.genesys.frames import TopicEvent, parse_frame
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import OutRecord

GOLDEN = pathlib.Path(__file__).parent / "fixtures" / "golden" / "records.json"
INSTANCE = "producer-0"
INGEST_MS = 1_735_552_015_000
SCHEMA_IDS = {"genesys.metrics": 1, "genesys.current.v2": 2, "genesys.audit": 3, "genesys.dlq": 4}

Q = "8f7e2c1a-0000-4000-8000-000000000001"
U = "6a1b0c2d-0000-4000-8000-00000000000a"
W = "0c0d0e0f-0000-4000-8000-0000000000ff"
HALF_HOUR = "2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z"
INSTANT = "2024-12-30T09:46:54.839Z/2024-12-30T09:46:54.839Z"


def _frame(topic: str, body: dict[str, Any], correlation_id: str) -> TopicEvent:
    doc = {"topicName": topic, "version": "2", "eventBody": body,
           "metadata": {"CorrelationId": correlation_id}}  # fmt: skip
    event = parse_frame(orjson.dumps(doc))
    assert isinstance(event, TopicEvent)
    return event


def _stats(name: str, **stats: float) -> dict[str, Any]:
    return {"metric": name, "stats": stats}


def topic_events() -> dict[str, TopicEvent | BackfillEvent]:
    """One input per mapped topic family, live and backfill, named for the table."""
    queue_obs = f"v2.analytics.queues.{Q}.observations"
    aggregate = {
        "group": {"queueId": Q, "mediaType": "voice"},
        "data": [{"interval": HALF_HOUR, "metrics": [
            _stats("nOffered", count=2),
            _stats("tAnswered", count=1, sum=8277, min=8277, max=8277),
            _stats("tAbandon", count=1, sum=74387, min=74387, max=74387),
            _stats("tHandle", count=1, sum=120500, min=120500, max=120500),
            _stats("oServiceLevel", ratio=0.5, numerator=1, denominator=2, target=0.8),
        ]}],
    }  # fmt: skip
    instant = {
        "group": {"queueId": Q, "mediaType": "chat"},
        "data": [{"interval": INSTANT, "metrics": [
            _stats("oWaiting", count=3),
            {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 4}},
            _stats("oInteracting", count=2),
        ]}],
    }  # fmt: skip
    presence = {"id": U, "presenceDefinition": {"systemPresence": "On Queue"},
                "modifiedDate": "2024-12-30T09:46:54.839Z"}  # fmt: skip
    routing = {"routingStatus": {"status": "INTERACTING", "startTime": "2024-12-30T09:45:00.000Z"}}
    user_agg = {
        "group": {"userId": U, "mediaType": "voice"},
        "data": [{"interval": HALF_HOUR, "metrics": [
            _stats("tHandle", count=2, sum=240000, min=100000, max=140000),
            _stats("tTalk", count=2, sum=180000, min=80000, max=100000),
        ]}],
    }  # fmt: skip
    wrapup = {
        "group": {"wrapUpCode": W, "mediaType": "voice"},
        "data": [{"interval": HALF_HOUR, "metrics": [_stats("nTransferred", count=1)]}],
    }  # fmt: skip
    member = {"id": U, "joined": True}
    member_left = {"id": U, "user": {"id": U}, "joined": False}
    activity = {"results": [  # §6.3: counts per media type, no time, queue id in the topic
        {"mediaType": "voice", "data": [
            {"metric": "oWaiting", "count": 2}, {"metric": "oFlow", "count": 1},
            {"metric": "oLongestWaiting", "count": 1, "calculatedMetricValue": 1_735_551_950_000},
        ]},
        {"mediaType": "chat", "data": [{"metric": "oLongestInteracting", "count": 0}]},
    ]}  # fmt: skip
    # Every StatisticalSummary key (§7.6), and an oLongestWaiting whose calculatedMetricValue is
    # an epoch-ms start time (§6.8): the columns of metric schema version 2.
    every_stat = {
        "group": {"queueId": Q, "mediaType": "email"},
        "data": [{"interval": HALF_HOUR, "metrics": [
            _stats("tHandle", max=9000, min=1000, count=4, countNegative=0, countPositive=4,
                   sum=20000, current=3.0, ratio=0.25, numerator=1, denominator=4, target=0.8,
                   p95=8800, p99=8960, calculatedMetricValue=42),
        ]}, {"interval": INSTANT, "metrics": [
            _stats("oLongestWaiting", count=1, calculatedMetricValue=1_735_552_014_839 - 61_000),
        ]}],
    }  # fmt: skip
    return {
        "queue aggregate": _frame(queue_obs, aggregate, "corr-aggregate"),
        "queue instant": _frame(queue_obs, instant, "corr-instant"),
        "user presence": _frame(f"v2.users.{U}.presence", presence, "corr-presence"),
        "user routing status": _frame(f"v2.users.{U}.routingStatus", routing, "corr-routing"),
        "user aggregate": _frame(f"v2.analytics.users.{U}.aggregates", user_agg, "corr-user"),
        "wrap-up aggregate": _frame(f"v2.analytics.wrapup.{W}.aggregates", wrapup, "corr-wrapup"),
        "queue member": _frame(f"v2.routing.queues.{Q}.users", member, "corr-member"),
        "queue member left": _frame(f"v2.routing.queues.{Q}.users", member_left, "corr-left"),
        "queue activity": _frame(f"v2.analytics.queues.{Q}.activity", activity, "corr-activity"),
        "queue every stat": _frame(queue_obs, every_stat, "corr-every-stat"),
        "queue aggregate backfill": BackfillEvent(queue_obs, aggregate, 1_735_552_010.25, "gap"),
    }


def lifecycle_facts() -> dict[str, AuditEvent | Gap | DeadLetter]:
    """Audit facts, a gap and a dead letter, named for the table.

    The two audit facts predate the declared vocabulary (``pipeline.core.audit``): the session
    writes ``channel.created`` with ``expires_at``, and ``throttled`` also has ``path``. They
    pin the id recipe and the encoding, which do not depend on a kind's declared fields, so
    they keep their details (and their pinned ids) and are built without the details check.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditDetailsWarning)
        created = AuditEvent(AuditKind.CHANNEL_CREATED, 1_735_552_000.5, "ch-1", {"topics": 67})
        throttled = AuditEvent(AuditKind.THROTTLED, 1_735_552_001.0, None, {"wait_s": 2.5})
    return {
        "channel created": created,
        "throttled": throttled,
        "gap": Gap("ch-1", 1_735_552_000.0, 1_735_552_012.5, ("a", "b"), "socket.dropped"),
        "dead letter": DeadLetter(
            b'{"topicName": 1}', "topicName is not a string", "parse", None, 1_735_552_003.0
        ),
    }


def _out(record: OutRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "key": None if record.key is None else record.key.decode(),
        "value_b64": None if record.value is None else base64.b64encode(record.value).decode(),
        "headers": [[name, value.decode()] for name, value in record.headers],
    }


def build() -> dict[str, Any]:
    """The whole golden table, from the current code."""
    outbox = Outbox("genesys", SCHEMA_IDS, INSTANCE)
    metrics: dict[str, Any] = {}
    current: dict[str, Any] = {}
    table = CurrentTable()  # the inputs in table order, as one producer would see them
    for name, event in topic_events().items():
        records = map_event(event, ingest_ms=INGEST_MS, instance=INSTANCE)
        metrics[name] = [
            {"event_id": record.event_id, "kafka": [_out(outbox.metric(record))]}
            for record in records
        ]
        changes = table.apply(event.topic, event.body, records, at=INGEST_MS,
                              snapshot=isinstance(event, BackfillEvent))  # fmt: skip
        current[name] = [_out(outbox.current(change)) for change in changes]
    facts: dict[str, Any] = {}
    for name, fact in lifecycle_facts().items():
        if isinstance(fact, Gap):
            facts[name] = _out(outbox.audit(gap_audit(fact, INSTANCE)))
        elif isinstance(fact, DeadLetter):
            facts[name] = _out(outbox.dead_letter(dead_letter_record(fact, INSTANCE)))
        else:
            facts[name] = _out(outbox.audit(audit_record(fact, INSTANCE)))
    return {"metrics": metrics, "current": current, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the golden file")
    if parser.parse_args().write:
        GOLDEN.write_bytes(orjson.dumps(build(), option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
