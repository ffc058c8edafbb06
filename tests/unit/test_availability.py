"""The availability check builds §7 query bodies and reads their answers into a clear report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.genesys.topics import QueueId, UserId, WrapupCodeId
from pipeline.core.subscription import availability
from pipeline.core.subscription.availability import (
    CONVERSATION_AGGREGATES_PATH,
    QUEUE_OBSERVATIONS_PATH,
    USER_AGGREGATES_PATH,
    AvailabilityQuery,
    MetricAvailability,
    availability_query_bodies,
    availability_report,
    render_availability_text,
)
from pipeline.core.subscription.planner import ResolvedEntities
from pipeline.core.subscription.spec import load_spec, parse_spec
from pipeline.emulator.analytics import queries as analytics
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
NOW = datetime(2026, 5, 4, 10, 15, 30, 123456, tzinfo=UTC)
INTERVAL = "2026-05-04T09:15:30.000Z/2026-05-04T10:15:30.000Z"
Q1 = "8f7e2c1a-0000-4000-8000-000000000001"
Q2 = "8f7e2c1a-0000-4000-8000-000000000002"
U1 = "6a1b0000-0000-4000-8000-000000000001"
W1 = "d26c0cf8-309f-45b2-8be0-a71d019705ee"
OFFLINE = ResolvedEntities()


def queries(text: str, directory: ResolvedEntities = OFFLINE) -> list[AvailabilityQuery]:
    return availability_query_bodies(parse_spec(text), directory, now=NOW)


QUEUES = (
    "defaults: {media_types: [voice]}\n"
    "subscriptions:\n"
    f"  - name: q\n    queues: [{{id: {Q1}}}, {{id: {Q2}}}]\n"
    "    metrics: [oWaiting, offered, serviceLevelPercent, oOnQueueUsers, tHandle]\n"
)


def test_queue_metrics_split_into_observation_and_aggregate_queries() -> None:
    obs, agg = queries(QUEUES)
    clause = {"type": "or", "predicates": [
        {"dimension": "queueId", "value": Q1}, {"dimension": "queueId", "value": Q2}]}  # fmt: skip
    media = [{"dimension": "mediaType", "value": "voice"}]
    assert (obs.kind, obs.path, obs.dimension) == (
        "queue_observations",
        QUEUE_OBSERVATIONS_PATH,
        "queueId",
    )
    assert obs.body == {
        "filter": {"type": "and", "clauses": [clause], "predicates": media},
        "metrics": ["oWaiting", "oOnQueueUsers"],
    }
    assert (agg.kind, agg.path) == ("conversation_aggregates", CONVERSATION_AGGREGATES_PATH)
    assert agg.body == {
        "interval": INTERVAL,
        "granularity": "PT30M",
        "timeZone": "UTC",
        "groupBy": ["queueId"],
        "filter": {"type": "and", "clauses": [clause], "predicates": media},
        "metrics": ["nOffered", "oServiceLevel", "tHandle"],
    }
    assert (agg.subscription, agg.entity_ids, agg.metrics) == (
        "q",
        (Q1, Q2),
        ("nOffered", "oServiceLevel", "tHandle"),
    )


def test_several_media_types_become_a_second_or_clause() -> None:
    (obs,) = queries(
        f"subscriptions:\n  - {{name: q, queues: [{{id: {Q1}}}], metrics: [oWaiting], "
        "media_types: [voice, chat]}\n"
    )
    assert obs.body["filter"] == {
        "type": "and",
        "clauses": [
            {"type": "or", "predicates": [{"dimension": "queueId", "value": Q1}]},
            {"type": "or", "predicates": [{"dimension": "mediaType", "value": "voice"},
                                          {"dimension": "mediaType", "value": "chat"}]},
        ],
    }  # fmt: skip


def test_no_media_filter_is_a_plain_or() -> None:
    (obs,) = queries(
        f"subscriptions:\n  - {{name: q, queues: [{{id: {Q1}}}], metrics: [oWaiting]}}\n"
    )
    assert obs.body["filter"] == {
        "type": "or",
        "predicates": [{"dimension": "queueId", "value": Q1}],
    }


def test_many_queues_are_split_into_batches_of_one_hundred() -> None:
    refs = ", ".join(f"{{id: 00000000-0000-4000-8000-{i:012d}}}" for i in range(250))
    found = queries(f"subscriptions:\n  - {{name: q, queues: [{refs}], metrics: [oWaiting]}}\n")
    assert [len(q.entity_ids) for q in found] == [100, 100, 50]
    assert [len(q.body["filter"]["predicates"]) for q in found] == [100, 100, 50]


def test_user_metrics_use_the_user_aggregates_query() -> None:
    (query,) = queries(
        f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}, metrics: [tSystemPresence]}}\n"
    )
    assert (query.path, query.dimension) == (USER_AGGREGATES_PATH, "userId")
    assert query.body == {
        "interval": INTERVAL,
        "granularity": "PT30M",
        "timeZone": "UTC",
        "groupBy": ["userId"],
        "filter": {"type": "or", "predicates": [{"dimension": "userId", "value": U1}]},
        "metrics": ["tSystemPresence"],
    }


def test_wrapup_codes_group_conversation_aggregates_by_wrapup_code() -> None:
    (query,) = queries(
        "defaults: {media_types: [voice]}\n"
        f"subscriptions:\n  - {{name: w, wrapup_codes: [{{id: {W1}}}], metrics: [tHandle]}}\n"
    )
    assert (query.path, query.dimension, query.body["groupBy"]) == (
        CONVERSATION_AGGREGATES_PATH, "wrapUpCode", ["wrapUpCode"])  # fmt: skip
    # the media filter is for queue subscriptions only
    assert query.body["filter"] == {
        "type": "or",
        "predicates": [{"dimension": "wrapUpCode", "value": W1}],
    }


def test_analytics_settings_shape_the_window() -> None:
    (query,) = queries(
        "analytics: {granularity: PT1H, interval: P1D}\n"
        f"subscriptions:\n  - {{name: q, queues: [{{id: {Q1}}}], metrics: [nOffered]}}\n"
    )
    assert query.body["interval"] == "2026-05-03T10:15:30.000Z/2026-05-04T10:15:30.000Z"
    assert query.body["granularity"] == "PT1H"


def test_nothing_is_asked_without_metrics_or_resolved_entities() -> None:
    assert queries(f"subscriptions:\n  - {{name: q, queues: [{{id: {Q1}}}]}}\n") == []
    assert (
        queries("subscriptions:\n  - {name: q, queues: [{name: A}], metrics: [oWaiting]}\n") == []
    )


def test_names_resolve_through_the_directory() -> None:
    directory = ResolvedEntities(queues_by_name={"A": QueueId(Q1)}, fetched=True)
    (query,) = queries(
        "subscriptions:\n  - {name: q, queues: [{name: A}], metrics: [oWaiting]}\n", directory
    )
    assert query.entity_ids == (Q1,)


def test_a_naive_now_or_an_empty_batch_is_refused() -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        availability_query_bodies(parse_spec(QUEUES), OFFLINE, now=naive)
    with pytest.raises(ValueError, match="max_entities at least 1"):
        availability_query_bodies(parse_spec(QUEUES), OFFLINE, now=NOW, max_entities=0)


# ----------------------------------------------------------------------------- report

# docs/genesys-api.md §7.1 response (one queue with data, a queue-only group for user metrics)
OBSERVATIONS_ANSWER = {
    "systemToOrganizationMappings": {"ON_QUEUE": ["p1"]},
    "results": [
        {"group": {"queueId": Q1, "mediaType": "voice"},
         "data": [{"metric": "oWaiting", "stats": {"count": 2}, "truncated": False}]},
        {"group": {"queueId": Q1},
         "data": [{"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 3}}]},
        {"group": {"queueId": Q2, "mediaType": "voice"},
         "data": [{"metric": "oWaiting", "stats": {"count": 0}}]},
    ],
}  # fmt: skip
# docs/genesys-api.md §7.2 response: Q2 had no conversations; tHandle has no data anywhere
AGGREGATES_ANSWER = {
    "results": [
        {"group": {"queueId": Q1},
         "data": [{"interval": "2026-05-04T09:30:00.000Z/2026-05-04T10:00:00.000Z",
                   "metrics": [{"metric": "nOffered", "stats": {"count": 12}},
                               {"metric": "oServiceLevel",
                                "stats": {"ratio": 0.8, "numerator": 8, "denominator": 10}}]}]},
    ]
}  # fmt: skip


def test_the_report_says_which_metric_has_data_for_which_queue() -> None:
    report = availability_report(queries(QUEUES), [OBSERVATIONS_ANSWER, AGGREGATES_ANSWER])
    assert report.entries == (
        MetricAvailability("q", "oWaiting", (Q1, Q2), ()),
        MetricAvailability("q", "oOnQueueUsers", (Q1,), (Q2,)),
        MetricAvailability("q", "nOffered", (Q1,), (Q2,)),
        MetricAvailability("q", "oServiceLevel", (Q1,), (Q2,)),
        MetricAvailability("q", "tHandle", (), (Q1, Q2)),
    )
    assert [e.metric for e in report.missing] == ["tHandle"]


def test_an_empty_answer_means_no_data() -> None:
    report = availability_report(queries(QUEUES), [{}, {}])
    assert all(not e.available for e in report.entries)


def test_batches_of_one_subscription_merge_into_one_entry() -> None:
    refs = ", ".join(f"{{id: 00000000-0000-4000-8000-{i:012d}}}" for i in range(150))
    found = queries(f"subscriptions:\n  - {{name: q, queues: [{refs}], metrics: [oWaiting]}}\n")
    last = found[1].entity_ids[-1]
    answer = {
        "results": [{"group": {"queueId": last}, "data": [{"metric": "oWaiting", "stats": {}}]}]
    }
    (entry,) = availability_report(found, [{}, answer]).entries
    assert (entry.with_data, len(entry.without_data)) == ((last,), 149)


def test_user_and_wrapup_answers_are_read_by_their_group_key() -> None:
    found = queries(
        f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}, metrics: [tAgentRoutingStatus]}}\n"
        f"  - {{name: w, wrapup_codes: [{{id: {W1}}}], metrics: [tHandle]}}\n"
    )
    user_answer = {"results": [{"group": {"userId": U1}, "data": [
        {"interval": INTERVAL, "metrics": [{"metric": "tAgentRoutingStatus", "qualifier": "IDLE",
                                            "stats": {"sum": 1000, "count": 1}}]}]}]}  # fmt: skip
    code_answer = {"results": [{"group": {"wrapUpCode": W1}, "data": [
        {"interval": INTERVAL,
         "metrics": [{"metric": "tHandle", "stats": {"count": 1}}]}]}]}  # fmt: skip
    report = availability_report(found, [user_answer, code_answer])
    assert [e.available for e in report.entries] == [True, True]


@pytest.mark.parametrize(
    "garbage",
    [None, [], "x", {"results": "x"}, {"results": [1, {"group": 2}, {"group": {"queueId": 3}}]},
     {"results": [{"group": {"queueId": Q1}, "data": [1, {"metric": 2}]}]}],
)  # fmt: skip
def test_an_answer_of_the_wrong_shape_counts_as_no_data(garbage: Any) -> None:
    report = availability_report(queries(QUEUES)[:1], [garbage])
    assert all(not e.available for e in report.entries)


def test_queries_and_answers_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 queries but 1 answers"):
        availability_report(queries(QUEUES), [{}])


def test_report_text_and_dict() -> None:
    report = availability_report(queries(QUEUES), [OBSERVATIONS_ANSWER, AGGREGATES_ANSWER])
    lines = render_availability_text(report).splitlines()
    assert lines[0] == "q oWaiting: data for 2 of 2"
    assert (
        lines[-1] == "q tHandle: data for 0 of 2 (none: unavailable, no permission, or no activity)"
    )
    assert report.to_dict()["metrics"][1] == {
        "subscription": "q",
        "metric": "oOnQueueUsers",
        "with_data": [Q1],
        "without_data": [Q2],
    }
    assert render_availability_text(availability_report([], [])) == (
        "availability: nothing to check (no subscription lists metrics)"
    )


# ----------------------------------------------------------------------------- with the emulator

QUERY_ENGINE = {
    QUEUE_OBSERVATIONS_PATH: analytics.query_queue_observations,
    CONVERSATION_AGGREGATES_PATH: analytics.query_conversation_aggregates,
    USER_AGGREGATES_PATH: analytics.query_user_aggregates,
}


def test_the_example_checks_out_against_the_emulators_query_engine() -> None:
    start = datetime(2026, 5, 4, 9, tzinfo=UTC)
    cc = ContactCenter(SimulationConfig(), start)
    now = start + timedelta(hours=1)
    cc.advance(now)
    directory = ResolvedEntities(
        queues_by_name={q.name: QueueId(q.id) for q in cc.queues},
        queue_members={QueueId(q.id): tuple(UserId(cc.users[u].id) for u in cc.members(i))
                       for i, q in enumerate(cc.queues)},
        wrapup_codes_by_name={w.name: WrapupCodeId(w.id) for w in cc.wrapup_codes},
        fetched=True,
    )  # fmt: skip
    found = availability_query_bodies(load_spec(EXAMPLE), directory, now=now)
    answers = [QUERY_ENGINE[q.path](cc, q.body) for q in found]  # raises QueryError if malformed
    report = availability_report(found, answers)
    by_metric = {(e.subscription, e.metric): e for e in report.entries}
    assert by_metric[("support-queues", "oWaiting")].without_data == ()
    assert by_metric[("support-queues", "nOffered")].available
    assert by_metric[("support-agents", "tSystemPresence")].available
    assert by_metric[("wrapups", "tHandle")].available


def test_module_exports_exist() -> None:
    assert all(hasattr(availability, name) for name in availability.__all__)
