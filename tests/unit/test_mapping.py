"""Topic events map to flat metric records: every family, KPIs, event ids, and clear errors."""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pipeline.core.contract.body as body_fields
import pipeline.core.contract.mapping as mapping
from pipeline.core.contract.identity import current_key
from pipeline.core.contract.kpi import DERIVED_METRICS
from pipeline.core.contract.mapping import MappingError, map_event
from pipeline.core.contract.records import MetricRecord
from pipeline.core.genesys.events import BackfillEvent
from pipeline.core.genesys.frames import TopicEvent, parse_frame
from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig
from pipeline.emulator.simulation.topics import bodies_for_topic
from pipeline.errors import FrameError


def metric_event_id(record: MetricRecord) -> str:
    """The event id of ``record``, recomputed from the recipe in ``core/contract/identity.py``.

    Written from the documented recipe, not from the mapping's code: BLAKE2b-128 over ``H + T``.
    """
    r = record
    id_time = r.event_time if r.interval_start is None else None
    head = orjson.dumps(
        [r.source_topic, r.entity_id, r.media_type, r.interval_start, r.interval_end, id_time]
    )
    fields = [r.metric, r.qualifier, r.count, r.sum, r.min, r.max, r.ratio, r.numerator,
              r.denominator, r.target, r.value]  # fmt: skip
    added = [r.count_negative, r.count_positive, r.current, r.p95, r.p99,
             r.calculated_metric_value]  # fmt: skip
    if any(v is not None for v in added):  # schema version 2's stats, when there are any
        fields.append(added)
    return hashlib.blake2b(head + orjson.dumps(fields), digest_size=16).hexdigest()


Q = "8f7e2c1a-0000-4000-8000-000000000001"
U = "6a1b0c2d-0000-4000-8000-00000000000a"
W = "0c0d0e0f-0000-4000-8000-0000000000ff"
QUEUE_OBS = f"v2.analytics.queues.{Q}.observations"
INGEST = 1_735_552_000_000
HALF_HOUR = "2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z"
H_START, H_END = 1_735_551_000_000, 1_735_552_800_000
INSTANT = "2024-12-30T09:46:54.839Z/2024-12-30T09:46:54.839Z"
INSTANT_MS = 1_735_552_014_839


def frame(topic: str, body: Any, correlation_id: str | None = "corr-1") -> TopicEvent:
    """A TopicEvent parsed from real envelope bytes, like the socket delivers it."""
    doc: dict[str, Any] = {"topicName": topic, "version": "2", "eventBody": body}
    if correlation_id is not None:
        doc["metadata"] = {"CorrelationId": correlation_id}
    event = parse_frame(orjson.dumps(doc))
    assert isinstance(event, TopicEvent)
    return event


def run(event: TopicEvent | BackfillEvent, ingest_ms: int = INGEST) -> list[MetricRecord]:
    return map_event(event, ingest_ms=ingest_ms, instance="p0")


def stats_body(interval: str, metrics: list[dict[str, Any]], **group: str) -> dict[str, Any]:
    return {"group": group or {"queueId": Q, "mediaType": "voice"},
            "data": [{"interval": interval, "metrics": metrics}]}  # fmt: skip


def t(name: str, count: int, total: float, low: float, high: float) -> dict[str, Any]:
    return {"metric": name, "stats": {"count": count, "sum": total, "min": low, "max": high}}


def n(name: str, count: int, qualifier: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"metric": name, "stats": {"count": count}}
    if qualifier is not None:
        entry["qualifier"] = qualifier
    return entry


def by_metric(records: list[MetricRecord]) -> dict[str, MetricRecord]:
    return {r.metric: r for r in records}


# §6.2 aggregate flavour, the OBS-JS frame.
AGGREGATE = stats_body(
    HALF_HOUR,
    [
        n("nOffered", 2),
        t("tAlert", 1, 8277, 8277, 8277),
        t("tAbandon", 2, 86168, 11781, 74387),
        t("tAcd", 2, 86168, 11781, 74387),
        t("tConnected", 2, 93173, 17669, 75504),
        t("tNotResponding", 1, 8277, 8277, 8277),
        t("tWait", 2, 86168, 11781, 74387),
        {"metric": "oServiceLevel",
         "stats": {"ratio": 0, "numerator": 0, "denominator": 2, "target": 0.5}},
    ],
)  # fmt: skip


