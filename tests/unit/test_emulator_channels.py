"""Notification channels: create, list, HEAD, expiry, eviction, sockets."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.state.catalogue import TopicCatalogue
from pipeline.emulator.state.channels import (
    ChannelRegistry,
    ChannelSettings,
    format_timestamp,
)
from pipeline.emulator.state.tokens import ClientId, TokenId

DAY = 24 * 3600.0
EPOCH = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
WS = "ws://127.0.0.1:8089"
A, B = ClientId("client-a"), ClientId("client-b")
TOK1, TOK2 = TokenId("tok-0001"), TokenId("tok-0002")
QUEUE_TOPIC = "v2.analytics.queues.q1.observations"


def make(**settings: Any) -> ChannelRegistry:
    chosen = ChannelSettings(wall_epoch=EPOCH, **settings)
    return ChannelRegistry(TopicCatalogue(), random.Random(3), chosen)


def test_format_timestamp_has_milliseconds_and_z() -> None:
    assert format_timestamp(EPOCH, 1.2345) == "2026-05-04T10:15:01.234Z"


def test_create_channel_returns_id_connect_uri_and_expiry_in_24_hours() -> None:
    channel, evicted = make().create_channel(A, TOK1, now=0.0, base_ws_url=WS + "/")
    assert evicted is None
    assert re.fullmatch(r"streaming-0-[a-z0-9]{26}", channel.id)
    assert channel.to_json() == {
        "connectUri": f"{WS}/channels/{channel.id}",
        "id": channel.id,
        "expires": "2026-05-05T10:15:00.000Z",
    }


def test_channel_ids_repeat_with_the_same_seed() -> None:
    first, _ = make().create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    second, _ = make().create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    assert first.id == second.id


def test_list_by_token_shows_only_this_tokens_channels() -> None:
    channels = make()
    mine, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    channels.create_channel(A, TOK2, now=0.0, base_ws_url=WS)
    channels.create_channel(B, TokenId("tok-0003"), now=0.0, base_ws_url=WS)
    listing = channels.list_channels(A, TOK1, now=1.0)
    assert listing == {"entities": [mine.to_json()]}


def test_list_by_oauthclient_shows_other_tokens_channels_without_ids() -> None:
    channels = make()
    mine, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    other, _ = channels.create_channel(A, TOK2, now=0.0, base_ws_url=WS)
    channels.create_channel(B, TokenId("tok-0003"), now=0.0, base_ws_url=WS)
    listing = channels.list_channels(A, TOK1, now=1.0, includechannels="oauthclient")
    assert listing == {"entities": [mine.to_json(), {"expires": other.expires}]}


def test_list_refuses_unknown_includechannels() -> None:
    with pytest.raises(EmulatorError) as caught:
        make().list_channels(A, TOK1, now=0.0, includechannels="everything")
    assert caught.value.code == "invalid.query.param.value"


def test_head_answers_false_once_the_channel_expires() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    assert channels.channel_exists(channel.id, now=DAY - 0.001, client_id=A)
    assert not channels.channel_exists(channel.id, now=DAY, client_id=A)
    assert channels.list_channels(A, TOK1, now=DAY) == {"entities": []}


def test_head_hides_another_clients_channel() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    assert not channels.channel_exists(channel.id, now=1.0, client_id=B)
    assert not channels.channel_exists("streaming-0-unknown", now=1.0)


def test_sweep_reports_an_expired_channel_once() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    assert channels.sweep(now=DAY - 1) == []
    ended = channels.sweep(now=DAY)
    assert [(e.channel.id, e.reason, e.notice) for e in ended] == [(channel.id, "expired", None)]
    assert channels.sweep(now=DAY + 1) == []


def test_21st_channel_evicts_the_least_recently_used_idle_channel() -> None:
    channels = make()
    made = [channels.create_channel(A, TOK1, now=float(i), base_ws_url=WS)[0] for i in range(20)]
    channels.touch(made[0].id, now=100.0)  # the oldest is used again: no longer the victim
    channel, evicted = channels.create_channel(A, TOK1, now=101.0, base_ws_url=WS)
    assert evicted is not None
    assert evicted.channel.id == made[1].id
    assert evicted.reason == "evicted"
    assert not channels.channel_exists(made[1].id, now=101.0)
    assert len(channels.channels(now=101.0, client_id=A)) == 20
    assert channels.channel_exists(channel.id, now=101.0)


def test_eviction_prefers_channels_without_a_live_socket() -> None:
    channels = make()
    made = [channels.create_channel(A, TOK1, now=float(i), base_ws_url=WS)[0] for i in range(20)]
    for channel in made[:5]:
        channels.connect_socket(channel.id, now=1.0)  # older last use, but connected
    _, evicted = channels.create_channel(A, TOK1, now=50.0, base_ws_url=WS)
    assert evicted is not None
    assert evicted.channel.id == made[5].id


def test_eviction_falls_back_to_the_oldest_connected_channel() -> None:
    channels = make(max_channels_per_client=2)
    first, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    second, _ = channels.create_channel(A, TOK1, now=1.0, base_ws_url=WS)
    channels.connect_socket(second.id, now=2.0)
    channels.connect_socket(first.id, now=3.0)
    _, evicted = channels.create_channel(A, TOK1, now=4.0, base_ws_url=WS)
    assert evicted is not None
    assert evicted.channel.id == second.id


def test_eviction_counts_channels_per_client() -> None:
    channels = make(max_channels_per_client=1)
    channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    _, evicted = channels.create_channel(B, TOK2, now=1.0, base_ws_url=WS)
    assert evicted is None


def test_evicted_channel_gets_a_no_longer_subscribed_notice() -> None:
    channels = make(max_channels_per_client=1)
    first, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    _, evicted = channels.create_channel(A, TOK1, now=1.0, base_ws_url=WS)
    assert evicted is not None
    notice = evicted.notice
    assert notice is not None
    assert notice.topic_name == f"v2.system.no_longer_subscribed.{first.id}"
    body = notice.event_body()
    assert body["channelId"] == first.id
    assert body["systemTopicType"] == "no_longer_subscribed"
    assert body["reason"] == "another_channel_subscribed"
    assert body["oauthClientId"] == A


def test_resubscribing_moves_expiry_to_now_plus_24_hours() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    channels.add_subscriptions(channel.id, A, [QUEUE_TOPIC], now=3600.0)
    assert channels.channel_exists(channel.id, now=DAY + 3599.0)
    channels.replace_subscriptions(channel.id, A, [QUEUE_TOPIC], now=DAY)
    snapshot = channels.get_channel(channel.id, now=DAY)
    assert snapshot is not None
    assert snapshot.expires == "2026-05-06T10:15:00.000Z"


def test_resubscribing_does_not_extend_when_switched_off() -> None:
    channels = make(extend_on_subscribe=False)
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    channels.add_subscriptions(channel.id, A, [QUEUE_TOPIC], now=3600.0)
    assert not channels.channel_exists(channel.id, now=DAY)


def test_failed_subscription_call_does_not_extend() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    with pytest.raises(EmulatorError):
        channels.add_subscriptions(channel.id, A, ["v2.bogus"], now=3600.0)
    assert not channels.channel_exists(channel.id, now=DAY)


def test_second_socket_kicks_the_first() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    assert channels.connect_socket(channel.id, now=1.0) is False
    assert channels.connect_socket(channel.id, now=2.0) is True
    channels.disconnect_socket(channel.id, now=3.0)
    snapshot = channels.get_channel(channel.id, now=3.0)
    assert snapshot is not None
    assert snapshot.socket_connected is False


def test_socket_to_an_unknown_or_expired_channel_is_not_found() -> None:
    channels = make()
    channel, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    with pytest.raises(EmulatorError, match=r"not\.found"):
        channels.connect_socket(channel.id, now=DAY)
    with pytest.raises(EmulatorError, match=r"not\.found"):
        channels.connect_socket("streaming-0-nope", now=0.0)


def test_fault_hooks_end_a_channel() -> None:
    channels = make()
    first, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    second, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    expired = channels.expire_channel(first.id, now=5.0)
    evicted = channels.evict_channel(second.id, now=5.0)
    assert expired is not None
    assert evicted is not None
    assert (expired.reason, evicted.reason) == ("expired", "evicted")
    assert channels.channels(now=5.0) == []
    assert channels.expire_channel(first.id, now=6.0) is None


def test_end_token_channels_sends_token_revoked() -> None:
    channels = make()
    doomed, _ = channels.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    kept, _ = channels.create_channel(A, TOK2, now=0.0, base_ws_url=WS)
    ended = channels.end_token_channels(TOK1, "token_revoked", now=1.0)
    assert [e.channel.id for e in ended] == [doomed.id]
    notice = ended[0].notice
    assert notice is not None
    assert notice.topic_name == f"v2.system.token_revoked.{doomed.id}"
    assert notice.event_body()["reason"] == "user_tokens_revoked"
    assert [c.id for c in channels.channels(now=1.0)] == [kept.id]
