"""The analytics query engine validates like Genesys, buckets and groups, and agrees with the
topic bodies at the same simulated instant."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import PureCloudPlatformClientV2
import pytest
from PureCloudPlatformClientV2 import models as sdk_models

from pipeline.emulator.analytics import queries as analytics
from pipeline.emulator.analytics.queries import QueryError
from pipeline.emulator.analytics.request import bucket_edges
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import (
    INTERVAL_MS,
    RECORDED_METRICS,
    SimulationConfig,
    format_interval,
)
from pipeline.emulator.simulation.topics import bodies_for_topic

START = datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC)
WHOLE = "2026-05-04T09:00:00.000Z/2026-05-04T12:00:00.000Z"
ALL_RECORDED = list(RECORDED_METRICS)


# The engine returns dict[str, object]; these wrappers type responses loosely so assertions can
# index into them.
def query_conversation_aggregates(cc: ContactCenter, body: Any) -> Any:
    return analytics.query_conversation_aggregates(cc, body)


def query_queue_observations(cc: ContactCenter, body: Any) -> Any:
    return analytics.query_queue_observations(cc, body)


def query_user_aggregates(cc: ContactCenter, body: Any) -> Any:
    return analytics.query_user_aggregates(cc, body)


def query_routing_activity(cc: ContactCenter, body: Any) -> Any:
    return analytics.query_routing_activity(cc, body)


def topic_bodies(cc: ContactCenter, topic: str) -> list[Any]:
    return bodies_for_topic(cc, topic)


@pytest.fixture(scope="module")
def cc() -> ContactCenter:
    """A busy centre, 2 h 40 min in: inside the 11:30 interval, with history behind it."""
    centre = ContactCenter(
        SimulationConfig(queues=5, agents=60, seed=5, arrival_rate_per_queue_per_min=2.5), START
    )
    centre.advance(START + timedelta(hours=2, minutes=40))
    return centre


def current(cc: ContactCenter) -> str:
    return format_interval(cc.interval_start_ms, cc.interval_start_ms + INTERVAL_MS)


def by_group(response: Mapping[str, Any]) -> dict[tuple[tuple[str, str], ...], list[Any]]:
    return {tuple(sorted(r["group"].items())): r["data"] for r in response.get("results", [])}


def metric_map(metrics: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(m["metric"], m.get("qualifier")): m["stats"] for m in metrics}


# ----------------------------------------------------------------------------- SDK models
def _walk_model(data: Any, swagger_type: str, path: str) -> Iterator[str]:
    """Yield a problem for every key the SDK model would not know or would mistype."""
    if swagger_type.startswith("list["):
        assert isinstance(data, list), path
        for i, item in enumerate(data):
            yield from _walk_model(item, swagger_type[5:-1], f"{path}[{i}]")
    elif swagger_type.startswith("dict("):
        assert isinstance(data, dict), path
        inner = swagger_type[5:-1].split(", ", 1)[1]
        for key, value in data.items():
            yield from _walk_model(value, inner, f"{path}.{key}")
    elif swagger_type in ("str", "datetime"):
        if not isinstance(data, str):
            yield f"{path}: expected a string, got {data!r}"
    elif swagger_type in ("int", "float"):
        if isinstance(data, bool) or not isinstance(data, int | float):
            yield f"{path}: expected a number, got {data!r}"
        elif swagger_type == "int" and not isinstance(data, int):
            yield f"{path}: expected an integer, got {data!r}"
    elif swagger_type == "bool":
        if not isinstance(data, bool):
            yield f"{path}: expected a boolean"
    else:
        model = getattr(sdk_models, swagger_type)()
        by_json = {json: attr for attr, json in model.attribute_map.items()}
        assert isinstance(data, dict), path
        for key, value in data.items():
            if key not in by_json:
                yield f"{path}.{key}: not a field of {swagger_type}"
            else:
                yield from _walk_model(value, model.swagger_types[by_json[key]], f"{path}.{key}")


def assert_sdk_model(data: Mapping[str, Any], model: str) -> Any:
    """Every key exists in the SDK model with the right type, and the SDK deserialises it."""
    problems = list(_walk_model(data, model, model))
    assert problems == []
    client = PureCloudPlatformClientV2.ApiClient()
    return client._ApiClient__deserialize(data, model)


def test_observation_response_deserialises_with_the_sdk(cc: ContactCenter) -> None:
    response = query_queue_observations(cc, {
        "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": q.id}
                                                for q in cc.queues[:2]]},
        "metrics": sorted(["oWaiting", "oInteracting", "oAlerting", "oLongestWaiting",
                           "oLongestInteracting", "oOnQueueUsers", "oUserRoutingStatuses",
                           "oUserPresences", "oActiveUsers", "oMemberUsers", "oOffQueueUsers"]),
        "detailMetrics": ["oInteracting", "oOnQueueUsers"],
    })  # fmt: skip
    model = assert_sdk_model(response, "QueueObservationQueryResponse")
    assert model.system_to_organization_mappings["ON_QUEUE"] == [cc.org_presence_ids["ON_QUEUE"]]
    assert len(model.results) == sum(len(q.media_types) + 1 for q in cc.queues[:2])
    for container in model.results:
        assert container.group["queueId"] in {q.id for q in cc.queues[:2]}
        for item in container.data:
            assert item.metric is not None
            assert item.stats.count is not None
    details = [i for c in model.results for i in c.data if i.observations]
    assert details, "detail metrics carry observations"
    for item in details:
        assert item.truncated is False
        for observation in item.observations:
            assert observation.observation_date is not None
            assert (observation.conversation_id or observation.user_id) is not None


def test_aggregate_response_deserialises_with_the_sdk(cc: ContactCenter) -> None:
    response = query_conversation_aggregates(cc, {
        "interval": WHOLE, "granularity": "PT30M", "groupBy": ["queueId", "mediaType"],
        "metrics": ALL_RECORDED,
    })  # fmt: skip
    model = assert_sdk_model(response, "ConversationAggregateQueryResponse")
    assert model.results
    for container in model.results:
        assert set(container.group) == {"queueId", "mediaType"}
        for bucket in container.data:
            assert bucket.interval is not None
            for metric in bucket.metrics:
                assert metric.metric in RECORDED_METRICS
                assert metric.stats is not None
                if metric.metric == "oServiceLevel":
                    assert metric.stats.ratio is not None
                    assert metric.stats.target is not None
                else:
                    assert metric.stats.count >= 1


def test_user_and_activity_responses_deserialise_with_the_sdk(cc: ContactCenter) -> None:
    users = query_user_aggregates(cc, {
        "interval": WHOLE, "granularity": "PT1H", "groupBy": ["userId"],
        "metrics": ["tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence"],
    })  # fmt: skip
    model = assert_sdk_model(users, "UserAggregateQueryResponse")
    assert model.system_to_organization_mappings
    assert {c.group["userId"] for c in model.results} <= {u.id for u in cc.users}
    stats = model.results[0].data[0].metrics[0].stats
    assert stats.sum is not None
    assert stats.count is not None
    activity = query_routing_activity(cc, {
        "metrics": [{"metric": "oOnQueueUsers", "details": True}, {"metric": "oMemberUsers"}],
        "groupBy": ["queueId"],
    })  # fmt: skip
    model = assert_sdk_model(activity, "RoutingActivityResponse")
    assert model.entity_id_dimension == "userId"
    assert all(d.count >= 1 for r in model.results for d in r.data)


def test_topic_bodies_deserialise_with_the_sdk(cc: ContactCenter) -> None:
    queue, user, code = cc.queues[0], cc.users[0], cc.wrapup_codes[0]
    cases = [
        (f"v2.analytics.queues.{queue.id}.observations", "StatEventQueueTopicStatsNotification"),
        (
            f"v2.analytics.queues.{queue.id}.activity",
            "V2QueueObservationObservationCountNotification",
        ),
        (f"v2.analytics.users.{user.id}.aggregates", "StatEventUserTopicStatsNotification"),
        (f"v2.analytics.wrapup.{code.id}.aggregates", "StatEventWrapUpCodeTopicStatsNotification"),
        (f"v2.routing.queues.{queue.id}.users", "QueueUserEventTopicQueueMember"),
        (f"v2.users.{user.id}.presence", "PresenceEventUserPresence"),
        (f"v2.users.{user.id}.routingStatus", "UserRoutingStatusUserRoutingStatus"),
        (f"v2.users.{user.id}.activity", "AgentActivityChangedTopicAgentActivity"),
    ]
    for topic, model_name in cases:
        bodies = topic_bodies(cc, topic)
        assert bodies, topic
        for body in bodies:
            model = assert_sdk_model(body, model_name)
            for attr in model.attribute_map:
                if model.attribute_map[attr] in body:
                    value = getattr(model, attr)
                    assert value is not None, (topic, attr)
                    assert not isinstance(value, str) or value != "outdated_sdk_version"


# ----------------------------------------------------------------------------- validation
def aggregates(cc: ContactCenter, **body: Any) -> Any:
    return query_conversation_aggregates(cc, {"interval": WHOLE, "metrics": ["nOffered"], **body})


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"metrics": ["nOfferd"]}, "invalid.value", "nOfferd"),
        ({"metrics": ["nAnswered"]}, "invalid.value", "nAnswered"),
        ({"metrics": []}, "constraint.validation", "metrics"),
        ({"metrics": "nOffered"}, "bad.request", "metrics"),
        ({"interval": None}, "constraint.validation", "interval"),
        ({"interval": 5}, "bad.request", "interval"),
        ({"interval": "yesterday"}, "invalid.value", "interval"),
        ({"interval": "2026-05-04T10:00:00Z/2026-05-04T09:00:00Z"}, "constraint.validation",
         "end must be after start"),
        ({"interval": "2026-01-01T00:00:00Z/2026-03-01T00:00:00Z"}, "constraint.validation",
         "31 days"),
        ({"granularity": "PT7M"}, "constraint.validation", "PT15M"),
        ({"granularity": "banana"}, "invalid.value", "granularity"),
        ({"granularity": "P1D"}, "constraint.validation", "longer than the interval"),
        ({"groupBy": ["skillGroupId"]}, "invalid.value", "skillGroupId"),
        ({"groupBy": ["queueid"]}, "invalid.value", "did you mean queueId"),
        ({"timeZone": "Mars/Olympus"}, "invalid.value", "timeZone"),
        ({"filter": {"predicates": []}}, "constraint.validation", "filter.type"),
        ({"filter": {"type": "xor"}}, "invalid.value", "filter.type"),
        ({"filter": {"type": "and", "predicates": [{"dimension": "skill", "value": "x"}]}},
         "invalid.value", "filter.predicates[0].dimension"),
        ({"filter": {"type": "and", "predicates": [{"dimension": "queueId"}]}},
         "constraint.validation", "value"),
        ({"filter": {"type": "and", "predicates": [{"dimension": "queueId", "operator": "like",
                                                    "value": "x"}]}}, "invalid.value", "operator"),
        ({"views": [{"target": "tHandle", "name": "x", "function": "rangeBound"}]}, "bad.request",
         "views"),
    ],
)  # fmt: skip
def test_aggregate_query_rejects_bad_bodies(
    cc: ContactCenter, body: dict[str, Any], code: str, needle: str
) -> None:
    with pytest.raises(QueryError) as caught:
        aggregates(cc, **body)
    assert caught.value.status == 400
    assert caught.value.code == code
    assert needle in caught.value.message
    assert needle in str(caught.value)


def test_query_rejects_a_body_that_is_not_an_object(cc: ContactCenter) -> None:
    for query in (query_conversation_aggregates, query_queue_observations, query_user_aggregates,
                  query_routing_activity):  # fmt: skip
        with pytest.raises(QueryError) as caught:
            query(cc, ["not", "an", "object"])
        assert caught.value.code == "bad.request"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"metrics": ["oWaiting"]}, "constraint.validation", "filter"),
        ({"filter": {"type": "and", "predicates": [{"dimension": "userId", "value": "x"}]},
          "metrics": ["oWaiting"]}, "invalid.value", "userId"),
        ({"filter": {"type": "and", "predicates": []}, "metrics": ["oWating"]}, "invalid.value",
         "did you mean oWaiting"),
        ({"filter": {"type": "and", "predicates": []}, "metrics": ["oWaiting"],
          "detailMetrics": ["oLongestWaiting"]}, "invalid.value", "oLongestWaiting"),
    ],
)  # fmt: skip
def test_observation_query_rejects_bad_bodies(
    cc: ContactCenter, body: dict[str, Any], code: str, needle: str
) -> None:
    with pytest.raises(QueryError) as caught:
        query_queue_observations(cc, body)
    assert (caught.value.code, needle in caught.value.message) == (code, True)


def test_user_query_accepts_only_user_metrics_and_dimensions(cc: ContactCenter) -> None:
    with pytest.raises(QueryError, match="tHandle") as caught:
        query_user_aggregates(cc, {"interval": WHOLE, "metrics": ["tHandle"]})
    assert caught.value.code == "invalid.value"
    with pytest.raises(QueryError, match="queueId"):
        query_user_aggregates(cc, {"interval": WHOLE, "metrics": ["tSystemPresence"],
                                   "groupBy": ["queueId"]})  # fmt: skip


def test_real_but_unsimulated_metrics_give_no_data(cc: ContactCenter) -> None:
    assert aggregates(cc, metrics=["tIvr", "nBotInteractions"]) == {}
    assert aggregates(cc, interval="2026-05-01T00:00:00Z/2026-05-02T00:00:00Z") == {}


# ----------------------------------------------------------------------------- bucketing
def test_bucket_edges_align_to_interval_start_with_a_partial_last_bucket() -> None:
    utc = ZoneInfo("UTC")
    assert bucket_edges(0, 3_600_000, None, utc) == [0, 3_600_000]
    assert bucket_edges(0, 3_600_000, "PT30M", utc) == [0, 1_800_000, 3_600_000]
    assert bucket_edges(0, 4_000_000, "PT30M", utc) == [0, 1_800_000, 3_600_000, 4_000_000]
    assert len(bucket_edges(0, 86_400_000, "PT15M", utc)) == 97


def test_daily_buckets_follow_the_time_zone_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = int(datetime(2026, 3, 27, 23, 0, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(2026, 3, 30, 22, 0, tzinfo=UTC).timestamp() * 1000)
    edges = bucket_edges(start, end, "P1D", berlin)
    lengths = [(b - a) / 3_600_000 for a, b in itertools.pairwise(edges)]
    assert lengths == [24, 23, 24]  # 29 March 2026 is 23 hours long in Berlin


def total_stats(response: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Merge every bucket and group: count and sum add up, min/max take the extremes."""
    merged: dict[str, dict[str, float]] = {}
    for result in response.get("results", []):
        for bucket in result["data"]:
            for entry in bucket["metrics"]:
                stats, into = entry["stats"], merged.setdefault(entry["metric"], {})
                for key in ("count", "sum", "numerator", "denominator"):
                    if key in stats:
                        into[key] = into.get(key, 0) + stats[key]
                if "min" in stats:
                    into["min"] = min(into.get("min", stats["min"]), stats["min"])
                    into["max"] = max(into.get("max", stats["max"]), stats["max"])
    return merged