# ----------------------------------------------------------------------------- queue topic
@pytest.mark.parametrize(
    ("metric", "count", "total", "low", "high", "value", "unit"),
    [
        ("nOffered", 2, None, None, None, 2.0, "count"),
        ("tAlert", 1, 8277.0, 8277.0, 8277.0, 8277.0, "ms"),
        ("tAbandon", 2, 86168.0, 11781.0, 74387.0, 86168.0, "ms"),
        ("tConnected", 2, 93173.0, 17669.0, 75504.0, 93173.0, "ms"),
        ("oServiceLevel", None, None, None, None, 0.0, "ratio"),
    ],
)
def test_aggregate_frame_maps_stats_to_columns(
    metric: str, count: int | None, total: float | None, low: float | None,
    high: float | None, value: float, unit: str,
) -> None:  # fmt: skip
    rec = by_metric(run(frame(QUEUE_OBS, AGGREGATE)))[metric]
    assert (rec.count, rec.sum, rec.min, rec.max, rec.value, rec.unit) == (
        count, total, low, high, value, unit)  # fmt: skip
    assert type(rec.count) is (int if count is not None else type(None))
    assert rec.derived is False


def test_aggregate_frame_carries_interval_and_ingest_time() -> None:
    records = run(frame(QUEUE_OBS, AGGREGATE))
    assert len(records) == 8 + 2  # 8 metrics, serviceLevelPercent and abandonRatePercent
    for rec in records:
        assert (rec.interval_start, rec.interval_end) == (H_START, H_END)
        assert rec.event_time == rec.ingest_time == INGEST
        assert (rec.source_topic, rec.entity_type, rec.entity_id) == (QUEUE_OBS, "queue", Q)
        assert (rec.media_type, rec.qualifier) == ("voice", None)
        assert (rec.producer_instance, rec.correlation_id, rec.backfill) == ("p0", "corr-1", False)
        assert rec.schema_version == 2  # metric.v2.avsc
    sl = by_metric(records)["oServiceLevel"]
    assert (sl.ratio, sl.numerator, sl.denominator, sl.target) == (0.0, 0.0, 2.0, 0.5)


def test_instant_observation_has_no_interval_and_the_instant_as_event_time() -> None:
    body = stats_body(INSTANT, [
        n("oWaiting", 3), n("oInteracting", 7), n("oAlerting", 0),
        {"metric": "oLongestWaiting", "stats": {"count": 1, "calculatedMetricValue": 48211}},
        {"metric": "oLongestInteracting", "stats": {"count": 0}},
    ])  # fmt: skip
    records = by_metric(run(frame(QUEUE_OBS, body)))
    assert set(records) == {"oWaiting", "oInteracting", "oAlerting", "oLongestWaiting",
                            "oLongestInteracting"}  # no KPIs from observations  # fmt: skip
    for rec in records.values():
        assert rec.interval_start is None
        assert rec.interval_end is None
        assert (rec.event_time, rec.ingest_time) == (INSTANT_MS, INGEST)
    assert (records["oWaiting"].value, records["oWaiting"].unit) == (3.0, "count")
    assert (records["oLongestWaiting"].value, records["oLongestWaiting"].unit) == (48211.0, "ms")
    assert records["oLongestWaiting"].count == 1
    assert (records["oLongestInteracting"].value, records["oLongestInteracting"].unit) == (
        None, "ms")  # fmt: skip


@pytest.mark.parametrize(
    ("calculated", "age"),
    [(INSTANT_MS - 48_211, 48_211.0),  # an epoch-ms start (§6.8 BELIEF): age = instant - start
     (INSTANT_MS + 5_000, 0.0),  # a start after the instant (clock skew): no negative age
     (48_211, 48_211.0)],  # already an age
)  # fmt: skip
def test_longest_waiting_age_comes_from_a_start_time_or_an_age(calculated: int, age: float) -> None:
    stats = {"count": 1, "calculatedMetricValue": calculated}
    body = stats_body(INSTANT, [{"metric": "oLongestWaiting", "stats": stats}])
    [rec] = run(frame(QUEUE_OBS, body))
    assert (rec.value, rec.unit, rec.calculated_metric_value) == (age, "ms", calculated)


def test_agent_state_group_without_media_type_keeps_qualifiers() -> None:
    body = stats_body(INSTANT, [
        n("oOnQueueUsers", 3, "IDLE"), n("oOnQueueUsers", 5, "INTERACTING"),
        n("oUserPresences", 4, "a-presence-id"), n("oActiveUsers", 8),
    ], queueId=Q)  # fmt: skip
    records = run(frame(QUEUE_OBS, body))
    assert [(r.metric, r.qualifier, r.count) for r in records] == [
        ("oOnQueueUsers", "IDLE", 3), ("oOnQueueUsers", "INTERACTING", 5),
        ("oUserPresences", "a-presence-id", 4), ("oActiveUsers", None, 8),
    ]  # fmt: skip
    assert all(r.media_type is None for r in records)


