"""The notification WebSocket endpoint, and the hub of live sockets (docs/genesys-api.md §5.3,
§5.4).

A client opens ``ws://host:port/channels/{id}`` (the channel's ``connectUri``). The channel
must be live (404 otherwise); a second socket on the same channel kicks the first (§5.4) and
takes over its feed, so the channel's notifications continue on it without a gap.

:class:`SocketHub` knows the live :class:`~.sockets.SocketSession` of each channel. Whatever
ends a channel (expiry, eviction, a revoked token, a fault) hands the
:class:`~pipeline.emulator.state.channels.ChannelEnded` value to :meth:`SocketHub.end_channel`,
which sends the channel's system notice, if any, and closes the socket.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable

from aiohttp import web

from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.http.frames import FrameLog
from pipeline.emulator.http.sockets import SocketSession
from pipeline.emulator.state.channels import ChannelEnded
from pipeline.emulator.state.org import OrgState

__all__ = ["ChannelSocketApi", "SocketHub"]

log = logging.getLogger(__name__)


class SocketHub:
    """The live socket of each channel."""

    def __init__(self) -> None:
        self._sessions: dict[str, SocketSession] = {}

    def get(self, channel_id: str) -> SocketSession | None:
        """The live socket of ``channel_id``, if any."""
        return self._sessions.get(channel_id)

    def sessions(self) -> list[SocketSession]:
        """Every live socket."""
        return list(self._sessions.values())

    def attach(self, session: SocketSession) -> None:
        """``session`` is now its channel's socket."""
        self._sessions[session.channel_id] = session

    def detach(self, session: SocketSession) -> bool:
        """``session`` closed; True if it was still its channel's socket (not kicked)."""
        if self._sessions.get(session.channel_id) is not session:
            return False
        del self._sessions[session.channel_id]
        return True

    async def end_channel(self, ended: ChannelEnded) -> None:
        """Tell a live socket its channel ended (system message), then close it."""
        session = self._sessions.get(ended.channel.id)
        log.info("channel %s ended: %s", ended.channel.id, ended.reason)
        if session is None:
            return
        if ended.notice is not None:
            await session.send_system(ended.notice.topic_name, ended.notice.event_body())
        await session.close(1000, ended.reason.encode())

    async def end_channels(self, ended: Iterable[ChannelEnded]) -> None:
        """:meth:`end_channel` for each, in order."""
        for each in ended:
            await self.end_channel(each)

    async def close_all(self, code: int, message: bytes) -> None:
        """Close every live socket (the emulator is stopping)."""
        for session in self.sessions():
            await session.close(code, message)


class ChannelSocketApi:
    """``GET /channels/{channel_id}``: the WebSocket upgrade.

    Args:
        state: the org (channels and the fault plan).
        hub: the live sockets.
        config: the socket settings (heartbeat, tick, frame interval ...).
        frames: the frame log.
        bodies_for: the current bodies of a topic (the simulation).
        now: emulator time in seconds.
    """

    def __init__(
        self,
        state: OrgState,
        hub: SocketHub,
        config: EmulatorConfig,
        frames: FrameLog,
        bodies_for: Callable[[str], list[dict[str, object]]],
        now: Callable[[], float],
    ) -> None:
        self._state = state
        self._hub = hub
        self._config = config
        self._frames = frames
        self._bodies_for = bodies_for
        self._now = now

    def routes(self) -> list[web.RouteDef]:
        """The socket route."""
        return [web.get("/channels/{channel_id}", self.channel_socket)]

    async def channel_socket(self, request: web.Request) -> web.StreamResponse:
        """One socket per channel: a new one kicks the old (§5.4)."""
        channel_id = request.match_info["channel_id"]
        kicked = self._state.channels.connect_socket(channel_id, self._now())
        old = self._hub.get(channel_id)
        feed = None
        if kicked and old is not None:
            # The new socket carries on from where the old one stopped (nothing lost or sent
            # twice: BELIEF). Close code for the kicked socket is UNVERIFIED; 1000, a reason.
            feed = await old.hand_over()
            await old.close(1000, b"another connection to this channel")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = SocketSession(
            ws,
            request.transport,
            channel_id,
            config=self._config,
            faults=self._state.faults,
            frames=self._frames,
            topics_of=functools.partial(self._topics, channel_id),
            bodies_for=self._bodies_for,
            now=self._now,
            feed=feed,
        )
        self._hub.attach(session)
        log.info("socket connected on channel %s", channel_id)
        try:
            await session.run()
        finally:
            if self._hub.detach(session):
                self._state.channels.disconnect_socket(channel_id, self._now())
            log.info("socket closed on channel %s", channel_id)
        return ws

    def _topics(self, channel_id: str) -> tuple[str, ...]:
        channel = self._state.channels.get_channel(channel_id, self._now())
        return () if channel is None else tuple(channel.topics)
