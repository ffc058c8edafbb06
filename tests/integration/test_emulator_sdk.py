"""The official Genesys Cloud SDK, unmodified, against the emulator.

``PureCloudPlatformClientV2`` pointed at the emulator's base URL logs in (login goes to the
same base when the host has no ``api.``), manages channels and subscriptions, reads the topic
catalogue and runs the analytics queries, with its own models deserialising every answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import orjson
import PureCloudPlatformClientV2 as gc
import pytest
from PureCloudPlatformClientV2.rest import ApiException

from pipeline.emulator.clock import ManualClock
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.thread import EmulatorThread

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's time: it moves only when a test advances it."""
    return ManualClock()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorThread], clock: ManualClock) -> EmulatorThread:
    # With the CLI's default history: the SDK reads a past like a real org's too.
    return emulator_factory(clock=clock, queues=6, agents=40, speed=60.0, history="PT24H")


@pytest.fixture
def api(emulator: EmulatorThread) -> gc.ApiClient:
    client = gc.ApiClient(host=emulator.base_url)
    return client.get_client_credentials_token(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def model(cls: type[T], **attrs: object) -> T:
    """Build an SDK model: its constructors take no arguments, attributes are set after."""
    instance = cls()
    for name, value in attrs.items():
        setattr(instance, name, value)
    return instance


def _queue_ids(api: gc.ApiClient) -> list[str]:
    listing = gc.RoutingApi(api).get_routing_queues(page_size=100)
    return [q.id for q in listing.entities]


def test_sdk_logs_in_and_rejects_a_wrong_secret(emulator: EmulatorThread) -> None:
    api = gc.ApiClient(host=emulator.base_url).get_client_credentials_token(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    )
    assert api.access_token
    with pytest.raises(ApiException) as info:
        gc.ApiClient(host=emulator.base_url).get_client_credentials_token(DEMO_CLIENT_ID, "wrong")
    assert info.value.status == 401
    assert orjson.loads(info.value.body)["error"] == "invalid_client"


def test_sdk_manages_a_channel_and_its_subscriptions(api: gc.ApiClient) -> None:
    notifications = gc.NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    assert channel.id.startswith("streaming-0-")
    assert channel.connect_uri.endswith(f"/channels/{channel.id}")
    assert channel.expires > datetime.now(UTC) + timedelta(hours=23)

    queue_id = _queue_ids(api)[0]
    topics = [
        model(gc.ChannelTopic, id=f"v2.analytics.queues.{queue_id}.observations"),
        model(gc.ChannelTopic, id=f"v2.routing.queues.{queue_id}.users"),
    ]
    listing = notifications.put_notifications_channel_subscriptions(channel.id, topics)
    assert sorted(t.id for t in listing.entities) == sorted(t.id for t in topics)
    assert {t.state for t in listing.entities} == {"Permitted"}
    got = notifications.get_notifications_channel_subscriptions(channel.id)
    assert len(got.entities) == 2

    notifications.head_notifications_channel(channel.id)  # 200: no exception
    listed = notifications.get_notifications_channels(includechannels="token")
    assert channel.id in [c.id for c in listed.entities]

    notifications.delete_notifications_channel_subscriptions(channel.id)
    assert notifications.get_notifications_channel_subscriptions(channel.id).entities == []
    with pytest.raises(ApiException) as info:
        notifications.head_notifications_channel("streaming-0-doesnotexist")
    assert info.value.status == 404


def test_sdk_sees_the_real_error_for_an_unknown_topic(api: gc.ApiClient) -> None:
    notifications = gc.NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    with pytest.raises(ApiException) as info:
        notifications.post_notifications_channel_subscriptions(
            channel.id, [model(gc.ChannelTopic, id="v2.analytics.queues.summary")]
        )
    body = orjson.loads(info.value.body)
    assert info.value.status == 400
    assert body["code"] == "notification.invalid.topic"
    assert body["contextId"] == info.value.headers["ININ-Correlation-Id"]


def test_sdk_reads_available_topics_with_schema(api: gc.ApiClient) -> None:
    listing = gc.NotificationsApi(api).get_notifications_availabletopics(
        expand=["schema", "requiresPermissions", "topicParameters"]
    )
    by_id = {t.id: t for t in listing.entities}
    observations = by_id["v2.analytics.queues.{id}.observations"]
    assert observations.schema
    assert observations.requires_permissions
    assert "v2.users.{id}.presence" in by_id


def test_sdk_reads_queue_settings(api: gc.ApiClient) -> None:
    routing = gc.RoutingApi(api)
    queue = routing.get_routing_queue(_queue_ids(api)[0])
    settings = queue.media_settings
    levels = [m.service_level for m in (settings.call, settings.chat, settings.email) if m]
    assert levels
    assert 0 < levels[0].percentage <= 1
    assert levels[0].duration_ms > 0


def test_sdk_runs_the_queue_observation_query(api: gc.ApiClient) -> None:
    queue_ids = _queue_ids(api)[:3]
    query = model(
        gc.QueueObservationQuery,
        filter=model(
            gc.QueueObservationQueryFilter,
            type="or",
            predicates=[
                model(gc.QueueObservationQueryPredicate, dimension="queueId", value=q)
                for q in queue_ids
            ],
        ),
        metrics=["oWaiting", "oInteracting", "oOnQueueUsers", "oMemberUsers"],
    )
    response = gc.AnalyticsApi(api).post_analytics_queues_observations_query(query)
    seen = {r.group["queueId"] for r in response.results}
    assert seen == set(queue_ids)
    metrics = {d.metric for r in response.results for d in r.data}
    assert {"oWaiting", "oMemberUsers"} <= metrics


def test_sdk_runs_conversation_and_user_aggregate_queries(
    api: gc.ApiClient, emulator: EmulatorThread, clock: ManualClock
) -> None:
    clock.advance(1.0)  # at speed 60: a simulated minute of traffic before the queries
    assert emulator.emulator is not None
    start = emulator.emulator.started_at.replace(minute=0, second=0)
    interval = f"{_iso(start)}/{_iso(start + timedelta(hours=3))}"
    analytics = gc.AnalyticsApi(api)
    conversations = analytics.post_analytics_conversations_aggregates_query(
        model(
            gc.ConversationAggregationQuery,
            interval=interval,
            granularity="PT30M",
            group_by=["queueId", "mediaType"],
            metrics=["nOffered", "tAnswered", "tHandle", "oServiceLevel"],
        )
    )
    assert conversations.results
    offered = [
        m.stats.count
        for r in conversations.results
        for d in r.data
        for m in d.metrics
        if m.metric == "nOffered"
    ]
    assert sum(offered) > 0

    users = analytics.post_analytics_users_aggregates_query(
        model(
            gc.UserAggregationQuery,
            interval=interval,
            group_by=["userId"],
            metrics=["tAgentRoutingStatus"],
        )
    )
    assert users.results
    assert users.results[0].group["userId"]


def test_sdk_reads_24_hours_of_past_buckets_right_after_start(
    api: gc.ApiClient, emulator: EmulatorThread
) -> None:
    assert emulator.emulator is not None
    started = emulator.emulator.started_at
    end = started.replace(minute=started.minute - started.minute % 30, second=0)
    interval = f"{_iso(end - timedelta(hours=24))}/{_iso(end)}"
    answer = gc.AnalyticsApi(api).post_analytics_conversations_aggregates_query(
        model(
            gc.ConversationAggregationQuery,
            interval=interval,
            granularity="PT30M",
            metrics=["nOffered", "tAnswered", "tHandle", "oServiceLevel", "nAlertExpired"],
        )
    )
    [group] = answer.results  # no groupBy: one group for the whole org
    assert len(group.data) == 48  # every past half hour has data, none is missing
    for bucket in group.data:
        names = {m.metric for m in bucket.metrics}
        assert {"nOffered", "tAnswered", "tHandle", "oServiceLevel"} <= names
    sl = [m.stats for b in group.data for m in b.metrics if m.metric == "oServiceLevel"]
    assert all(0 <= s.ratio <= 1 and s.denominator >= s.numerator for s in sl)
    users = gc.AnalyticsApi(api).post_analytics_users_aggregates_query(
        model(
            gc.UserAggregationQuery,
            interval=interval,
            granularity="PT1H",
            group_by=["userId"],
            metrics=["tAgentRoutingStatus", "tSystemPresence"],
        )
    )
    assert len(users.results) == 40
    assert all(len(r.data) == 24 for r in users.results)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_sdk_rejects_unknown_metric_with_the_real_400(api: gc.ApiClient) -> None:
    with pytest.raises(ApiException) as info:
        gc.AnalyticsApi(api).post_analytics_conversations_aggregates_query(
            model(
                gc.ConversationAggregationQuery,
                interval="2026-01-01T00:00:00Z/2026-01-01T01:00:00Z",
                metrics=["nAnswered"],
            )
        )
    assert info.value.status == 400
    assert "nAnswered" in orjson.loads(info.value.body)["message"]


def test_sdk_sees_the_user_aggregate_granularity_rule(api: gc.ApiClient) -> None:
    # §7.4 BELIEF, the emulator's default: user aggregate granularities are multiples of PT30M.
    with pytest.raises(ApiException) as info:
        gc.AnalyticsApi(api).post_analytics_users_aggregates_query(
            model(
                gc.UserAggregationQuery,
                interval="2026-01-01T00:00:00Z/2026-01-01T02:00:00Z",
                granularity="PT15M",
                metrics=["tAgentRoutingStatus"],
            )
        )
    assert info.value.status == 400
    body = orjson.loads(info.value.body)
    assert body["code"] == "constraint.validation"
    assert "multiple of PT30M" in body["message"]


def test_sdk_waits_out_429_with_retry_after_and_surfaces_it_without(
    api: gc.ApiClient, emulator: EmulatorThread
) -> None:
    assert emulator.emulator is not None
    faults = emulator.emulator.state.faults
    routing = gc.RoutingApi(api)
    faults.fail_requests(2, 429, retry_after=1, path_prefix="/api/v2/routing")
    started = time.monotonic()
    assert routing.get_routing_queues().entities
    assert time.monotonic() - started >= 1.5  # two waits of Retry-After: 1
    assert faults.pending_request_faults() == 0

    faults.fail_requests(1, 429, path_prefix="/api/v2/routing")
    with pytest.raises(ApiException) as info:
        routing.get_routing_queues()
    assert info.value.status == 429
    assert orjson.loads(info.value.body)["code"] == "too.many.requests"


def test_sdk_pages_through_queue_members_by_next_uri(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(queues=1, agents=250)
    api = gc.ApiClient(host=emulator.base_url).get_client_credentials_token(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    )
    routing = gc.RoutingApi(api)
    queue_id = _queue_ids(api)[0]
    first = routing.get_routing_queue_members(queue_id, page_size=500)  # over the max: cut
    assert (first.page_size, len(first.entities), first.page_number) == (100, 100, 1)
    assert first.next_uri.endswith("pageSize=100&pageNumber=2")
    assert first.previous_uri is None
    ids, listing, number = [m.id for m in first.entities], first, 1
    while listing.next_uri:
        number += 1
        listing = routing.get_routing_queue_members(queue_id, page_size=100, page_number=number)
        ids += [m.id for m in listing.entities]
    assert len(ids) == len(set(ids)) == 250
    assert number == 3

    queues = routing.get_routing_queues(page_size=25)
    assert (queues.total, queues.page_count, queues.next_uri) == (1, 1, None)


def test_sdk_sees_a_whole_call_403_or_rejected_entries_for_a_restricted_queue(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(queues=3, agents=6, restricted_queues=1)
    api = gc.ApiClient(host=emulator.base_url).get_client_credentials_token(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    )
    notifications = gc.NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    allowed, hidden = [f"v2.analytics.queues.{q}.observations" for q in _queue_ids(api)[1:]]
    topics = [model(gc.ChannelTopic, id=t) for t in (allowed, hidden)]
    with pytest.raises(ApiException) as info:
        notifications.put_notifications_channel_subscriptions(channel.id, topics)
    assert info.value.status == 403
    assert orjson.loads(info.value.body)["code"] == "notification.unauthorized.topic"
    assert notifications.get_notifications_channel_subscriptions(channel.id).entities == []

    listing = notifications.put_notifications_channel_subscriptions(
        channel.id, topics, ignore_errors=True
    )
    states = {t.id: (t.state, t.rejection_reason, t.missing_permissions) for t in listing.entities}
    assert states[allowed] == ("Permitted", None, None)
    assert states[hidden][0] == "Rejected"
    assert states[hidden][2] == ["analytics:queueObservation:view"]
    subscribed = notifications.get_notifications_channel_subscriptions(channel.id).entities
    assert [t.id for t in subscribed] == [allowed]