@pytest.mark.parametrize("granularity", ["PT15M", "PT30M", "PT45M", "PT1H", "P1D"])
def test_any_granularity_adds_up_to_the_whole_interval(cc: ContactCenter, granularity: str) -> None:
    interval = "2026-05-04T09:00:00.000Z/2026-05-05T09:00:00.000Z"
    whole = query_conversation_aggregates(cc, {"interval": interval, "metrics": ALL_RECORDED})
    split = query_conversation_aggregates(cc, {"interval": interval, "metrics": ALL_RECORDED,
                                               "granularity": granularity})  # fmt: skip
    assert total_stats(split) == total_stats(whole)
    assert total_stats(whole)["nOffered"]["count"] > 500
    (result,) = split["results"]
    edges = bucket_edges(cc.start_ms, cc.start_ms + 86_400_000, granularity, ZoneInfo("UTC"))
    intervals = [bucket["interval"] for bucket in result["data"]]
    assert intervals == sorted(intervals)
    expected = {format_interval(a, b) for a, b in itertools.pairwise(edges)}
    assert set(intervals) <= expected


def test_empty_buckets_are_left_out(cc: ContactCenter) -> None:
    response = aggregates(cc, interval="2026-05-04T06:00:00Z/2026-05-04T10:00:00Z",
                          granularity="PT1H")  # fmt: skip
    intervals = [b["interval"] for b in response["results"][0]["data"]]
    assert intervals == [
        "2026-05-04T09:00:00.000Z/2026-05-04T10:00:00.000Z",
    ]