def test_stats_tolerate_floats_nulls_and_unknown_keys() -> None:
    # SDK-serialised bodies carry floats and explicit nulls (§6.7).
    body = stats_body(HALF_HOUR, [{"metric": "tHandle", "qualifier": None,
        "stats": {"count": 2.0, "sum": 10.5, "min": None, "max": 7, "median": "x"}}])  # fmt: skip
    rec = run(frame(QUEUE_OBS, body))[0]
    assert (rec.count, rec.sum, rec.min, rec.max) == (2, 10.5, None, 7.0)
    assert type(rec.count) is int
    assert type(rec.max) is float


def test_every_statistical_summary_key_has_its_column() -> None:
    # §7.6: the 14 keys of StatisticalSummary; the six of schema version 2 were dropped before.
    stats = {"max": 9000, "min": 1000, "count": 4, "countNegative": 0, "countPositive": 4,
             "sum": 20000, "current": 3.0, "ratio": 0.25, "numerator": 1, "denominator": 4,
             "target": 0.8, "p95": 8800, "p99": 8960.5, "calculatedMetricValue": 42}  # fmt: skip
    [rec] = [r for r in run(frame(QUEUE_OBS, stats_body(HALF_HOUR, [
        {"metric": "tHandle", "stats": stats}]))) if not r.derived]  # fmt: skip
    assert (rec.max, rec.min, rec.count, rec.sum, rec.ratio) == (9000.0, 1000.0, 4, 20000.0, 0.25)
    assert (rec.numerator, rec.denominator, rec.target) == (1.0, 4.0, 0.8)
    assert (rec.count_negative, rec.count_positive, rec.current) == (0, 4, 3.0)
    assert (rec.p95, rec.p99, rec.calculated_metric_value) == (8800.0, 8960.5, 42)
    assert [
        type(v)
        for v in (
            rec.count_negative,
            rec.count_positive,
            rec.p95,
            rec.current,
            rec.calculated_metric_value,
        )
    ] == [int, int, float, float, int]
    assert rec.event_id == metric_event_id(rec)


def test_new_stats_keep_old_event_ids_when_absent_and_change_them_when_present() -> None:
    plain = run(frame(QUEUE_OBS, stats_body(INSTANT, [n("oWaiting", 3)])))[0]
    richer = run(frame(QUEUE_OBS, stats_body(INSTANT, [
        {"metric": "oWaiting", "stats": {"count": 3, "current": 3}}])))[0]  # fmt: skip
    assert plain.event_id == metric_event_id(plain)
    assert plain.calculated_metric_value is plain.current is None
    assert richer.event_id == metric_event_id(richer) != plain.event_id


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [("p95", "x", "stats.p95 is not a number"),
     ("countPositive", 2.5, "stats.countPositive is not a whole number: 2.5"),
     ("calculatedMetricValue", 1.5, "stats.calculatedMetricValue is not a whole number: 1.5"),
     ("current", [1], "stats.current is not a number")],
)  # fmt: skip
def test_an_ill_typed_new_stat_is_a_dead_letter(key: str, value: object, reason: str) -> None:
    body = stats_body(HALF_HOUR, [{"metric": "tHandle", "stats": {"count": 1, key: value}}])
    with pytest.raises(MappingError, match=re.escape(f"eventBody.data[0].metrics[0].{reason}")):
        run(frame(QUEUE_OBS, body))


def test_empty_data_gives_no_records() -> None:
    assert run(frame(QUEUE_OBS, {"group": {"queueId": Q}, "data": []})) == []
    assert run(frame(QUEUE_OBS, stats_body(HALF_HOUR, []))) == []


def test_several_data_elements_are_mapped_in_order() -> None:
    body = stats_body(INSTANT, [n("oWaiting", 1)])
    body["data"].append({"interval": HALF_HOUR, "metrics": [n("nOffered", 4)]})
    records = run(frame(QUEUE_OBS, body))
    assert [(r.metric, r.interval_start) for r in records] == [
        ("oWaiting", None), ("nOffered", H_START)]  # fmt: skip


# ----------------------------------------------------------------------------- other stats topics
def test_user_aggregates_map_time_in_status() -> None:
    topic = f"v2.analytics.users.{U}.aggregates"
    body = stats_body(HALF_HOUR, [
        {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 5000, "count": 2}},
        {"metric": "tSystemPresence", "qualifier": "ON_QUEUE", "stats": {"sum": 9000, "count": 1}},
    ], userId=U)  # fmt: skip
    records = run(frame(topic, body))
    assert [(r.entity_type, r.entity_id, r.metric, r.qualifier, r.value, r.unit, r.media_type)
            for r in records] == [
        ("user", U, "tAgentRoutingStatus", "IDLE", 5000.0, "ms", None),
        ("user", U, "tSystemPresence", "ON_QUEUE", 9000.0, "ms", None),
    ]  # fmt: skip


