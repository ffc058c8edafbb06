"""One live notification WebSocket of the emulator (docs/genesys-api.md §5.3).

Each socket runs two loops. The *reader* answers ``{"message": "ping"}`` with a ``pong`` on
``channel.metadata`` and ignores anything else. The *writer* wakes every ``tick_s`` of real
time and takes one :meth:`SocketSession.step`, which, in order:

1. carries out planned socket faults (abrupt drop, stall, ``socket_closing`` then the close
   once its delay has passed on the emulator's clock);
2. sends the heartbeat when ``heartbeat_s`` has passed (unless paused by a fault);
3. sends the topic frames the :class:`~.feed.TopicFeed` says are due, each passed through the
   fault plan (malformed, truncated, duplicated, reordered).

Every frame sent goes to the :class:`~.frames.FrameLog`. Time is read from ``now`` (emulator
time), never from the event loop, so a test with a manual clock can advance it and call
``step()`` itself instead of waiting for the writer.

A socket kicked by a newer one on the same channel (one socket per channel, §5.4)
:meth:`~SocketSession.hand_over` its feed to it: the channel's notifications carry on on the
new socket from where the old one stopped, nothing re-baselined or skipped (BELIEF: the
service delivers a channel's notifications to whichever socket is current).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.http.feed import TopicFeed
from pipeline.emulator.http.frames import HEARTBEAT, PONG, FrameLog, envelope
from pipeline.emulator.state.faults import DropSocket, FaultPlan, SendSocketClosing, StallSocket

__all__ = ["SocketSession"]

log = logging.getLogger(__name__)


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
        config: ``heartbeat_s``, ``tick_s``, ``frame_interval_s``, ``send_initial_state`` and
            ``socket_closing_delay_s`` apply.
        faults: the emulator's fault plan.
        frames: the emulator's frame log.
        topics_of: current subscriptions of the channel.
        bodies_for: current bodies of a topic (the simulation).
        now: emulator time in seconds.
        feed: the channel's feed, handed over by the socket this one replaced; None starts a
            new one (its topics baselined).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        channel_id: str,
        *,
        config: EmulatorConfig,
        faults: FaultPlan,
        frames: FrameLog,
        topics_of: Callable[[], tuple[str, ...]],
        bodies_for: Callable[[str], list[dict[str, object]]],
        now: Callable[[], float],
        feed: TopicFeed | None = None,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.channel_id = channel_id
        self._config = config
        self._faults = faults
        self._frames = frames
        self._topics_of = topics_of
        self._bodies_for = bodies_for
        self._now = now
        self._feed = feed or TopicFeed(config.frame_interval_s, config.send_initial_state)
        self._handed_over = False
        self._last_heartbeat = now()
        self._held: dict[str, _Pending] = {}
        self._closing_at: float | None = None
        self._stalled = False
        self._stepping = asyncio.Lock()  # the writer loop and a test may step at once
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

    async def step(self) -> bool:
        """Take one writer step now: faults, heartbeat, due frames.

        Returns:
            True when the socket is gone (dropped, or closed after ``socket_closing``).
        """
        async with self._stepping:
            if self._handed_over:
                return True
            if await self._run_socket_actions():
                return True
            await self._maybe_heartbeat()
            await self._send_due_events()
            return False

    @property
    def feed(self) -> TopicFeed:
        """What this socket sent of each topic (handed to the socket that replaces it)."""
        return self._feed

    async def hand_over(self) -> TopicFeed:
        """Stop sending and give up the feed, for the socket that replaces this one.

        Waits for a step in progress, so every frame the feed counts as sent was sent here.
        """
        async with self._stepping:
            self._handed_over = True
            return self._feed

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
            await asyncio.sleep(self._config.tick_s)
            if await self.step():
                return

    async def _run_socket_actions(self) -> bool:
        """Carry out planned socket faults; True when the socket is gone."""
        now = self._now()
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
                    wait = self._config.socket_closing_delay_s if delay is None else delay
                    self._closing_at = now + wait
        if self._closing_at is not None and now >= self._closing_at:
            await self.close(1001, b"socket closing")
            return True
        return False

    async def _maybe_heartbeat(self) -> None:
        now = self._now()
        if now - self._last_heartbeat < self._config.heartbeat_s:
            return
        self._last_heartbeat = now
        if not self._faults.heartbeats_paused(self.channel_id):
            await self._send_logged("heartbeat", "channel.metadata", HEARTBEAT)

    async def _send_due_events(self) -> None:
        self._feed.sync_topics(self._topics_of(), self._bodies_for)
        for frame in self._feed.due_frames(self._bodies_for, self._now()):
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
            self._now(),
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
        self._frames.add(self.channel_id, kind, topic, self._now())