def test_bucket_counts_events_that_completed_inside_it(cc: ContactCenter) -> None:
    response = aggregates(cc, granularity="PT30M", metrics=["nOffered"])
    counts = [b["metrics"][0]["stats"]["count"] for b in response["results"][0]["data"]]
    rows = [0] * 6
    for chunk in cc.emissions.chunks(cc.start_ms, cc.start_ms + 3 * 3_600_000):
        for t, code in zip(chunk.time, chunk.metric, strict=True):
            if RECORDED_METRICS[code] == "nOffered" and t < cc.start_ms + 3 * 3_600_000:
                rows[(t - cc.start_ms) // INTERVAL_MS] += 1
    assert counts == rows


def test_row_on_a_bucket_edge_belongs_to_the_later_bucket(cc: ContactCenter) -> None:
    chunk = cc.emissions.chunks(cc.start_ms, cc.start_ms + INTERVAL_MS)[0]
    edge = chunk.time[len(chunk.time) // 2]
    quarter = 15 * 60_000
    response = aggregates(cc, interval=format_interval(edge - quarter, edge + quarter),
                          granularity="PT15M", metrics=ALL_RECORDED)  # fmt: skip
    buckets = {b["interval"]: b["metrics"] for b in response["results"][0]["data"]}
    later = total_stats({"results": [{"data": [{"metrics": buckets[format_interval(
        edge, edge + quarter)]}]}]})  # fmt: skip
    expected: Counter[str] = Counter()
    for c in cc.emissions.chunks(edge, edge + quarter):
        for t, code in zip(c.time, c.metric, strict=True):
            if edge <= t < edge + quarter:
                expected[RECORDED_METRICS[code]] += 1
    assert {m: s["count"] if "count" in s else s["denominator"] for m, s in later.items()} == (
        dict(expected)
    )


# ----------------------------------------------------------------------------- group / filter
def test_grouping_partitions_the_totals(cc: ContactCenter) -> None:
    whole = total_stats(aggregates(cc, metrics=ALL_RECORDED))
    for group_by in (["queueId"], ["mediaType"], ["queueId", "mediaType"], ["direction"],
                     ["purpose"], ["userId"], ["wrapUpCode"]):  # fmt: skip
        response = aggregates(cc, metrics=ALL_RECORDED, groupBy=group_by)
        assert total_stats(response) == whole, group_by
        keys = [tuple(sorted(r["group"].items())) for r in response["results"]]
        assert len(keys) == len(set(keys))


def test_rows_without_a_dimension_group_without_that_key(cc: ContactCenter) -> None:
    response = aggregates(cc, metrics=["nOffered", "tHandle"], groupBy=["userId"])
    results = response["results"]
    no_user = [r for r in results if r["group"] == {}]
    with_user = [r for r in results if "userId" in r["group"]]
    assert len(no_user) == 1
    assert {m["metric"] for d in no_user[0]["data"] for m in d["metrics"]} == {"nOffered"}
    assert {m["metric"] for r in with_user for d in r["data"] for m in d["metrics"]} == {"tHandle"}
    assert {r["group"]["userId"] for r in with_user} <= {u.id for u in cc.users}


def test_filter_by_queue_equals_that_queues_group(cc: ContactCenter) -> None:
    grouped = by_group(aggregates(cc, metrics=ALL_RECORDED, groupBy=["queueId"]))
    for queue in cc.queues[:3]:
        filtered = aggregates(cc, metrics=ALL_RECORDED, filter={
            "type": "and", "predicates": [{"type": "dimension", "dimension": "queueId",
                                           "operator": "matches", "value": queue.id}]})  # fmt: skip
        (result,) = filtered["results"]
        assert result["data"] == grouped[(("queueId", queue.id),)]


def test_and_or_clauses_combine(cc: ContactCenter) -> None:
    one, two = cc.queues[0].id, cc.queues[1].id
    body = {
        "type": "and",
        "predicates": [{"dimension": "mediaType", "value": "voice"}],
        "clauses": [{"type": "or", "predicates": [{"dimension": "queueId", "value": one},
                                                  {"dimension": "queueId", "value": two}]}],
    }  # fmt: skip
    response = aggregates(cc, metrics=ALL_RECORDED, groupBy=["queueId", "mediaType"],
                          filter=body)  # fmt: skip
    groups = set(by_group(response))
    assert groups == {(("mediaType", "voice"), ("queueId", one)),
                      (("mediaType", "voice"), ("queueId", two))}  # fmt: skip


def test_exists_and_not_exists_operators(cc: ContactCenter) -> None:
    def with_operator(operator: str) -> Any:
        predicate = {"dimension": "userId", "operator": operator}
        return aggregates(cc, metrics=["nOffered", "tHandle"],
                          filter={"type": "and", "predicates": [predicate]})  # fmt: skip

    assert set(total_stats(with_operator("exists"))) == {"tHandle"}
    assert set(total_stats(with_operator("notExists"))) == {"nOffered"}


def test_user_query_splits_status_time_over_buckets(cc: ContactCenter) -> None:
    body = {"interval": WHOLE, "metrics": ["tAgentRoutingStatus"], "groupBy": ["userId"]}
    whole = query_user_aggregates(cc, body)
    split = query_user_aggregates(cc, {**body, "granularity": "PT30M"})
    assert assert_sums(whole) == assert_sums(split)
    user = cc.users[3].id
    only = query_user_aggregates(cc, {**body, "filter": {"type": "or", "predicates": [
        {"dimension": "userId", "value": user}]}})  # fmt: skip
    assert [r["group"] for r in only["results"]] == [{"userId": user}]
    assert by_group(only)[(("userId", user),)] == by_group(whole)[(("userId", user),)]


def assert_sums(response: Mapping[str, Any]) -> dict[tuple[str, str, str], float]:
    sums: dict[tuple[str, str, str], float] = {}
    for result in response["results"]:
        for bucket in result["data"]:
            start, end = bucket["interval"].split("/")
            length = (datetime.fromisoformat(end) - datetime.fromisoformat(start)) / timedelta(
                milliseconds=1
            )
            total = 0.0
            for entry in bucket["metrics"]:
                key = (result["group"]["userId"], entry["metric"], entry["qualifier"])
                sums[key] = sums.get(key, 0) + entry["stats"]["sum"]
                total += entry["stats"]["sum"]
            assert total <= length  # one status at a time
    return sums


# ----------------------------------------------------------------------------- consistency
def test_current_interval_query_equals_the_aggregate_topic_bodies(cc: ContactCenter) -> None:
    response = query_conversation_aggregates(cc, {
        "interval": current(cc), "groupBy": ["queueId", "mediaType"], "metrics": ALL_RECORDED,
    })  # fmt: skip
    queried = by_group(response)
    streamed: dict[tuple[tuple[str, str], ...], list[Any]] = {}
    for queue in cc.queues:
        for body in topic_bodies(cc, f"v2.analytics.queues.{queue.id}.observations"):
            if body["data"][0]["interval"] == current(cc):
                streamed[tuple(sorted(body["group"].items()))] = body["data"]
    assert streamed
    assert queried == streamed


def test_current_interval_wrapup_query_equals_the_wrapup_topic(cc: ContactCenter) -> None:
    response = query_conversation_aggregates(cc, {
        "interval": current(cc), "groupBy": ["wrapUpCode", "queueId", "mediaType"],
        "metrics": ["tHandle", "tTalk", "tHeld", "tAcw", "nTransferred"],  # as the topic orders
    })  # fmt: skip
    streamed = {}
    for code in cc.wrapup_codes:
        for body in topic_bodies(cc, f"v2.analytics.wrapup.{code.id}.aggregates"):
            streamed[tuple(sorted(body["group"].items()))] = body["data"]
    assert streamed
    assert by_group(response) == streamed


def test_current_interval_user_query_equals_the_user_topic(cc: ContactCenter) -> None:
    response = query_user_aggregates(cc, {
        "interval": current(cc), "groupBy": ["userId"],
        "metrics": ["tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence"],
    })  # fmt: skip
    streamed = {}
    for user in cc.users:
        for body in topic_bodies(cc, f"v2.analytics.users.{user.id}.aggregates"):
            streamed[tuple(sorted(body["group"].items()))] = body["data"]
    assert streamed
    assert by_group(response) == streamed


def test_observation_query_agrees_with_the_topic_as_time_passes() -> None:
    centre = ContactCenter(SimulationConfig(queues=3, agents=12, seed=9,
                                            arrival_rate_per_queue_per_min=4), START)  # fmt: skip
    metrics = ["oWaiting", "oInteracting", "oAlerting", "oOnQueueUsers", "oUserRoutingStatuses",
               "oUserPresences", "oActiveUsers", "oMemberUsers", "oOffQueueUsers"]  # fmt: skip
    waiting_seen = 0
    for minute in range(1, 40, 3):
        centre.advance(START + timedelta(minutes=minute, seconds=minute))
        response = query_queue_observations(centre, {
            "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": q.id}
                                                    for q in centre.queues]},
            "metrics": metrics,
        })  # fmt: skip
        queried = {key: metric_map(data) for key, data in by_group(response).items()}
        for queue in centre.queues:
            bodies = topic_bodies(centre, f"v2.analytics.queues.{queue.id}.observations")
            for body in bodies:
                data = body["data"][0]
                start, end = data["interval"].split("/")
                if start != end:
                    continue  # aggregate flavour
                key = tuple(sorted(body["group"].items()))
                streamed = {k: v for k, v in metric_map(data["metrics"]).items()
                            if not k[0].startswith("oLongest")}  # fmt: skip
                assert queried[key] == streamed
                waiting_seen += streamed.get(("oWaiting", None), {}).get("count", 0)
    assert waiting_seen > 0