def test_wrapup_aggregates_use_the_code_as_entity_and_the_queue_as_qualifier() -> None:
    topic = f"v2.analytics.wrapup.{W}.aggregates"
    body = stats_body(HALF_HOUR, [t("tHandle", 2, 300000, 100000, 200000), n("nOffered", 2)],
                      wrapUpCode=W, queueId=Q, mediaType="chat")  # fmt: skip
    records = by_metric(run(frame(topic, body)))
    assert set(records) == {"tHandle", "nOffered", "averageHandleTimeMs"}
    for rec in records.values():
        assert (rec.entity_type, rec.entity_id, rec.qualifier, rec.media_type) == (
            "wrapup", W, Q, "chat")  # fmt: skip
    assert records["averageHandleTimeMs"].value == 150000.0


def test_wrapup_group_queue_id_must_be_a_string() -> None:
    body = stats_body(HALF_HOUR, [n("nOffered", 1)], wrapUpCode=W)
    body["group"]["queueId"] = 7
    with pytest.raises(MappingError, match=r"eventBody\.group\.queueId is not a string"):
        run(frame(f"v2.analytics.wrapup.{W}.aggregates", body))


def test_memo_tables_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body_fields, "MEMO_LIMIT", 1)
    for memo in ("_instants", "_intervals"):
        monkeypatch.setattr(body_fields, memo, {})
    monkeypatch.setattr(mapping, "_routes", {})
    body_fields.kinds.clear()  # imported by name into the mappings: cleared in place
    first = run(frame(QUEUE_OBS, AGGREGATE))
    other = stats_body(INSTANT, [n("oWaiting", 1)], queueId=U)
    run(frame(f"v2.analytics.queues.{U}.observations", other))
    assert len(body_fields._intervals) == len(mapping._routes) == len(body_fields.kinds) == 1
    assert run(frame(QUEUE_OBS, AGGREGATE)) == first


# ----------------------------------------------------------------------------- user states
PRESENCE = {"source": "PURECLOUD", "primary": True, "message": "",
            "presenceDefinition": {"id": "org-presence", "systemPresence": "ON_QUEUE"},
            "modifiedDate": "2026-05-04T10:15:02.123Z"}  # fmt: skip
ROUTING = {"status": "INTERACTING", "startTime": "2026-05-04T10:16:00.000Z"}
PRESENCE_MS, ROUTING_MS = 1_777_889_702_123, 1_777_889_760_000


@pytest.mark.parametrize(
    ("leaf", "body", "expected"),
    [
        ("presence", PRESENCE, [("presence", "ON_QUEUE", PRESENCE_MS)]),
        ("routingStatus", {"id": U, "routingStatus": ROUTING},
         [("routingStatus", "INTERACTING", ROUTING_MS)]),
        ("activity", {"id": U, "routingStatus": ROUTING,
                      "presence": {**PRESENCE, "presenceMessage": ""}, "activeQueueIds": [Q]},
         [("presence", "ON_QUEUE", PRESENCE_MS), ("routingStatus", "INTERACTING", ROUTING_MS)]),
        ("activity", {"id": U, "routingStatus": ROUTING},
         [("routingStatus", "INTERACTING", ROUTING_MS)]),
    ],
)  # fmt: skip
def test_user_state_topics_map_to_state_records(
    leaf: str, body: dict[str, Any], expected: list[tuple[str, str, int]]
) -> None:
    topic = f"v2.users.{U}.{leaf}"
    records = run(frame(topic, body))
    assert [(r.metric, r.qualifier, r.event_time) for r in records] == expected
    for rec in records:
        assert (rec.entity_type, rec.entity_id, rec.unit, rec.value) == ("user", U, "state", None)
        assert (rec.interval_start, rec.interval_end, rec.count, rec.media_type) == (None,) * 4
        assert rec.ingest_time == INGEST


@pytest.mark.parametrize(("joined", "value"), [(True, 1.0), (False, 0.0)])
def test_queue_membership_maps_to_member_records(joined: bool, value: float) -> None:
    topic = f"v2.routing.queues.{Q}.users"
    body = {"id": U, "user": {"id": U}, "queueId": Q, "joined": joined}
    (rec,) = run(frame(topic, body))
    assert (rec.entity_type, rec.entity_id, rec.metric, rec.qualifier, rec.value, rec.unit) == (
        "queue", Q, "member", U, value, "count")  # fmt: skip
    assert rec.event_time == INGEST


