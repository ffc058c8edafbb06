"""What the Genesys side hands to whoever consumes it (the producer): typed stream events.

A notification session yields, in order of occurrence:

- :class:`~pipeline.core.genesys.frames.TopicEvent` — a notification as received;
- :class:`BackfillEvent` — a snapshot value fetched from the REST API after a gap (or at
  start), shaped like a topic event's body so the same mapping applies, flagged as backfill;
- :class:`Gap` — an interval in which the stream was not live, with the topics it affected;
- :class:`DeadLetter` — bytes that could not be understood, with the reason;
- :class:`~pipeline.core.audit.AuditEvent` — a lifecycle fact (channel created, connected,
  token refreshed ...); its kinds and details are declared in :mod:`pipeline.core.audit`.
  A closed gap is the :class:`Gap` alone: the producer writes it as the ``gap.closed`` audit
  record (:func:`~pipeline.core.contract.records.gap_audit`), so there is no second
  ``gap.closed`` event to reconcile with it.

All times are epoch seconds (float, UTC). Values only; no I/O.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from pipeline.core.audit import AuditEvent
from pipeline.core.genesys.frames import TopicEvent

# AuditEvent lives in pipeline.core.audit; it stays importable from here, where the stream's
# event union names it.
__all__ = [
    "AuditEvent",
    "BackfillEvent",
    "DeadLetter",
    "Gap",
    "SnapshotTaken",
    "StreamEvent",
    "event_to_json",
]


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval in which the stream was not live.

    Attributes:
        channel_id: the channel whose stream broke.
        started_at: the last frame (or heartbeat) received before the failure.
        ended_at: when the stream was live again.
        topics: the subscribed topics whose notifications may be missing.
        reason: what broke it (``socket.dropped``, ``heartbeat.timeout``, ...).
    """

    channel_id: str
    started_at: float
    ended_at: float
    topics: tuple[str, ...]
    reason: str

    @property
    def seconds(self) -> float:
        """Length of the gap."""
        return max(0.0, self.ended_at - self.started_at)


@dataclass(frozen=True, slots=True)
class BackfillEvent:
    """A REST snapshot value, in the shape of a notification body for ``topic``.

    Attributes:
        topic: the notification topic this value stands in for.
        body: an ``eventBody``-shaped dict (e.g. ``{"group": ..., "data": [...]}``).
        fetched_at: when the snapshot was taken.
        reason: ``gap`` or ``initial``.
    """

    topic: str
    body: dict[str, Any]
    fetched_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something that could not be understood, with its original bytes.

    Attributes:
        raw: the bytes as received.
        reason: why it failed.
        stage: where (``parse``, ``map``, ``encode``, ``publish``).
        topic: the Genesys topic, when known.
        at: when (epoch seconds).
    """

    raw: bytes
    reason: str
    stage: str
    topic: str | None
    at: float


@dataclass(frozen=True, slots=True)
class SnapshotTaken:
    """A backfill snapshot finished: every :class:`BackfillEvent` of it has been handed on.

    Args:
        topics: the topics the snapshot covered (those with a REST snapshot).
        fetched_at: when it was fetched (epoch seconds), as its events' ``fetched_at``.
        reason: ``gap`` or ``initial``.
    """

    topics: tuple[str, ...]
    fetched_at: float
    reason: str


StreamEvent = TopicEvent | BackfillEvent | SnapshotTaken | Gap | DeadLetter | AuditEvent


def event_to_json(event: StreamEvent) -> dict[str, Any]:
    """A JSON-able view of a stream event (``pipeline watch`` prints these, one per line)."""
    match event:
        case TopicEvent():
            return {
                "type": "topic",
                "topic": event.topic,
                "correlation_id": event.correlation_id,
                "body": event.body,
            }
        case BackfillEvent():
            return {
                "type": "backfill",
                "topic": event.topic,
                "reason": event.reason,
                "fetched_at": event.fetched_at,
                "body": event.body,
            }
        case SnapshotTaken():
            return {
                "type": "snapshot",
                "topics": len(event.topics),
                "reason": event.reason,
                "fetched_at": event.fetched_at,
            }
        case Gap():
            return {
                "type": "gap",
                "channel_id": event.channel_id,
                "started_at": event.started_at,
                "ended_at": event.ended_at,
                "seconds": event.seconds,
                "topics": len(event.topics),
                "reason": event.reason,
            }
        case DeadLetter():
            return {
                "type": "dead_letter",
                "reason": event.reason,
                "stage": event.stage,
                "topic": event.topic,
                "at": event.at,
                "raw_base64": base64.b64encode(event.raw).decode(),
            }
        case AuditEvent():
            return {
                "type": "audit",
                "kind": str(event.kind),
                "at": event.at,
                "channel_id": event.channel_id,
                "details": dict(event.details),
            }
