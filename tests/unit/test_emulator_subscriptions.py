"""Channel subscriptions: POST adds, PUT replaces, DELETE clears, validation, the 1,000 cap."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.state.catalogue import EntityKind, TopicCatalogue
from pipeline.emulator.state.channels import Channel, ChannelRegistry, ChannelSettings
from pipeline.emulator.state.subscriptions import parse_subscription_body
from pipeline.emulator.state.tokens import ClientId, TokenId

A, B = ClientId("client-a"), ClientId("client-b")
WS = "ws://127.0.0.1:8089"
USER = "u1"


def queue(n: int) -> str:
    return f"v2.analytics.queues.q{n}.observations"


def registry(**settings: Any) -> tuple[ChannelRegistry, Channel]:
    channels = ChannelRegistry(TopicCatalogue(), random.Random(5), ChannelSettings(**settings))
    channel, _ = channels.create_channel(A, TokenId("tok-0001"), now=0.0, base_ws_url=WS)
    return channels, channel


def ids(result: Any) -> list[str]:
    return [entity["id"] for entity in result.to_json()["entities"]]


def test_post_adds_to_the_existing_list() -> None:
    channels, channel = registry()
    channels.add_subscriptions(channel.id, A, [queue(1)], now=1.0)
    result = channels.add_subscriptions(channel.id, A, [queue(2), queue(1)], now=2.0)
    assert ids(result) == [queue(1), queue(2)]
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == [queue(1), queue(2)]


def test_entries_are_permitted_with_a_self_uri() -> None:
    channels, channel = registry()
    result = channels.add_subscriptions(channel.id, A, [queue(1)], now=1.0)
    assert result.to_json() == {
        "entities": [
            {
                "id": queue(1),
                "state": "Permitted",
                "selfUri": f"/api/v2/notifications/channels/{channel.id}/subscriptions/{queue(1)}",
            }
        ]
    }


def test_put_replaces_the_list() -> None:
    channels, channel = registry()
    channels.add_subscriptions(channel.id, A, [queue(1), queue(2)], now=1.0)
    result = channels.replace_subscriptions(channel.id, A, [queue(3)], now=2.0)
    assert ids(result) == [queue(3)]
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == [queue(3)]


def test_put_empty_list_clears() -> None:
    channels, channel = registry()
    channels.add_subscriptions(channel.id, A, [queue(1)], now=1.0)
    assert ids(channels.replace_subscriptions(channel.id, A, [], now=2.0)) == []
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == []


def test_delete_clears() -> None:
    channels, channel = registry()
    channels.add_subscriptions(channel.id, A, [queue(1)], now=1.0)
    channels.delete_subscriptions(channel.id, A, now=2.0)
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == []


def test_compound_topic_expands_to_concrete_topics() -> None:
    channels, channel = registry()
    result = channels.add_subscriptions(
        channel.id, A, [f"v2.users.{USER}?presence&routingStatus"], now=1.0
    )
    assert ids(result) == [f"v2.users.{USER}.presence", f"v2.users.{USER}.routingStatus"]


def test_exactly_1000_topics_fit() -> None:
    channels, channel = registry()
    result = channels.replace_subscriptions(channel.id, A, [queue(n) for n in range(1000)], now=1)
    assert len(result.entities) == 1000


def test_the_1001st_topic_fails_the_whole_call() -> None:
    channels, channel = registry()
    channels.replace_subscriptions(channel.id, A, [queue(n) for n in range(999)], now=1.0)
    with pytest.raises(EmulatorError) as caught:
        channels.add_subscriptions(channel.id, A, [queue(999), queue(1000)], now=2.0)
    assert (caught.value.status, caught.value.code) == (
        400,
        "notification.subscription.too.many.subscriptions",
    )
    assert caught.value.message == "Too many subscriptions."
    assert len(channels.get_subscriptions(channel.id, A, now=3.0).entities) == 999


def test_put_over_the_cap_keeps_the_old_list() -> None:
    channels, channel = registry()
    channels.replace_subscriptions(channel.id, A, [queue(1)], now=1.0)
    with pytest.raises(EmulatorError, match=r"too\.many\.subscriptions"):
        channels.replace_subscriptions(channel.id, A, [queue(n) for n in range(1001)], now=2.0)
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == [queue(1)]


def test_compound_parts_count_toward_the_cap() -> None:
    channels, channel = registry()
    channels.replace_subscriptions(channel.id, A, [queue(n) for n in range(999)], now=1.0)
    with pytest.raises(EmulatorError, match=r"too\.many\.subscriptions"):
        channels.add_subscriptions(channel.id, A, [f"v2.users.{USER}?presence&activity"], now=2)


def test_repeated_topics_count_once() -> None:
    channels, channel = registry(max_topics_per_channel=2)
    channels.add_subscriptions(channel.id, A, [queue(1), queue(1), queue(2)], now=1.0)
    result = channels.add_subscriptions(channel.id, A, [queue(2)], now=2.0)
    assert ids(result) == [queue(1), queue(2)]


def test_unknown_topic_is_400_and_nothing_is_applied() -> None:
    channels, channel = registry()
    with pytest.raises(EmulatorError) as caught:
        channels.add_subscriptions(channel.id, A, [queue(1), "v2.queues.q1.nonsense"], now=1.0)
    assert (caught.value.status, caught.value.code) == (400, "notification.invalid.topic")
    assert ids(channels.get_subscriptions(channel.id, A, now=2.0)) == []


def test_unknown_entity_is_an_invalid_topic() -> None:
    channels, channel = registry()
    seen: list[tuple[EntityKind, str]] = []

    def exists(kind: EntityKind, entity_id: str) -> bool:
        seen.append((kind, entity_id))
        return entity_id != "q404"

    channels.entity_exists = exists
    with pytest.raises(EmulatorError, match=r"notification\.invalid\.topic"):
        channels.add_subscriptions(
            channel.id, A, [queue(1), "v2.analytics.queues.q404.activity"], 1
        )
    assert seen == [("queue", "q1"), ("queue", "q404")]


def test_denied_topic_is_403() -> None:
    channels, channel = registry()
    channels.deny_topics(A, ["v2.users.{id}.presence"])
    with pytest.raises(EmulatorError) as caught:
        channels.add_subscriptions(channel.id, A, [queue(1), f"v2.users.{USER}.presence"], 1.0)
    assert (caught.value.status, caught.value.code) == (403, "notification.unauthorized.topic")
    assert caught.value.message == "Not authorized for this topic."
    assert ids(channels.get_subscriptions(channel.id, A, now=2.0)) == []


def test_denied_topic_with_ignore_errors_is_rejected_not_subscribed() -> None:
    channels, channel = registry()
    channels.deny_topics(A, ["v2.users.{id}.presence"])
    presence = f"v2.users.{USER}.presence"
    result = channels.add_subscriptions(
        channel.id, A, [queue(1), presence], now=1.0, ignore_errors=True
    )
    entities = result.to_json()["entities"]
    assert [(e["id"], e["state"]) for e in entities] == [
        (queue(1), "Permitted"),
        (presence, "Rejected"),
    ]
    assert entities[1]["missingPermissions"] == ["user:presence:view"]
    assert entities[1]["rejectionReason"]
    assert ids(channels.get_subscriptions(channel.id, A, now=2.0)) == [queue(1)]


def test_a_restricted_queue_refuses_the_whole_put_and_applies_nothing() -> None:
    channels, channel = registry()
    channels.replace_subscriptions(channel.id, A, [queue(1)], now=1.0)
    channels.restrict_entities(A, ["q3"])
    with pytest.raises(EmulatorError) as caught:
        channels.replace_subscriptions(channel.id, A, [queue(2), queue(3)], now=2.0)
    assert (caught.value.status, caught.value.code) == (403, "notification.unauthorized.topic")
    assert ids(channels.get_subscriptions(channel.id, A, now=3.0)) == [queue(1)]


def test_a_restricted_queue_with_ignore_errors_is_rejected_and_the_rest_subscribed() -> None:
    channels, channel = registry()
    channels.restrict_entities(None, ["q3"])  # every client
    result = channels.replace_subscriptions(
        channel.id, A, [queue(2), queue(3)], now=1.0, ignore_errors=True
    )
    entities = result.to_json()["entities"]
    assert [(e["id"], e["state"]) for e in entities] == [
        (queue(2), "Permitted"),
        (queue(3), "Rejected"),
    ]
    assert entities[1]["missingPermissions"] == ["analytics:queueObservation:view"]
    assert entities[1]["rejectionReason"] == "Not authorized for this topic."
    assert ids(channels.get_subscriptions(channel.id, A, now=2.0)) == [queue(2)]


def test_a_restriction_can_be_lifted() -> None:
    channels, channel = registry()
    channels.restrict_entities(A, ["q3"])
    channels.restrict_entities(A, ["q3"], restricted=False)
    assert ids(channels.replace_subscriptions(channel.id, A, [queue(3)], now=1.0)) == [queue(3)]


def test_denial_is_per_client() -> None:
    channels, _ = registry()
    channels.deny_topics(B, ["v2.analytics.queues.{id}.observations"])
    mine, _ = channels.create_channel(A, TokenId("tok-0001"), now=0.0, base_ws_url=WS)
    assert ids(channels.add_subscriptions(mine.id, A, [queue(1)], now=1.0)) == [queue(1)]


def test_another_clients_channel_is_not_found() -> None:
    channels, channel = registry()
    for call in (
        lambda: channels.get_subscriptions(channel.id, B, now=1.0),
        lambda: channels.add_subscriptions(channel.id, B, [queue(1)], now=1.0),
        lambda: channels.replace_subscriptions(channel.id, B, [], now=1.0),
        lambda: channels.delete_subscriptions(channel.id, B, now=1.0),
    ):
        with pytest.raises(EmulatorError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (404, "not.found")


def test_expired_channel_subscriptions_are_not_found() -> None:
    channels, channel = registry(lifetime_seconds=10.0)
    with pytest.raises(EmulatorError, match=r"not\.found"):
        channels.get_subscriptions(channel.id, A, now=10.0)


def test_parse_subscription_body_reads_ids() -> None:
    assert parse_subscription_body([{"id": "a"}, {"id": "b", "state": "x"}]) == ["a", "b"]
    assert parse_subscription_body([]) == []


@pytest.mark.parametrize("body", [None, {"id": "a"}, ["a"], [{"id": ""}], [{"name": "a"}]])
def test_parse_subscription_body_refuses_other_shapes(body: Any) -> None:
    with pytest.raises(EmulatorError) as caught:
        parse_subscription_body(body)
    assert (caught.value.status, caught.value.code) == (400, "bad.request")
