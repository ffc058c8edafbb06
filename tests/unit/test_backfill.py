"""REST snapshots planned from topics and turned back into topic-shaped bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.core.genesys.backfill import (
    BATCH,
    aggregate_events,
    current_interval,
    observation_events,
    plan_snapshot,
    user_aggregate_events,
)

NOW = datetime(2026, 5, 4, 10, 47, 12, tzinfo=UTC).timestamp()
Q1, Q2 = "8f7e2c1a-0000-4000-8000-000000000001", "8f7e2c1a-0000-4000-8000-000000000002"
U1 = "6a1b0000-0000-4000-8000-000000000001"


def test_current_interval_is_the_enclosing_half_hour() -> None:
    assert current_interval(NOW) == "2026-05-04T10:30:00.000Z/2026-05-04T11:00:00.000Z"
    on_edge = datetime(2026, 5, 4, 11, 0, tzinfo=UTC).timestamp()
    assert current_interval(on_edge).startswith("2026-05-04T11:00:00.000Z/")


def test_plan_covers_queue_and_user_topics_only() -> None:
    plan = plan_snapshot(
        [
            f"v2.analytics.queues.{Q2}.observations",
            f"v2.analytics.queues.{Q1}.observations",
            f"v2.analytics.users.{U1}.aggregates",
            f"v2.users.{U1}.presence",
            f"v2.routing.queues.{Q1}.users",
        ],
        NOW,
    )
    (obs,) = plan.observation_queries
    assert [p["value"] for p in obs["filter"]["predicates"]] == [Q1, Q2]
    assert "oWaiting" in obs["metrics"]
    (agg,) = plan.aggregate_queries
    assert agg["interval"] == current_interval(NOW)
    assert agg["groupBy"] == ["queueId", "mediaType"]
    (users,) = plan.user_queries
    assert [p["value"] for p in users["filter"]["predicates"]] == [U1]


def test_plan_batches_large_topic_sets() -> None:
    queues = [f"8f7e2c1a-0000-4000-8000-{i:012d}" for i in range(BATCH * 2 + 1)]
    plan = plan_snapshot([f"v2.analytics.queues.{q}.observations" for q in queues], NOW)
    sizes = [len(q["filter"]["predicates"]) for q in plan.observation_queries]
    assert sizes == [BATCH, BATCH, 1]


def test_observation_answer_becomes_instant_bodies() -> None:
    answer = {
        "results": [
            {
                "group": {"queueId": Q1, "mediaType": "voice"},
                "data": [
                    {
                        "metric": "oWaiting",
                        "stats": {"count": 2},
                        "truncated": False,
                        "observations": [{"conversationId": "c"}],
                    }
                ],
            },
            {
                "group": {"queueId": Q1},
                "data": [{"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 3}}],
            },
            {"group": {"mediaType": "voice"}, "data": []},
        ]
    }
    events = observation_events(answer, NOW, "gap")
    assert [e.topic for e in events] == [f"v2.analytics.queues.{Q1}.observations"] * 2
    first = events[0].body
    interval = first["data"][0]["interval"]
    start, end = interval.split("/")
    assert start == end == "2026-05-04T10:47:12.000Z"
    assert first["data"][0]["metrics"] == [{"metric": "oWaiting", "stats": {"count": 2}}]
    assert events[1].body["data"][0]["metrics"][0]["qualifier"] == "IDLE"
    assert {e.reason for e in events} == {"gap"}


def test_aggregate_answer_keeps_the_latest_interval() -> None:
    answer = {
        "results": [
            {
                "group": {"queueId": Q1, "mediaType": "chat"},
                "data": [
                    {
                        "interval": "2026-05-04T10:00:00.000Z/2026-05-04T10:30:00.000Z",
                        "metrics": [{"metric": "nOffered", "stats": {"count": 1}}],
                    },
                    {
                        "interval": "2026-05-04T10:30:00.000Z/2026-05-04T11:00:00.000Z",
                        "metrics": [{"metric": "nOffered", "stats": {"count": 4}}],
                    },
                ],
            },
            {"group": {"queueId": Q2, "mediaType": "chat"}, "data": []},
        ]
    }
    (event,) = aggregate_events(answer, NOW, "initial")
    assert event.body["data"][0]["metrics"] == [{"metric": "nOffered", "stats": {"count": 4}}]
    assert event.body["group"] == {"queueId": Q1, "mediaType": "chat"}


def test_user_answer_becomes_user_aggregate_bodies() -> None:
    answer = {
        "results": [
            {
                "group": {"userId": U1},
                "data": [
                    {
                        "interval": current_interval(NOW),
                        "metrics": [
                            {
                                "metric": "tAgentRoutingStatus",
                                "qualifier": "IDLE",
                                "stats": {"sum": 1000, "count": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (event,) = user_aggregate_events(answer, NOW, "gap")
    assert event.topic == f"v2.analytics.users.{U1}.aggregates"


def test_empty_or_odd_answers_give_nothing() -> None:
    assert observation_events({}, NOW, "gap") == []
    assert aggregate_events({"results": "nope"}, NOW, "gap") == []
    assert user_aggregate_events({"results": [1, 2]}, NOW, "gap") == []


def test_plan_names_the_topics_its_snapshot_covers() -> None:
    topics = [
        "v2.analytics.queues.q1.observations",
        "v2.analytics.users.u1.aggregates",
        "v2.users.u1.presence",
        "v2.analytics.wrapup.w1.aggregates",
    ]
    assert plan_snapshot(topics, NOW).covered == tuple(topics[:2])
