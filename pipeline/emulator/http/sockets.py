"""The notification WebSocket of the emulator: one live socket per channel.

Each socket runs two loops. The *reader* answers ``{"message": "ping"}`` with a ``pong`` on
``channel.metadata`` (reference §5.3) and ignores anything else. The *writer* wakes every tick
and, in order: carries out planned socket faults (abrupt drop, ``socket_closing`` then close),
sends the heartbeat when due (unless paused by a fault), and sends the topic frames the
:class:`~pipeline.emulator.http.feed.TopicFeed` says are due, each passed through the fault plan
(malformed, truncated, duplicated, reordered).

Every frame sent is written to the :class:`FrameLog`, so a test can account for each event
end to end: received, dead-lettered (``intact`` False) or inside a reported gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from pipeline.emulator.http.feed import TopicFeed
from pipeline.emulator.state.faults import DropSocket, FaultPlan, SendSocketClosing, StallSocket

__all__ = ["FrameLog", "SentFrame", "SocketSession", "envelope"]

log = logging.getLogger(__name__)

HEARTBEAT = {"message": "WebSocket Heartbeat"}
PONG = {"message": "pong"}


def envelope(topic: str, body: dict[str, Any], correlation_id: str | None = None) -> str:
    """A notification frame as the service sends it (§5.3)."""
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
        wall: epoch seconds it was sent (to compare with a client's clock).
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
    """The last ``limit`` frames sent, across channels."""

    def __init__(self, limit: int = 200_000, keep_text: bool = False) -> None:
        self._frames: deque[SentFrame] = deque(maxlen=limit)
        self._seq = 0
        self._keep_text = keep_text

    def add(self, channel_id: str, kind: str, topic: str, at: float, **extra: Any) -> SentFrame:
        """Append one frame; returns it."""
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
            time.time(),
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


@dataclass(slots=True)
class _Pending:
    """An event frame held back by a reorder fault."""

    topic: str
    correlation_id: str
    body_key: str


class SocketSession:
    """One live WebSocket on a channel.

    Args:
        ws: the prepared aiohttp WebSocket.
        transport: the request's TCP transport (for abrupt drops).
        channel_id: the channel it belongs to.
        faults: the emulator's fault plan.
        frames: the emulator's frame log.
        topics_of: current subscriptions of the channel.
        bodies_for: current bodies of a topic (the simulation).
        clock: emulator time in seconds.
        heartbeat_s, tick_s, frame_interval_s, send_initial_state: see ``EmulatorConfig``.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        channel_id: str,
        *,
        faults: FaultPlan,
        frames: FrameLog,
        topics_of: Callable[[], tuple[str, ...]],
        bodies_for: Callable[[str], list[dict[str, object]]],
        clock: Callable[[], float],
        heartbeat_s: float,
        tick_s: float,
        frame_interval_s: float,
        send_initial_state: bool,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.channel_id = channel_id
        self._faults = faults
        self._frames = frames
        self._topics_of = topics_of
        self._bodies_for = bodies_for
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._tick_s = tick_s
        self._feed = TopicFeed(frame_interval_s, send_initial_state)
        self._last_heartbeat = clock()
        self._held: dict[str, _Pending] = {}
        self._closing_at: float | None = None
        self._stalled = False
        self.closed = asyncio.Event()

    async def run(self) -> None:
        """Serve the socket until it closes (either side)."""
        self._feed.sync_topics(self._topics_of(), self._bodies_for)
        writer = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.closed.set()

    async def send_system(self, topic: str, body: dict[str, Any]) -> None:
        """Send a system message (``no_longer_subscribed``, ``token_revoked``)."""
        await self._send_logged("system", topic, body)

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        """Close the socket politely."""
        await self.ws.close(code=code, message=message)

    def abort(self) -> None:
        """Drop the TCP connection with no close frame (an abrupt network failure)."""
        if self._transport is not None:
            self._transport.abort()

    async def _read_loop(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                doc = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict) and doc.get("message") == "ping":
                await self._send_logged("pong", "channel.metadata", PONG)

    async def _write_loop(self) -> None:
        while not self.ws.closed:
            await asyncio.sleep(self._tick_s)
            if await self._run_socket_actions():
                return
            await self._maybe_heartbeat()
            await self._send_due_events()

    async def _run_socket_actions(self) -> bool:
        """Carry out planned socket faults; True when the socket is gone."""
        now = self._clock()
        for action in self._faults.take_socket_actions(self.channel_id):
            match action:
                case DropSocket():
                    log.info("fault: dropping socket of channel %s", self.channel_id)
                    self.abort()
                    return True
                case StallSocket():
                    log.info("fault: stalling socket of channel %s", self.channel_id)
                    self._stalled = True
                case SendSocketClosing(close_after=delay):
                    await self._send_logged("socket_closing", "v2.system.socket_closing", {})
                    self._closing_at = now + delay
        if self._closing_at is not None and now >= self._closing_at:
            await self.close(1001, b"socket closing")
            return True
        return False

    async def _maybe_heartbeat(self) -> None:
        now = self._clock()
        if now - self._last_heartbeat < self._heartbeat_s:
            return
        self._last_heartbeat = now
        if not self._faults.heartbeats_paused(self.channel_id):
            await self._send_logged("heartbeat", "channel.metadata", HEARTBEAT)

    async def _send_due_events(self) -> None:
        self._feed.sync_topics(self._topics_of(), self._bodies_for)
        for frame in self._feed.due_frames(self._bodies_for, self._clock()):
            correlation_id = str(uuid.uuid4())
            text = envelope(frame.topic, frame.body, correlation_id)
            pending = _Pending(frame.topic, correlation_id, frame.key)
            shaped = self._faults.shape_frame(self.channel_id, text)
            if not shaped:
                self._held[text] = pending
            # A frame both reordered and altered is attributed to the frame that released it
            # (an edge case of combined faults that no test needs).
            for out in shaped:
                held = self._held.pop(out, None)
                await self._send_event(out, held or pending, intact=held is not None or out == text)

    async def _send_event(self, text: str, source: _Pending, *, intact: bool) -> None:
        if self.ws.closed:
            return
        if not self._stalled:  # a stalled socket "sends" into a black hole
            await self.ws.send_str(text)
        self._frames.add(
            self.channel_id,
            "event",
            source.topic,
            self._clock(),
            correlation_id=source.correlation_id,
            body_key=source.body_key,
            intact=intact,
            text=text,
        )

    async def _send_logged(self, kind: str, topic: str, body: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        if not self._stalled:
            await self.ws.send_str(envelope(topic, body))
        self._frames.add(self.channel_id, kind, topic, self._clock())
