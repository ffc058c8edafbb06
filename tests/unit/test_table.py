"""The current-value table: row keys, upserts and tombstones per the documented rules."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.core.contract.mapping import map_event
from pipeline.core.contract.records import MetricRecord
from pipeline.core.contract.table import CurrentTable, TableChange, table_key
from pipeline.core.genesys.events import BackfillEvent
from tests.unit.test_mapping import HALF_HOUR, INSTANT, QUEUE_OBS, Q, U, W, frame

NEXT_HALF_HOUR = "2024-12-30T10:00:00.000Z/2024-12-30T10:30:00.000Z"
EARLIER_HALF_HOUR = "2024-12-30T09:00:00.000Z/2024-12-30T09:30:00.000Z"
AT = 1_735_552_020_000


def _agent_states(counts: dict[str, int]) -> dict[str, Any]:
    metrics = [
        {"metric": "oUserRoutingStatuses", "qualifier": status, "stats": {"count": n}}
        for status, n in counts.items()
    ]
    metrics.append({"metric": "oMemberUsers", "stats": {"count": sum(counts.values())}})
    return {"group": {"queueId": Q}, "data": [{"interval": INSTANT, "metrics": metrics}]}


def _aggregate(interval: str, **counts: int) -> dict[str, Any]:
    metrics = [{"metric": name, "stats": {"count": n}} for name, n in counts.items()]
    return {"group": {"queueId": Q, "mediaType": "voice"},
            "data": [{"interval": interval, "metrics": metrics}]}  # fmt: skip


class Replica:
    """What a table consumer holds: the last value per key, a tombstone deletes."""

    def __init__(self) -> None:
        self.table = CurrentTable()
        self.rows: dict[str, MetricRecord] = {}
        self.changes: list[TableChange] = []

    def feed(self, topic: str, body: Any, *, backfill: bool = False) -> list[TableChange]:
        event = BackfillEvent(topic, body, AT / 1000, "gap") if backfill else frame(topic, body)
        records = map_event(event, ingest_ms=AT, instance="p0")
        changes = self.table.apply(topic, body, records, at=AT, snapshot=backfill)
        for change in changes:
            if change.record is None:
                assert change.key in self.rows, f"tombstone of a row never written: {change.key}"
                del self.rows[change.key]
            else:
                self.rows[change.key] = change.record
        self.changes += changes
        return changes

    def keys(self, metric: str) -> set[str]:
        return {k for k, r in self.rows.items() if r.metric == metric}


def test_presence_is_one_row_with_the_state_in_its_value() -> None:
    replica, topic = Replica(), f"v2.users.{U}.presence"
    for state in ("AVAILABLE", "BUSY", "ON_QUEUE"):
        replica.feed(topic, {"presenceDefinition": {"systemPresence": state},
                             "modifiedDate": "2024-12-30T09:46:54.839Z"})  # fmt: skip
    assert list(replica.rows) == [f"user|{U}|presence||"]
    assert replica.rows[f"user|{U}|presence||"].qualifier == "ON_QUEUE"
    assert all(c.record is not None for c in replica.changes)


def test_routing_status_from_two_topics_is_the_same_row() -> None:
    replica = Replica()
    replica.feed(
        f"v2.users.{U}.routingStatus",
        {"routingStatus": {"status": "IDLE", "startTime": "2024-12-30T09:45:00Z"}},
    )
    replica.feed(
        f"v2.users.{U}.activity",
        {"routingStatus": {"status": "INTERACTING", "startTime": "2024-12-30T09:46:00Z"}},
    )
    assert {k: r.qualifier for k, r in replica.rows.items()} == {
        f"user|{U}|routingStatus||": "INTERACTING"
    }


def test_member_who_leaves_the_queue_is_tombstoned() -> None:
    replica, topic = Replica(), f"v2.routing.queues.{Q}.users"
    replica.feed(topic, {"id": U, "user": {"id": U}, "joined": True})
    replica.feed(topic, {"id": "u2", "user": {"id": "u2"}, "joined": True})
    assert replica.keys("member") == {f"queue|{Q}|member|{U}|", f"queue|{Q}|member|u2|"}
    (change,) = replica.feed(topic, {"id": U, "user": {"id": U}, "joined": False})
    assert (change.key, change.record) == (f"queue|{Q}|member|{U}|", None)
    assert change.tombstone_id
    assert change.source_topic == topic
    assert replica.keys("member") == {f"queue|{Q}|member|u2|"}


def test_qualifier_missing_from_the_latest_body_is_tombstoned() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _agent_states({"IDLE": 2, "INTERACTING": 1}))
    changes = replica.feed(QUEUE_OBS, _agent_states({"IDLE": 3}))
    assert [c.key for c in changes if c.record is None] == [
        f"queue|{Q}|oUserRoutingStatuses|INTERACTING|"
    ]
    assert replica.keys("oUserRoutingStatuses") == {f"queue|{Q}|oUserRoutingStatuses|IDLE|"}
    assert replica.rows[f"queue|{Q}|oMemberUsers||"].value == 3.0


def test_metric_missing_from_a_body_is_unchanged() -> None:
    # §6.2: a frame may carry any subset of metrics: a metric not mentioned keeps its rows.
    replica = Replica()
    replica.feed(QUEUE_OBS, _agent_states({"IDLE": 2, "INTERACTING": 1}))
    only_members = {"group": {"queueId": Q}, "data": [{"interval": INSTANT, "metrics": [
        {"metric": "oMemberUsers", "stats": {"count": 4}}]}]}  # fmt: skip
    assert all(c.record is not None for c in replica.feed(QUEUE_OBS, only_members))
    assert len(replica.keys("oUserRoutingStatuses")) == 2


def test_other_group_of_the_same_topic_is_not_touched() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2, nTransferred=1))
    chat = {"group": {"queueId": Q, "mediaType": "chat"},
            "data": [{"interval": NEXT_HALF_HOUR, "metrics": [
                {"metric": "nOffered", "stats": {"count": 1}}]}]}  # fmt: skip
    changes = replica.feed(QUEUE_OBS, chat)
    assert [c.record is None for c in changes] == [False]
    assert {r.media_type for r in replica.rows.values()} == {"voice", "chat"}


def test_newer_interval_replaces_the_older_intervals_rows() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2, nTransferred=1))
    changes = replica.feed(QUEUE_OBS, _aggregate(NEXT_HALF_HOUR, nOffered=1))
    assert [c.key for c in changes if c.record is None] == [f"queue|{Q}|nTransferred||voice"]
    (row,) = replica.rows.values()
    assert (row.metric, row.count, row.interval_start) == ("nOffered", 1, 1_735_552_800_000)


def test_late_body_of_an_older_interval_changes_no_row() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2))
    assert replica.feed(QUEUE_OBS, _aggregate(EARLIER_HALF_HOUR, nOffered=9)) == []
    assert [r.count for r in replica.rows.values()] == [2]


def test_backfill_snapshot_is_the_full_state_of_its_group() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2, nTransferred=1))
    replica.feed(QUEUE_OBS, _agent_states({"IDLE": 2}))
    # The snapshot of the same interval has no nTransferred: it is gone; the instant
    # observations (another flavour) are not part of this snapshot body.
    changes = replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=3), backfill=True)
    assert [c.key for c in changes if c.record is None] == [f"queue|{Q}|nTransferred||voice"]
    assert replica.keys("oUserRoutingStatuses") == {f"queue|{Q}|oUserRoutingStatuses|IDLE|"}
    assert replica.rows[f"queue|{Q}|nOffered||voice"].backfill


def test_live_body_without_a_metric_keeps_it_but_a_snapshot_does_not() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2, nTransferred=1))
    assert replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=3))[-1].record is not None
    assert len(replica.rows) == 2
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=3), backfill=True)
    assert len(replica.rows) == 1


@pytest.mark.parametrize(
    ("topic", "body", "key"),
    [
        (f"v2.analytics.wrapup.{W}.aggregates",
         {"group": {"wrapUpCode": W, "queueId": Q, "mediaType": "voice"},
          "data": [{"interval": HALF_HOUR, "metrics": [
              {"metric": "tHandle", "stats": {"count": 1, "sum": 5.0}}]}]},
         f"wrapup|{W}|tHandle|{Q}|voice"),
        (f"v2.analytics.users.{U}.aggregates",
         {"group": {"userId": U}, "data": [{"interval": HALF_HOUR, "metrics": [
             {"metric": "tAgentRoutingStatus", "qualifier": "IDLE",
              "stats": {"count": 1, "sum": 5.0}}]}]},
         f"user|{U}|tAgentRoutingStatus|IDLE|"),
        (f"v2.analytics.queues.{Q}.activity",
         {"results": [{"mediaType": "chat", "data": [{"metric": "oWaiting", "count": 2}]}]},
         f"queue|{Q}|oWaiting||chat"),
    ],
)  # fmt: skip
def test_row_keys_keep_dimensions(topic: str, body: dict[str, Any], key: str) -> None:
    replica = Replica()
    replica.feed(topic, body)
    assert key in replica.rows  # (with the wrap-up's derived KPI beside it)


def test_wrapup_bodies_of_two_queues_are_separate_groups() -> None:
    replica, topic = Replica(), f"v2.analytics.wrapup.{W}.aggregates"
    for queue in (Q, "q2"):
        replica.feed(topic, {"group": {"wrapUpCode": W, "queueId": queue, "mediaType": "voice"},
                             "data": [{"interval": HALF_HOUR, "metrics": [
                                 {"metric": "nTransferred", "stats": {"count": 1}}]}]})  # fmt: skip
    assert len(replica.rows) == 2
    assert not [c for c in replica.changes if c.record is None]


def test_state_is_bounded_by_the_latest_bodies() -> None:
    replica = Replica()
    for n in range(50):
        replica.feed(QUEUE_OBS, _agent_states({f"S{n}": 1, "IDLE": n}))
    assert len(replica.table) == 3  # S49, IDLE and oMemberUsers
    assert len(replica.rows) == 3


def test_table_key_puts_nulls_as_empty_strings() -> None:
    body = {"routingStatus": {"status": "IDLE", "startTime": "2024-12-30T09:45:00Z"}}
    (record,) = map_event(frame(f"v2.users.{U}.routingStatus", body), ingest_ms=AT, instance="p")
    assert table_key(record) == f"user|{U}|routingStatus||"


def test_complete_snapshot_ends_the_groups_it_did_not_renew() -> None:
    replica = Replica()
    replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=2))  # voice, 09:30
    chat = {"group": {"queueId": Q, "mediaType": "chat"},
            "data": [{"interval": NEXT_HALF_HOUR, "metrics": [
                {"metric": "nOffered", "stats": {"count": 1}}]}]}  # fmt: skip
    replica.feed(QUEUE_OBS, chat, backfill=True)  # the snapshot of 10:00 has chat, no voice
    replica.feed(QUEUE_OBS, _agent_states({"IDLE": 2}))
    at = 1_735_552_800_000 + 60_000  # fetched at 10:01
    changes = replica.table.snapshot_taken([QUEUE_OBS, "v2.other"], at)
    assert [(c.key, c.record) for c in changes] == [(f"queue|{Q}|nOffered||voice", None)]
    for change in changes:
        del replica.rows[change.key]
    assert {r.media_type for r in replica.rows.values() if r.metric == "nOffered"} == {"chat"}
    assert replica.keys("oUserRoutingStatuses")  # instant observations are not aggregates
    # A late frame of the old interval does not bring the row back; a second call is empty.
    assert replica.feed(QUEUE_OBS, _aggregate(HALF_HOUR, nOffered=3)) == []
    assert replica.table.snapshot_taken([QUEUE_OBS], at) == []