def test_observation_query_filters_by_media_type(cc: ContactCenter) -> None:
    response = query_queue_observations(cc, {
        "filter": {"type": "and", "predicates": [{"dimension": "mediaType", "value": "voice"}]},
        "metrics": ["oWaiting", "oMemberUsers"],
    })  # fmt: skip
    groups = [r["group"] for r in response["results"]]
    assert {g.get("mediaType") for g in groups} == {"voice", None}
    assert len(groups) == 2 * len(cc.queues)


def test_routing_activity_agrees_with_the_agent_state_body(cc: ContactCenter) -> None:
    metrics = ["oOnQueueUsers", "oUserRoutingStatuses", "oUserPresences", "oActiveUsers",
               "oMemberUsers", "oOffQueueUsers"]  # fmt: skip
    response = query_routing_activity(cc, {"metrics": [{"metric": m} for m in metrics],
                                           "groupBy": ["queueId"]})  # fmt: skip
    activity = {r["group"]["queueId"]: r["data"] for r in response["results"]}
    for queue in cc.queues:
        body = next(b for b in topic_bodies(cc, f"v2.analytics.queues.{queue.id}.observations")
                    if "mediaType" not in b["group"])  # fmt: skip
        streamed = {(e["metric"], e.get("qualifier")): e["stats"]["count"]
                    for e in body["data"][0]["metrics"] if e["stats"]["count"]}  # fmt: skip
        queried = {(d["metric"], d.get("qualifier")): d["count"] for d in activity[queue.id]}
        assert queried == streamed