# ----------------------------------------------------------------------------- derived KPIs
SL = {"metric": "oServiceLevel", "stats": {"ratio": 0.8, "numerator": 8, "denominator": 10,
                                           "target": 0.75}}  # fmt: skip


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ([SL], {"serviceLevelPercent": 80.0}),
        ([t("tAnswered", 4, 10000, 1000, 4000)], {"averageSpeedOfAnswerMs": 2500.0}),
        ([t("tHandle", 3, 600000, 1, 2)], {"averageHandleTimeMs": 200000.0}),
        ([n("nOffered", 8), t("tAbandon", 2, 1, 1, 1)], {"abandonRatePercent": 25.0}),
        # inputs missing or unusable → not computed
        ([{"metric": "oServiceLevel", "stats": {"numerator": 1, "denominator": 2}}], {}),
        ([t("tAnswered", 0, 0, 0, 0)], {}),
        ([{"metric": "tHandle", "stats": {"count": 3}}], {}),
        ([n("nOffered", 0), t("tAbandon", 0, 0, 0, 0)], {}),
        ([n("nOffered", 5)], {}),
        ([t("tAbandon", 2, 1, 1, 1)], {}),
        ([{"metric": "tHandle", "qualifier": "x", "stats": {"count": 1, "sum": 5}}], {}),
    ],
)
def test_kpis_follow_the_documented_formulas(
    metrics: list[dict[str, Any]], expected: dict[str, float]
) -> None:
    records = run(frame(QUEUE_OBS, stats_body(HALF_HOUR, metrics)))
    derived = {r.metric: r.value for r in records if r.derived}
    assert derived == expected
    assert set(derived) <= set(DERIVED_METRICS)


def test_kpis_carry_their_inputs_and_units() -> None:
    metrics = [SL, n("nOffered", 8), t("tAbandon", 2, 1, 1, 1), t("tAnswered", 4, 10000, 1, 2)]
    records = by_metric(run(frame(QUEUE_OBS, stats_body(HALF_HOUR, metrics))))
    sl, abandon, asa = (records["serviceLevelPercent"], records["abandonRatePercent"],
                        records["averageSpeedOfAnswerMs"])  # fmt: skip
    assert (sl.unit, sl.numerator, sl.denominator, sl.target, sl.ratio) == (
        "percent", 8.0, 10.0, 0.75, None)  # fmt: skip
    assert (abandon.unit, abandon.numerator, abandon.denominator) == ("percent", 2.0, 8.0)
    assert (asa.unit, asa.count, asa.sum) == ("ms", 4, 10000.0)
    for rec in (sl, abandon, asa):
        assert rec.derived
        assert rec.interval_start == H_START
        assert rec.media_type == "voice"


def test_no_kpis_from_instant_observations() -> None:
    records = run(frame(QUEUE_OBS, stats_body(INSTANT, [SL, t("tHandle", 1, 5, 5, 5)])))
    assert not any(r.derived for r in records)


# ----------------------------------------------------------------------------- event ids
def test_event_ids_follow_the_recipe_and_are_unique_in_a_frame() -> None:
    records = run(frame(QUEUE_OBS, AGGREGATE))
    assert all(r.event_id == metric_event_id(r) for r in records)
    assert all(len(r.event_id) == 32 and int(r.event_id, 16) >= 0 for r in records)
    assert len({r.event_id for r in records}) == len(records)


def test_the_same_frame_mapped_twice_gives_the_same_ids() -> None:
    first = run(frame(QUEUE_OBS, AGGREGATE))
    again = run(frame(QUEUE_OBS, copy.deepcopy(AGGREGATE), correlation_id="other"), INGEST + 5)
    assert [r.event_id for r in first] == [r.event_id for r in again]


def test_a_backfilled_aggregate_has_the_live_ids() -> None:
    live = run(frame(QUEUE_OBS, AGGREGATE))
    # The REST answer may carry floats where the frame had ints: same datum, same id.
    body = copy.deepcopy(AGGREGATE)
    for entry in body["data"][0]["metrics"]:
        entry["stats"] = {k: float(v) for k, v in entry["stats"].items()}
    backfill = run(BackfillEvent(QUEUE_OBS, body, 1_735_552_100.0, "gap"), 1_735_552_100_000)
    assert [r.event_id for r in backfill] == [r.event_id for r in live]
    assert all(r.backfill and r.correlation_id is None for r in backfill)


