"""The frames the emulator's sockets send: their envelope, and the log of every one sent.

Every frame sent is written to the :class:`FrameLog`, so a test can account for each event
end to end: received, dead-lettered (``intact`` False) or inside a reported gap. The admin API
serves the log at ``/__emulator/frames``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

__all__ = ["HEARTBEAT", "PONG", "FrameLog", "SentFrame", "envelope"]

HEARTBEAT = {"message": "WebSocket Heartbeat"}
"""The heartbeat's ``eventBody`` on ``channel.metadata`` (§5.3)."""
PONG = {"message": "pong"}
"""The answer to ``{"message": "ping"}`` on ``channel.metadata`` (§5.3)."""


def envelope(topic: str, body: dict[str, Any], correlation_id: str | None = None) -> str:
    """A notification frame as the service sends it (§5.3).

    Args:
        topic: the ``topicName``.
        body: the ``eventBody``.
        correlation_id: ``metadata.CorrelationId``, for event frames.

    Returns:
        The frame's text.
    """
    doc: dict[str, Any] = {"topicName": topic, "version": "2", "eventBody": body}
    if correlation_id is not None:
        doc["metadata"] = {"CorrelationId": correlation_id}
    return orjson.dumps(doc).decode()


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One frame as it left the emulator.

    Attributes:
        seq: position in the emulator's log (1-based, across channels).
        channel_id: the channel whose socket sent it.
        kind: ``event``, ``heartbeat``, ``pong``, ``socket_closing`` or ``system``.
        topic: the frame's ``topicName``.
        correlation_id: ``metadata.CorrelationId`` of an event frame.
        body_key: which body of the topic (see ``feed.body_key``).
        intact: False when a fault made the bytes unparseable (malformed, truncated).
        at: emulator time (seconds since start) it was sent.
        wall: epoch seconds it was sent, on the emulator's clock (to compare with a client's).
        text: the frame as sent, when the log keeps texts.
    """

    seq: int
    channel_id: str
    kind: str
    topic: str
    correlation_id: str | None
    body_key: str | None
    intact: bool
    at: float
    wall: float
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The admin API's view of the frame."""
        return asdict(self)


class FrameLog:
    """The last ``limit`` frames sent, across channels.

    Args:
        wall: epoch seconds now (the emulator clock's ``time``).
        limit: how many frames to keep.
        keep_text: keep each frame's text (costs memory).
    """

    def __init__(
        self, wall: Callable[[], float], limit: int = 200_000, keep_text: bool = False
    ) -> None:
        self._wall = wall
        self._frames: deque[SentFrame] = deque(maxlen=limit)
        self._seq = 0
        self._keep_text = keep_text

    def add(self, channel_id: str, kind: str, topic: str, at: float, **extra: Any) -> SentFrame:
        """Append one frame; returns it.

        Args:
            channel_id: the sending channel.
            kind: see :class:`SentFrame`.
            topic: the ``topicName``.
            at: emulator time.
            **extra: ``correlation_id``, ``body_key``, ``intact`` (default True), ``text``.
        """
        self._seq += 1
        frame = SentFrame(
            self._seq,
            channel_id,
            kind,
            topic,
            extra.get("correlation_id"),
            extra.get("body_key"),
            extra.get("intact", True),
            at,
            self._wall(),
            extra.get("text") if self._keep_text else None,
        )
        self._frames.append(frame)
        return frame

    def frames(self, channel_id: str | None = None, since: int = 0) -> list[SentFrame]:
        """Frames after ``since`` (a seq), optionally of one channel."""
        return [
            f
            for f in self._frames
            if f.seq > since and (channel_id is None or f.channel_id == channel_id)
        ]
