"""Frames from the notification socket parse into typed values or a dead-letter-ready error."""

from __future__ import annotations

import orjson
import pytest

from pipeline.core.genesys.frames import (
    ChannelMetadata,
    Heartbeat,
    Pong,
    SocketClosing,
    SystemMessage,
    TopicEvent,
    parse_frame,
)
from pipeline.errors import FrameError

QUEUE_TOPIC = "v2.analytics.queues.8f7e2c1a-0000-4000-8000-000000000001.observations"


def envelope(topic: str, body: object, **extra: object) -> bytes:
    return orjson.dumps({"topicName": topic, "eventBody": body, **extra})


def test_heartbeat() -> None:
    frame = parse_frame(envelope("channel.metadata", {"message": "WebSocket Heartbeat"}))
    assert frame == Heartbeat()


def test_pong() -> None:
    assert parse_frame(envelope("channel.metadata", {"message": "pong"})) == Pong()


def test_other_channel_metadata_is_kept() -> None:
    assert parse_frame(envelope("channel.metadata", {"message": "hi"})) == ChannelMetadata("hi")


def test_socket_closing() -> None:
    frame = parse_frame(envelope("v2.system.socket_closing", {"reason": "maintenance"}))
    assert frame == SocketClosing({"reason": "maintenance"})


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("v2.system.no_longer_subscribed.streaming-0-abc", "no_longer_subscribed"),
        ("v2.system.token_revoked.streaming-0-abc", "token_revoked"),
        ("v2.subscription.updated", "subscription_changed"),
        ("v2.system.something_new", "something_new"),
    ],
)
def test_system_messages(topic: str, kind: str) -> None:
    frame = parse_frame(envelope(topic, {"channelId": "streaming-0-abc"}))
    assert isinstance(frame, SystemMessage)
    assert frame.kind == kind
    assert frame.body == {"channelId": "streaming-0-abc"}


def test_topic_event_keeps_body_correlation_id_version_and_raw_bytes() -> None:
    raw = envelope(
        QUEUE_TOPIC,
        {"group": {"queueId": "q"}, "data": []},
        version="2",
        metadata={"CorrelationId": "c-1"},
    )
    frame = parse_frame(raw.decode())
    assert isinstance(frame, TopicEvent)
    assert frame.topic == QUEUE_TOPIC
    assert frame.body == {"group": {"queueId": "q"}, "data": []}
    assert frame.correlation_id == "c-1"
    assert frame.version == "2"
    assert frame.raw == raw


def test_topic_event_without_metadata() -> None:
    frame = parse_frame(envelope(QUEUE_TOPIC, {}))
    assert isinstance(frame, TopicEvent)
    assert frame.correlation_id is None
    assert frame.version is None


@pytest.mark.parametrize(
    ("raw", "reason", "topic"),
    [
        (b'{"topicName": "v2.x", "eventBody": {', "invalid JSON", None),
        (b"[1, 2]", "JSON list, not an object", None),
        (b'{"eventBody": {}}', "no topicName", None),
        (b'{"topicName": 5, "eventBody": {}}', "no topicName", None),
        (b'{"topicName": "v2.x.y"}', "eventBody is missing", "v2.x.y"),
        (b'{"topicName": "v2.x.y", "eventBody": "s"}', "eventBody is missing", "v2.x.y"),
        (b"\xff\xfe", "invalid JSON", None),
    ],
)
def test_bad_frames_raise_frame_error_with_bytes(
    raw: bytes, reason: str, topic: str | None
) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw
    assert info.value.topic == topic