@pytest.mark.parametrize(
    ("change", "metric"),
    [
        (lambda b: b["data"][0]["metrics"][1]["stats"].update(sum=8278), "tAlert"),
        (lambda b: b["data"][0]["metrics"][1]["stats"].update(max=9000), "tAlert"),
        (lambda b: b["data"][0]["metrics"][0]["stats"].update(count=3), "nOffered"),
        (lambda b: b["data"][0]["metrics"][0].update(qualifier="x"), "nOffered"),
        (lambda b: b["data"][0].update(interval="2024-12-30T10:00:00.000Z/"
                                               "2024-12-30T10:30:00.000Z"), "tAlert"),
        (lambda b: b["group"].update(mediaType="chat"), "tAlert"),
    ],
)  # fmt: skip
def test_different_values_give_different_ids(change: Any, metric: str) -> None:
    body = copy.deepcopy(AGGREGATE)
    change(body)
    before = {r.metric: r.event_id for r in run(frame(QUEUE_OBS, AGGREGATE))}
    after = {r.metric: r.event_id for r in run(frame(QUEUE_OBS, body))}
    assert before[metric] != after[metric]
    assert before["tWait"] != after["tWait"] or metric in ("nOffered", "tAlert")


def test_instant_ids_depend_on_the_instant_not_on_ingest() -> None:
    body = stats_body(INSTANT, [n("oWaiting", 1)])
    later = stats_body("2024-12-30T09:46:55.000Z/2024-12-30T09:46:55.000Z", [n("oWaiting", 1)])
    first = run(frame(QUEUE_OBS, body))[0].event_id
    assert run(frame(QUEUE_OBS, body), INGEST + 999)[0].event_id == first
    assert run(frame(QUEUE_OBS, later))[0].event_id != first


@pytest.mark.parametrize(
    ("qualifier", "media", "key"),
    [(None, None, f"{Q}|oActiveUsers||"), ("IDLE", "voice", f"{Q}|oActiveUsers|IDLE|voice")],
)
def test_current_key(qualifier: str | None, media: str | None, key: str) -> None:
    entry = n("oActiveUsers", 1, qualifier)
    group = {"queueId": Q} if media is None else {"queueId": Q, "mediaType": media}
    (rec,) = run(frame(QUEUE_OBS, stats_body(INSTANT, [entry], **group)))
    assert current_key(rec) == key


# ----------------------------------------------------------------------------- malformed bodies
def _set(path: str, value: Any) -> Any:
    """A body edit: set (or with value ... delete) the item at a dotted path."""

    def edit(body: Any) -> None:
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key]
        else:
            node[key] = value

    return edit


_M = "data.0.metrics"
MALFORMED_STATS = [
    (_set("group", ...), "eventBody.group is missing or not an object"),
    (_set("group", [Q]), "eventBody.group is missing or not an object"),
    (_set("group.mediaType", 3), "eventBody.group.mediaType is not a string"),
    (_set("data", ...), "eventBody.data is missing or not a list"),
    (_set("data", {}), "eventBody.data is missing or not a list"),
    (_set("data.0", "x"), "eventBody.data[0] is not an object"),
    (_set("data.0.interval", ...), "eventBody.data[0].interval is missing or not a string"),
    (_set("data.0.interval", 12), "eventBody.data[0].interval is missing or not a string"),
    (_set("data.0.interval", "2024-12-30T09:30:00.000Z"), "interval is not 'start/end'"),
    (_set("data.0.interval", "a/b/c"), "interval is not 'start/end'"),
    (_set("data.0.interval", "2024-12-30T09:30:00.000Z/PT30M"), "not an ISO-8601 instant"),
    (_set("data.0.interval", "yesterday/today"), "not an ISO-8601 instant: 'yesterday'"),
    (_set("data.0.interval", "2024-12-30T09:30:00/2024-12-30T10:00:00"), "has no UTC offset"),
    (_set("data.0.interval", "2024-12-30T10:00:00Z/2024-12-30T09:30:00Z"), "ends before"),
    (_set("data.0.metrics", None), "eventBody.data[0].metrics is missing or not a list"),
    (_set(f"{_M}.2", 7), "eventBody.data[0].metrics[2] is not an object"),
    (_set(f"{_M}.1.metric", ...), "metrics[1].metric is missing or not a string"),
    (_set(f"{_M}.1.metric", 5), "metrics[1].metric is missing or not a string"),
    (_set(f"{_M}.1.metric", "waiting"), "metrics[1].metric 'waiting' is not a Genesys metric"),
    (_set(f"{_M}.1.qualifier", 1), "metrics[1].qualifier is not a string"),
    (_set(f"{_M}.1.stats", ...), "metrics[1].stats is missing or not an object"),
    (_set(f"{_M}.1.stats", [1]), "metrics[1].stats is missing or not an object"),
    (_set(f"{_M}.1.stats.sum", "8277"), "metrics[1].stats.sum is not a number"),
    (_set(f"{_M}.1.stats.max", True), "metrics[1].stats.max is not a number"),
    (_set(f"{_M}.1.stats.count", 1.5), "metrics[1].stats.count is not a whole number: 1.5"),
    (_set(f"{_M}.1.stats.count", [1]), "metrics[1].stats.count is not a number"),
]


