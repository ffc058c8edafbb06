"""Notification frames: bytes from the Genesys WebSocket → typed values.

Every text frame on a notification channel is a JSON envelope (docs/genesys-api.md §5.3)::

    {"topicName": "...", "version": "2", "eventBody": {...}, "metadata": {"CorrelationId": "..."}}

``channel.metadata`` frames carry the server heartbeat (``"WebSocket Heartbeat"``) and the
answer to our ``{"message": "ping"}`` (``"pong"``). ``v2.system.*`` frames are system messages:
``socket_closing`` announces that the server will close this socket, ``no_longer_subscribed``
and ``token_revoked`` that the channel is dead. Everything else is a topic event.

A frame that cannot be understood raises :class:`~pipeline.errors.FrameError` carrying the raw
bytes and the reason, so the caller can dead-letter it. Parsing uses orjson and plain dicts:
no pydantic on this path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.errors import FrameError

__all__ = [
    "ChannelMetadata",
    "Frame",
    "Heartbeat",
    "Pong",
    "SocketClosing",
    "SystemMessage",
    "TopicEvent",
    "parse_frame",
]

HEARTBEAT_MESSAGE = "WebSocket Heartbeat"
PONG_MESSAGE = "pong"
SOCKET_CLOSING = "v2.system.socket_closing"
_SYSTEM_KINDS = ("no_longer_subscribed", "token_revoked", "subscription_changed")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The server's periodic ``WebSocket Heartbeat`` (about every 30 s)."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to our ``{"message": "ping"}``."""


@dataclass(frozen=True, slots=True)
class ChannelMetadata:
    """Another ``channel.metadata`` message (kept, not acted on)."""

    message: str


@dataclass(frozen=True, slots=True)
class SocketClosing:
    """``v2.system.socket_closing``: the server will close this socket soon."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """A ``v2.system.*`` message that ends the channel's subscriptions.

    ``kind`` is one of ``no_longer_subscribed``, ``token_revoked``, ``subscription_changed``
    (or the raw last word of the topic for kinds we do not know).
    """

    topic: str
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TopicEvent:
    """A notification on a subscribed topic.

    ``raw`` is the frame as received, kept for the dead-letter queue should mapping fail.
    """

    topic: str
    body: dict[str, Any]
    correlation_id: str | None
    version: str | None
    raw: bytes = field(repr=False, compare=False)


Frame = Heartbeat | Pong | ChannelMetadata | SocketClosing | SystemMessage | TopicEvent


def parse_frame(data: bytes | str) -> Frame:
    """Parse one WebSocket text frame.

    Args:
        data: the frame payload (text frames arrive as ``str`` from most clients).

    Returns:
        The typed frame.

    Raises:
        FrameError: invalid JSON, not an object, or a missing/ill-typed envelope field.
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"invalid JSON: {exc}", raw) from exc
    if not isinstance(doc, dict):
        raise FrameError(f"frame is a JSON {type(doc).__name__}, not an object", raw)
    topic = doc.get("topicName")
    if not isinstance(topic, str) or not topic:
        raise FrameError("frame has no topicName", raw)
    body = doc.get("eventBody")
    if not isinstance(body, dict):
        raise FrameError("eventBody is missing or not an object", raw, topic)
    if topic == "channel.metadata":
        return _metadata(body)
    if topic == SOCKET_CLOSING:
        return SocketClosing(body)
    if topic.startswith("v2.system."):
        return SystemMessage(topic, _system_kind(topic), body)
    if topic == "v2.subscription.updated":
        return SystemMessage(topic, "subscription_changed", body)
    return TopicEvent(topic, body, _correlation_id(doc), _version(doc), raw)


def _metadata(body: dict[str, Any]) -> Frame:
    message = body.get("message")
    if message == HEARTBEAT_MESSAGE:
        return Heartbeat()
    if message == PONG_MESSAGE:
        return Pong()
    return ChannelMetadata(str(message))


def _system_kind(topic: str) -> str:
    # v2.system.no_longer_subscribed.<channelId> → "no_longer_subscribed"
    for kind in _SYSTEM_KINDS:
        if topic.startswith(f"v2.system.{kind}"):
            return kind
    return topic.removeprefix("v2.system.").split(".", 1)[0]


def _correlation_id(doc: dict[str, Any]) -> str | None:
    metadata = doc.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get("CorrelationId")
        return value if isinstance(value, str) else None
    return None


def _version(doc: dict[str, Any]) -> str | None:
    version = doc.get("version")
    return None if version is None else str(version)
