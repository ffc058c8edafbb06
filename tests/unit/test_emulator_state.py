"""OrgState: the wiring between tokens, channels and faults."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.http.admin import parse_fault
from pipeline.emulator.state.channels import ChannelId, ChannelSettings
from pipeline.emulator.state.faults import (
    DropSocket,
    EvictChannel,
    ExpireChannel,
    ExpireToken,
    RestrictEntities,
    RevokeToken,
)
from pipeline.emulator.state.org import OrgSettings, OrgState
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig, Principal

SECRET = "s3cret"
A = ClientId("client-a")
WS = "ws://127.0.0.1:8089"


def make_state(**channel_settings: Any) -> OrgState:
    clients = [OAuthClientConfig(A, SECRET, 100, frozenset({"v2.users.{id}.presence"}))]
    settings = OrgSettings(channels=ChannelSettings(**channel_settings))
    return OrgState(clients, random.Random(11), settings)


def login(state: OrgState, now: float = 0.0) -> Principal:
    grant = state.tokens.issue(A, SECRET, "client_credentials", now)
    return state.tokens.authenticate(f"Bearer {grant.access_token}", now)


def open_channel(state: OrgState, who: Principal, now: float = 0.0) -> ChannelId:
    channel, _ = state.channels.create_channel(who.client_id, who.token_id, now, WS)
    return channel.id


def test_revoking_a_token_ends_its_channels_with_token_revoked() -> None:
    state = make_state()
    first, second = login(state), login(state)
    doomed = open_channel(state, first)
    kept = open_channel(state, second)
    ended = state.revoke_token(first.token_id, now=1.0)
    assert [(e.channel.id, e.reason) for e in ended] == [(doomed, "token_revoked")]
    notice = ended[0].notice
    assert notice is not None
    assert notice.event_body()["systemTopicType"] == "token_revoked"
    assert not state.channels.channel_exists(doomed, now=1.0)
    assert state.channels.channel_exists(kept, now=1.0)
    assert state.revoke_token(first.token_id, now=2.0) == []


def test_channels_survive_revocation_when_switched_off() -> None:
    state = make_state(dies_with_token_revoke=False)
    who = login(state)
    channel = open_channel(state, who)
    assert state.revoke_token(who.token_id, now=1.0) == []
    assert state.channels.channel_exists(channel, now=1.0)


def test_channels_survive_token_expiry_when_switched_off() -> None:
    state = make_state(dies_with_token_expiry=False)
    who = login(state)
    channel = open_channel(state, who)
    assert state.expire_token(who.token_id, now=1.0) == []
    assert state.sweep(now=200.0) == []
    assert state.channels.channel_exists(channel, now=200.0)


def test_channels_die_with_token_expiry_by_default() -> None:
    state = make_state()  # §5.7: a channel does not outlive the token that created it
    who = login(state)
    channel = open_channel(state, who)
    ended = state.sweep(now=100.0)  # the token's 100 s lifetime is over
    assert [(e.channel.id, e.reason) for e in ended] == [(channel, "token_expired")]
    assert state.sweep(now=101.0) == []


def test_expire_token_fault_ends_channels_when_switched_on() -> None:
    state = make_state(dies_with_token_expiry=True)
    grant = state.tokens.issue(A, SECRET, "client_credentials", now=0.0)
    who = state.tokens.authenticate(f"Bearer {grant.access_token}", now=0.0)
    open_channel(state, who)
    ended = state.apply_fault(ExpireToken(who.token_id), now=1.0)
    assert [e.reason for e in ended] == ["token_expired"]
    with pytest.raises(EmulatorError, match=r"bad\.credentials"):
        state.tokens.authenticate(f"Bearer {grant.access_token}", now=1.0)


def test_revoke_token_fault_is_revoke_token() -> None:
    state = make_state()
    who = login(state)
    open_channel(state, who)
    assert [e.reason for e in state.apply_fault(RevokeToken(who.token_id), now=1.0)] == [
        "token_revoked"
    ]


def test_channel_faults_end_the_channel() -> None:
    state = make_state()
    who = login(state)
    first, second = open_channel(state, who), open_channel(state, who)
    [expired] = state.apply_fault(ExpireChannel(first), now=1.0)
    [evicted] = state.apply_fault(EvictChannel(second), now=1.0)
    assert (expired.reason, expired.notice) == ("expired", None)
    assert evicted.notice is not None
    assert evicted.notice.system_topic_type == "no_longer_subscribed"
    assert state.apply_fault(ExpireChannel(first), now=2.0) == []


def test_socket_faults_go_to_the_plan() -> None:
    state = make_state()
    who = login(state)
    channel = open_channel(state, who)
    assert state.apply_fault(DropSocket(channel), now=1.0) == []
    assert state.faults.take_socket_actions(channel) == [DropSocket(channel)]


def test_client_config_denies_topics() -> None:
    state = make_state()
    who = login(state)
    channel = open_channel(state, who)
    with pytest.raises(EmulatorError, match=r"notification\.unauthorized\.topic"):
        state.channels.add_subscriptions(channel, A, ["v2.users.u1.presence"], now=1.0)


def test_same_seed_gives_the_same_world() -> None:
    one, two = make_state(), make_state()
    assert open_channel(one, login(one)) == open_channel(two, login(two))


def test_restrict_entities_fault_hides_a_queue_from_subscriptions() -> None:
    state = make_state()
    who = login(state)
    channel = open_channel(state, who)
    fault = parse_fault({"type": "restrict_entities", "entity_ids": ["q9"]})
    assert fault == RestrictEntities(("q9",))
    assert state.apply_fault(fault, now=1.0) == []
    topic = "v2.analytics.queues.q9.observations"
    with pytest.raises(EmulatorError) as caught:
        state.channels.replace_subscriptions(channel, A, [topic], now=2.0)
    assert caught.value.status == 403
    state.apply_fault(RestrictEntities(("q9",), client_id=A, restricted=False), now=3.0)
    state.apply_fault(RestrictEntities(("q9",), restricted=False), now=3.0)
    assert state.channels.replace_subscriptions(channel, A, [topic], now=4.0).entities