@pytest.mark.parametrize(("edit", "reason"), MALFORMED_STATS)
def test_malformed_stats_bodies_raise_a_mapping_error_with_the_reason(
    edit: Any, reason: str
) -> None:
    body = copy.deepcopy(AGGREGATE)
    edit(body)
    event = frame(QUEUE_OBS, body)
    with pytest.raises(MappingError) as caught:
        run(event)
    err = caught.value
    assert reason in err.reason
    assert isinstance(err, FrameError)
    assert (err.raw, err.topic, err.stage) == (event.raw, QUEUE_OBS, "map")


STATE_TOPIC = f"v2.users.{U}."
MALFORMED_STATES = [
    ("presence", {**PRESENCE, "presenceDefinition": None},
     "eventBody.presenceDefinition is missing or not an object"),
    ("presence", {**PRESENCE, "presenceDefinition": {"id": "x", "systemPresence": ""}},
     "eventBody.presenceDefinition.systemPresence is missing or not a non-empty string"),
    ("presence", {**PRESENCE, "modifiedDate": None},
     "eventBody.modifiedDate is missing or not a string"),
    ("presence", {**PRESENCE, "modifiedDate": "soon"},
     "eventBody.modifiedDate is not an ISO-8601 instant"),
    ("routingStatus", {"id": U}, "eventBody.routingStatus is missing or not an object"),
    ("routingStatus", {"routingStatus": {**ROUTING, "status": 3}},
     "eventBody.routingStatus.status is missing or not a non-empty string"),
    ("routingStatus", {"routingStatus": {"status": "IDLE"}},
     "eventBody.routingStatus.startTime is missing or not a string"),
    ("activity", {"id": U}, "eventBody has neither presence nor routingStatus"),
    ("activity", {"presence": "ON_QUEUE"}, "eventBody.presence is missing or not an object"),
    ("activity", {"presence": {"presenceDefinition": {"systemPresence": "AWAY"}}},
     "eventBody.presence.modifiedDate is missing or not a string"),
]  # fmt: skip


@pytest.mark.parametrize(("leaf", "body", "reason"), MALFORMED_STATES)
def test_malformed_user_state_bodies_raise_a_mapping_error(
    leaf: str, body: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MappingError, match=reason.replace(".", r"\.")):
        run(frame(STATE_TOPIC + leaf, body))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": U, "queueId": Q}, "eventBody.joined is missing or not a boolean"),
        ({"id": U, "joined": "yes"}, "eventBody.joined is missing or not a boolean"),
        ({"user": {}, "joined": True}, "eventBody.user.id (or eventBody.id) is missing"),
        ({"joined": True}, "eventBody.user.id (or eventBody.id) is missing"),
    ],
)
def test_malformed_membership_bodies_raise_a_mapping_error(
    body: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MappingError) as caught:
        run(frame(f"v2.routing.queues.{Q}.users", body))
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("v2.something.else", "unknown topic family: 'v2.something.else'"),
        (f"v2.routing.queues.{Q}.conversations", "no mapping for topic family "
                                                  "v2.routing.queues.{id}.conversations"),
    ],
)  # fmt: skip
def test_topics_without_a_mapping_are_refused(topic: str, reason: str) -> None:
    with pytest.raises(MappingError) as caught:
        run(frame(topic, {"group": {}, "data": []}))
    assert reason in caught.value.reason
    assert caught.value.topic == topic


def test_a_malformed_backfill_event_carries_its_body_as_json() -> None:
    body: Any = {"group": {"queueId": Q}, "data": "nope"}
    with pytest.raises(MappingError) as caught:
        run(BackfillEvent(QUEUE_OBS, body, 1.0, "gap"))
    assert caught.value.raw == orjson.dumps(body)
    with pytest.raises(MappingError, match="eventBody is not an object") as caught:
        run(BackfillEvent(QUEUE_OBS, ["x"], 1.0, "gap"))  # type: ignore[arg-type]  # on purpose
    assert caught.value.raw == b'["x"]'


def test_an_unexpected_error_still_becomes_a_mapping_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: object, where: str) -> tuple[int, int]:
        raise KeyError("surprise")

    monkeypatch.setattr(mapping, "interval", boom)
    with pytest.raises(MappingError, match="malformed eventBody \\(KeyError: 'surprise'\\)"):
        run(frame(QUEUE_OBS, AGGREGATE))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "IDLE", INSTANT, HALF_HOUR, "2024-12-30T09:30:00Z", "tHandle"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["group", "data", "interval", "metrics", "metric", "stats", "count",
                         "sum", "ratio", "qualifier", "mediaType", "presenceDefinition",
                         "systemPresence", "modifiedDate", "routingStatus", "status",
                         "startTime", "presence", "joined", "user", "id", "results",
                         "calculatedMetricValue"]),
        inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
