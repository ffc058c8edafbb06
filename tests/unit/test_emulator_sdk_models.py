"""The official SDK deserialises what the emulator state emits, with no unknown keys.

Every body goes through ``ApiClient.deserialize`` (the path the SDK uses for real responses),
and every key we emit must be a JSON name of the SDK model, recursively.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from PureCloudPlatformClientV2 import models
from PureCloudPlatformClientV2.api_client import ApiClient

from pipeline.emulator.errors import invalid_topic
from pipeline.emulator.state.catalogue import EXPAND_FIELDS, TopicCatalogue
from pipeline.emulator.state.channels import ChannelRegistry, ChannelSettings
from pipeline.emulator.state.tokens import ClientId, TokenId

A = ClientId("client-a")
TOK1, TOK2 = TokenId("tok-0001"), TokenId("tok-0002")
EPOCH = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
WS = "ws://127.0.0.1:8089"


class _Response:
    """The two things ``ApiClient.deserialize`` reads from a urllib3 response."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return "application/json" if name.lower() == "content-type" else default


@pytest.fixture(scope="module")
def sdk() -> ApiClient:
    return ApiClient(host="http://127.0.0.1:1")


def deserialize(sdk: ApiClient, body: Any, type_name: str) -> Any:
    return sdk.deserialize(_Response(body), type_name)


def assert_known_keys(body: Any, type_name: str) -> None:
    """Every key of ``body`` is a JSON field of the SDK model ``type_name``, recursively."""
    inner = re.fullmatch(r"list\[(.+)\]", type_name)
    if inner:
        for item in body:
            assert_known_keys(item, inner[1])
        return
    model_class = getattr(models, type_name, None)
    if model_class is None:  # str, bool, dict(str, object)...
        return
    model = model_class()
    json_to_attr = {json_name: attr for attr, json_name in model.attribute_map.items()}
    unknown = set(body) - set(json_to_attr)
    assert not unknown, f"{type_name} has no field(s) {sorted(unknown)}"
    for key, value in body.items():
        if value is not None:
            assert_known_keys(value, model.swagger_types[json_to_attr[key]])


def channels() -> ChannelRegistry:
    return ChannelRegistry(TopicCatalogue(), random.Random(2), ChannelSettings(wall_epoch=EPOCH))


def test_channel_round_trips(sdk: ApiClient) -> None:
    channel, _ = channels().create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    body = channel.to_json()
    assert_known_keys(body, "Channel")
    model = deserialize(sdk, body, "Channel")
    assert model.id == channel.id
    assert model.connect_uri == f"{WS}/channels/{channel.id}"
    assert model.expires == datetime(2026, 5, 5, 10, 15, tzinfo=UTC)


def test_channel_listing_round_trips(sdk: ApiClient) -> None:
    registry = channels()
    mine, _ = registry.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    registry.create_channel(A, TOK2, now=0.0, base_ws_url=WS)
    body = registry.list_channels(A, TOK1, now=1.0, includechannels="oauthclient")
    assert_known_keys(body, "ChannelEntityListing")
    listing = deserialize(sdk, body, "ChannelEntityListing")
    assert [c.id for c in listing.entities] == [mine.id, None]
    assert all(c.expires is not None for c in listing.entities)


def test_subscription_listing_round_trips_with_both_states(sdk: ApiClient) -> None:
    registry = channels()
    channel, _ = registry.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    registry.deny_topics(A, ["v2.users.{id}.presence"])
    result = registry.add_subscriptions(
        channel.id,
        A,
        ["v2.analytics.queues.q1.observations", "v2.users.u1.presence"],
        now=1.0,
        ignore_errors=True,
    )
    body = result.to_json()
    assert_known_keys(body, "ChannelTopicEntityListing")
    listing = deserialize(sdk, body, "ChannelTopicEntityListing")
    permitted, rejected = listing.entities
    assert (permitted.id, permitted.state) == ("v2.analytics.queues.q1.observations", "Permitted")
    assert permitted.self_uri is not None
    assert rejected.state == "Rejected"
    assert rejected.rejection_reason is not None
    assert rejected.missing_permissions == ["user:presence:view"]


def test_available_topics_round_trip_fully_expanded(sdk: ApiClient) -> None:
    body = TopicCatalogue().available_topics(EXPAND_FIELDS)
    assert_known_keys(body, "AvailableTopicEntityListing")
    listing = deserialize(sdk, body, "AvailableTopicEntityListing")
    assert len(listing.entities) == len(body["entities"])
    for topic in listing.entities:
        assert topic.id is not None
        assert topic.description
        assert topic.visibility == "Public"
        assert topic.enforced is True
        assert topic.transports == ["All"]
        assert topic.topic_parameters
        assert topic.requires_permissions is not None
        assert topic.public_api_template_uri_paths
        assert topic.schema["type"] == "object"
        [details] = topic.permission_details
        assert details.type == "requiresPermissions"
        assert details.permissions == topic.requires_permissions


def test_error_body_round_trips(sdk: ApiClient) -> None:
    body = invalid_topic("v2.nope").body("corr-1")
    assert_known_keys(body, "ErrorBody")
    model = deserialize(sdk, body, "ErrorBody")
    assert (model.status, model.code, model.context_id) == (
        400,
        "notification.invalid.topic",
        "corr-1",
    )
    assert model.message_params == {"topic": "v2.nope"}


def test_system_notice_round_trips(sdk: ApiClient) -> None:
    registry = channels()
    registry.create_channel(A, TOK1, now=0.0, base_ws_url=WS)
    [ended] = registry.end_token_channels(TOK1, "token_revoked", now=1.0)
    assert ended.notice is not None
    body = ended.notice.event_body()
    assert_known_keys(body, "SystemMessageSystemMessage")
    model = deserialize(sdk, body, "SystemMessageSystemMessage")
    assert model.system_topic_type == "token_revoked"
    assert model.reason == "user_tokens_revoked"
    assert model.channel_id == ended.channel.id
