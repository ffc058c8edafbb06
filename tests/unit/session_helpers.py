"""Shared values and helpers for the channel-session tests (no sockets, no sleeps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from pipeline.core.audit import AuditEvent
from pipeline.core.genesys.actions import Action, Emit
from pipeline.core.genesys.frames import Frame, TopicEvent, parse_frame
from pipeline.core.genesys.inputs import (
    ChannelCreated,
    FrameReceived,
    SocketOpened,
    Started,
    Subscribed,
    TokenReady,
)
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings

__all__ = [
    "CH",
    "CH2",
    "EXPIRES",
    "T0",
    "TOPICS",
    "URI",
    "URI2",
    "audit_kinds",
    "audits",
    "event",
    "frame",
    "live_session",
    "plain",
    "received",
    "snapshot",
    "state_of",
]

TOPICS = (
    "v2.analytics.queues.8f7e2c1a-0000-4000-8000-000000000001.observations",
    "v2.analytics.queues.8f7e2c1a-0000-4000-8000-000000000002.observations",
)
CH = "streaming-0-abc"
CH2 = "streaming-0-def"
URI = f"wss://streaming.example.test/channels/{CH}"
URI2 = f"wss://streaming.example.test/channels/{CH2}"
T0 = 1_000_000.0
EXPIRES = T0 + 86_400.0


def zero() -> float:
    """A jitter that always draws 0: every backoff delay is 0."""
    return 0.0


def live_session(
    jitter: Callable[[], float] = zero, settings: SessionSettings | None = None
) -> ChannelSession:
    """A session driven to LIVE on channel ``CH`` with socket 1, all at ``T0``."""
    session = ChannelSession(TOPICS, settings, jitter)
    for event in (
        Started(T0),
        TokenReady(T0),
        ChannelCreated(T0, CH, URI, EXPIRES),
        Subscribed(T0),
        SocketOpened(T0, 1),
    ):
        session.handle(event)
    return session


def frame(topic: str, body: dict[str, object] | None = None) -> Frame:
    """Parse an envelope as the service would send it (§5.3)."""
    return parse_frame(orjson.dumps({"topicName": topic, "eventBody": body or {}}))


def event(topic: str, body: dict[str, object] | None = None) -> TopicEvent:
    """A parsed topic event."""
    parsed = frame(topic, body)
    assert isinstance(parsed, TopicEvent)
    return parsed


def state_of(session: ChannelSession) -> SessionState:
    """``session.state``, through a call: mypy would narrow the property across handle()."""
    return session.state


def snapshot(session: ChannelSession) -> tuple[object, ...]:
    """``(state, socket_id, sockets)``, read fresh (a call mypy does not narrow across)."""
    return (session.state, session.socket_id, session.sockets)


def received(
    now: float, socket_id: int, topic: str, body: dict[str, object] | None = None
) -> FrameReceived:
    """A ``FrameReceived`` for a parsed envelope."""
    return FrameReceived(now, socket_id, frame(topic, body))


def audits(actions: Sequence[Action]) -> list[AuditEvent]:
    """The audit events among ``actions``."""
    return [a.item for a in actions if isinstance(a, Emit) and isinstance(a.item, AuditEvent)]


def audit_kinds(actions: Sequence[Action]) -> list[str]:
    """The kinds of the audit events among ``actions``, in order."""
    return [a.kind for a in audits(actions)]


def plain(actions: Sequence[Action]) -> list[Action]:
    """``actions`` without the audit events (asserted separately, by kind)."""
    return [a for a in actions if not (isinstance(a, Emit) and isinstance(a.item, AuditEvent))]