_TOPICS = [QUEUE_OBS, f"v2.analytics.wrapup.{W}.aggregates", f"v2.users.{U}.presence",
           f"v2.users.{U}.routingStatus", f"v2.users.{U}.activity",
           f"v2.routing.queues.{Q}.users", f"v2.analytics.queues.{Q}.activity"]  # fmt: skip


def _outcome(event: TopicEvent) -> list[MetricRecord] | MappingError:
    try:
        return run(event)
    except MappingError as exc:
        return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_TOPICS), st.dictionaries(st.sampled_from(["group", "data",
       "presenceDefinition", "modifiedDate", "routingStatus", "presence", "joined", "user",
       "id", "results"]), _JSON, max_size=4))  # fmt: skip
def test_any_body_maps_or_raises_a_mapping_error(topic: str, body: dict[str, Any]) -> None:
    outcome = _outcome(frame(topic, body))
    if isinstance(outcome, MappingError):
        assert outcome.reason
        assert outcome.topic == topic
    else:
        assert all(type(r) is MetricRecord and r.event_id == metric_event_id(r) for r in outcome)


# ----------------------------------------------------------------------------- emulator bodies
START = datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def centre() -> ContactCenter:
    cc = ContactCenter(SimulationConfig(queues=3, agents=24, seed=5), START)
    cc.advance(START + timedelta(minutes=40))
    return cc


def _topics(cc: ContactCenter) -> list[str]:
    topics = [f"v2.analytics.queues.{q.id}.observations" for q in cc.queues]
    topics += [f"v2.analytics.queues.{q.id}.activity" for q in cc.queues]
    topics += [f"v2.routing.queues.{q.id}.users" for q in cc.queues]
    topics += [f"v2.analytics.wrapup.{w.id}.aggregates" for w in cc.wrapup_codes]
    for u in cc.users:
        topics += [f"v2.analytics.users.{u.id}.aggregates", f"v2.users.{u.id}.presence",
                   f"v2.users.{u.id}.routingStatus", f"v2.users.{u.id}.activity"]  # fmt: skip
    return topics


def _check(rec: MetricRecord, topic: str) -> None:
    assert rec.source_topic == topic
    assert rec.entity_id in topic
    assert rec.event_id == metric_event_id(rec)
    assert rec.unit in ("count", "ms", "ratio", "percent", "state")
    for number in (rec.count, rec.sum, rec.min, rec.max, rec.value):
        assert number is None or number >= 0
    if rec.interval_start is None:
        assert rec.interval_end is None
        assert rec.event_time <= INGEST_EMU
    else:
        assert rec.interval_end - rec.interval_start == 30 * 60 * 1000  # type: ignore[operator]
        assert rec.interval_start <= INGEST_EMU
        assert rec.event_time == INGEST_EMU
    if rec.metric == "routingStatus":
        assert rec.qualifier in ROUTING_STATUSES
    if rec.metric == "presence":
        assert rec.qualifier in SYSTEM_PRESENCES
    if rec.unit == "ratio" and rec.value is not None:
        assert rec.value <= 1
    if rec.metric == "serviceLevelPercent":
        assert rec.value is not None
        assert rec.value <= 100


INGEST_EMU = int((START + timedelta(minutes=40)).timestamp() * 1000)


def test_every_emulator_body_maps_with_sensible_values(centre: ContactCenter) -> None:
    seen: dict[str, set[str]] = {}
    for topic in _topics(centre):
        for body in bodies_for_topic(centre, topic):
            records = run(frame(topic, body), INGEST_EMU)
            assert records or not body.get("data", True)
            family = topic.replace(topic.split(".")[-2], "{id}", 1)
            for rec in records:
                _check(rec, topic)
                seen.setdefault(family, set()).add(rec.metric)
    assert len(seen) == 8  # every supported family produced records
    queue_metrics = seen["v2.analytics.queues.{id}.observations"]
    assert {"oWaiting", "oLongestWaiting", "oOnQueueUsers", "nOffered", "tHandle",
            "serviceLevelPercent", "averageHandleTimeMs"} <= queue_metrics  # fmt: skip
    assert seen["v2.routing.queues.{id}.users"] == {"member"}
    assert seen["v2.users.{id}.activity"] == {"presence", "routingStatus"}
    assert seen["v2.analytics.queues.{id}.activity"] == {"oAlerting", "oInteracting", "oWaiting",
                                                        "oFlow", "oLongestWaiting",
                                                        "oLongestInteracting"}  # fmt: skip
