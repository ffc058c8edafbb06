"""The notification stream: the shell that carries out a :class:`ChannelSession`'s actions.

One :class:`ChannelStream` per channel. It feeds the pure session every input (REST outcomes,
socket events, frames, timer ticks) and does what the session answers: REST calls run as
tasks whose outcome comes back as an input; each WebSocket gets a reader task that turns
frames into inputs; ``Emit`` items and backfill snapshots go to the ``sink``.

Backpressure: the inbox is bounded and socket readers ``await`` room in it, and ``Emit`` awaits
the sink. When Kafka is slow the sink blocks, the inbox fills, the readers stop reading and TCP
flow control slows the server — memory stays bounded and nothing is dropped here.

A long stall is a gap: while ``Emit`` blocks, nothing is read from the socket, so the stream
cannot vouch for what Genesys did meanwhile (whether the service buffers or drops a slow
reader's frames is UNVERIFIED). When one ``Emit`` blocked longer than
``SessionSettings.publish_stall_s``, the stream first hands the session every input that
queued up meanwhile (real frames: they are published, not dropped), then tells it
``PublishStalled(now, since)``; the session records the interval as a gap and asks for a
backfill, which starts only now that the sink takes items again. Consumers see a
``gap.closed`` audit with reason ``publish.stalled`` and a snapshot after it.

Bounded input: a WebSocket message over ``max_frame_bytes`` closes the socket with 1009
(websockets does it); the stream dead-letters what it knows (the limit, no bytes) and the
session recovers as from any lost socket (gap, reconnect, backfill).

Every REST outcome task and every backfill answers the session, whatever goes wrong in it
(an unexpected exception becomes a failure input), and a new REST action cancels the task of
the one before (the session gave up on it, :attr:`SessionSettings.call_timeout_s`).

The channels of a shard run under :mod:`pipeline.genesys.supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from pipeline.core.genesys import actions as act, inputs as inp
from pipeline.core.genesys.backfill import (
    aggregate_events,
    observation_events,
    plan_snapshot,
    user_aggregate_events,
)
from pipeline.core.genesys.events import SnapshotTaken, StreamEvent
from pipeline.core.genesys.frames import parse_frame
from pipeline.core.genesys.rejections import rejected_topics
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.errors import ApiError, AuthError, FrameError, RateLimitedError
from pipeline.genesys.rest import GenesysRest

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "ChannelStream", "Sink"]

log = logging.getLogger(__name__)

Sink = Callable[[StreamEvent], Awaitable[None]]
_PING = '{"message": "ping"}'
_MESSAGE_TOO_BIG = 1009  # RFC 6455 §7.4.1

DEFAULT_MAX_FRAME_BYTES = 1 << 20
"""The largest WebSocket message read (1 MiB); a larger one closes the socket with 1009."""


def _expires_at(text: object, fallback: float) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return fallback


def _failure(exc: Exception) -> tuple[str, float | None, int | None]:
    """(reason, retry_after, status) of a REST failure; the reason holds no secrets.

    Anything but a :class:`GenesysError` is a failure without an answer (status None): an
    unexpected exception in the shell is retried, and logged for whoever fixes it.
    """
    if isinstance(exc, RateLimitedError):
        return "rate limited", exc.retry_after, 429
    if isinstance(exc, ApiError):  # status 0: no answer
        return f"{exc.status} {exc.code}", exc.retry_after, exc.status or None
    if isinstance(exc, AuthError):
        return f"login refused: {exc.error}", None, exc.status or None
    log.error("unexpected %s in a Genesys call", type(exc).__name__, exc_info=exc)
    return f"unexpected {type(exc).__name__}", None, None


class ChannelStream:
    """Run one channel's session until stopped (or failed for good).

    Args:
        rest: the shard's REST client (shared by its channels).
        topics: the channel's topics (1 to 1,000).
        sink: receives every stream event; awaiting it is the backpressure.
        settings: the session's timers.
        clock: epoch seconds.
        inbox_size: inputs waiting for the session before socket readers block.
        open_timeout_s: WebSocket handshake timeout.
        max_frame_bytes: the largest WebSocket message read (larger: closed with 1009).
    """

    def __init__(
        self,
        rest: GenesysRest,
        topics: Sequence[str],
        sink: Sink,
        *,
        settings: SessionSettings | None = None,
        clock: Callable[[], float] = time.time,
        inbox_size: int = 10_000,
        open_timeout_s: float = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._topics = tuple(topics)
        self._settings = settings or SessionSettings()
        self.session = ChannelSession(self._topics, self._settings)
        self._rest = rest
        self._sink = sink
        self._clock = clock
        self._inbox: asyncio.Queue[inp.SessionInput] = asyncio.Queue(inbox_size)
        self._open_timeout_s = open_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._sockets: dict[int, ClientConnection] = {}
        self._socket_tasks: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._call: asyncio.Task[None] | None = None  # the REST call the session waits for
        self._backfill: asyncio.Task[None] | None = None
        self._stalled_since: float | None = None
        self._stop_requested = False
        self.stalls = 0

    @property
    def topics(self) -> tuple[str, ...]:
        """The channel's topics."""
        return self._topics

    def reset(self) -> None:
        """A fresh session (a new channel) for the next :meth:`run`, after one that ended."""
        self.session = ChannelSession(self._topics, self._settings)
        self._inbox = asyncio.Queue(self._inbox.maxsize)
        self._stalled_since = None

    def stop(self) -> None:
        """Ask the stream to close its sockets and return from :meth:`run`."""
        self._stop_requested = True
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait(inp.Stop(self._clock()))

    async def run(self) -> None:
        """Drive the session until it stops; cleans up every task and socket."""
        try:
            done = await self._handle(inp.Started(self._clock()))
            while not done:
                done = await self._handle(await self._next_input())
        finally:
            await self._cleanup()

    async def _next_input(self) -> inp.SessionInput:
        if self._stop_requested:
            return inp.Stop(self._clock())
        if self._stalled_since is not None and self._inbox.empty():
            # Reported once what queued up during the stall was handled: times never go back.
            since, self._stalled_since = self._stalled_since, None
            return inp.PublishStalled(self._clock(), since)
        deadline = self.session.next_deadline()
        now = self._clock()
        if not self._inbox.empty() and (deadline is None or deadline > now):
            await asyncio.sleep(0)  # a flood: let the loop breathe, without a task per frame
            if not self._inbox.empty():
                return self._inbox.get_nowait()
        timeout = None if deadline is None else max(0.0, deadline - now)
        try:
            return await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            return inp.Tick(self._clock())

    async def _handle(self, event: inp.SessionInput) -> bool:
        """Feed one input; carry out the actions. True when the session is over."""
        for action in self.session.handle(event):
            if await self._do(action):
                return True
        return self.session.state in {SessionState.STOPPED, SessionState.FAILED}

    async def _do(self, action: act.Action) -> bool:
        match action:
            case act.Emit(item=item):
                await self._emit(item)
            case act.FetchToken(force=force, outlive=outlive):
                self._start_call(self._fetch_token(force, outlive))
            case act.CreateChannel():
                self._start_call(self._create_channel())
            case act.Subscribe(channel_id=channel_id, topics=topics):
                self._start_call(self._subscribe(channel_id, topics))
            case act.CheckChannel(channel_id=channel_id):
                self._start_call(self._check_channel(channel_id))
            case act.OpenSocket(socket_id=socket_id, connect_uri=uri):
                task = asyncio.create_task(self._socket(socket_id, uri))
                self._socket_tasks[socket_id] = task
            case act.CloseSocket(socket_id=socket_id, reason=reason):
                await self._close_socket(socket_id, reason)
            case act.SendPing(socket_id=socket_id):
                ws = self._sockets.get(socket_id)
                if ws is not None:
                    self._spawn(self._send(ws, _PING))
            case act.Backfill(reason=reason, topics=topics):
                if self._backfill is not None:
                    self._backfill.cancel()
                self._backfill = asyncio.create_task(self._run_backfill(reason, topics))
            case act.Stopped(reason=reason):
                log.info("channel session stopped: %s", reason)
                return True
        return False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_call(self, coro: Coroutine[Any, Any, None]) -> None:
        # The session has one REST call in flight: a new one means it gave up on the old one,
        # whose late answer must not be taken for the new call's.
        if self._call is not None and not self._call.done():
            self._call.cancel()
        self._call = self._spawn(coro)

    async def _emit(self, item: StreamEvent) -> None:
        started = self._clock()
        await self._sink(item)
        if self._clock() - started >= self._settings.publish_stall_s:
            self.stalls += 1
            log.warning(
                "handing the stream downstream blocked for %.0f s: the interval is a gap",
                self._clock() - started,
            )
            if self._stalled_since is None:
                self._stalled_since = started

    async def _put(self, event: inp.SessionInput) -> None:
        await self._inbox.put(event)

    # ------------------------------------------------------------------ REST outcomes
    # One HTTP request per session call (attempts=1): the session counts attempts and backs
    # off itself (pipeline.core.http_policy, "Where attempts are counted").

    async def _fetch_token(self, force: bool, outlive: float | None) -> None:
        tokens = self._rest.tokens
        try:
            await tokens.token(force=force, attempts=1, valid_until=outlive)
        except Exception as exc:  # noqa: BLE001 - every outcome answers the session
            reason, retry_after, status = _failure(exc)
            await self._put(inp.TokenFailed(self._clock(), reason, retry_after, status))
        else:
            await self._put(inp.TokenReady(self._clock(), tokens.expires_at))

    async def _create_channel(self) -> None:
        # Read before the call: the token the call uses is this one or a newer one, so this is
        # a lower bound of when the channel dies with its token (§5.7).
        token_expires_at = self._rest.tokens.expires_at
        try:
            channel = await self._rest.create_channel(attempts=1)
        except Exception as exc:  # noqa: BLE001 - every outcome answers the session
            reason, retry_after, status = _failure(exc)
            await self._put(inp.ChannelCreateFailed(self._clock(), reason, retry_after, status))
            return
        now = self._clock()
        expires = _expires_at(channel.get("expires"), now + 86400.0)
        channel_id, uri = str(channel["id"]), str(channel["connectUri"])
        await self._put(inp.ChannelCreated(now, channel_id, uri, expires, token_expires_at))

    async def _subscribe(self, channel_id: str, topics: tuple[str, ...]) -> None:
        try:
            answer = await self._rest.put_subscriptions(channel_id, list(topics), attempts=1)
        except Exception as exc:  # noqa: BLE001 - every outcome answers the session
            reason, retry_after, status = _failure(exc)
            await self._put(inp.SubscribeFailed(self._clock(), reason, retry_after, status))
        else:
            # The PUT answer carries no expiry; the session assumes the documented 24 h.
            rejected = rejected_topics(topics, answer)
            await self._put(inp.Subscribed(self._clock(), rejected=rejected))

    async def _check_channel(self, channel_id: str) -> None:
        try:
            exists = await self._rest.channel_exists(channel_id, attempts=1)
        except Exception as exc:  # noqa: BLE001 - every outcome answers the session
            reason, retry_after, status = _failure(exc)
            await self._put(inp.ChannelCheckFailed(self._clock(), reason, retry_after, status))
        else:
            await self._put(inp.ChannelChecked(self._clock(), exists))

    # ------------------------------------------------------------------ sockets

    async def _socket(self, socket_id: int, uri: str) -> None:
        """Open one socket, then read it until it closes; every outcome becomes an input."""
        try:
            ws = await websockets.connect(
                uri, open_timeout=self._open_timeout_s, max_size=self._max_frame_bytes
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            await self._put(
                inp.SocketOpenFailed(self._clock(), socket_id, f"HTTP {status}", status)
            )
            return
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            await self._put(inp.SocketOpenFailed(self._clock(), socket_id, type(exc).__name__))
            return
        self._sockets[socket_id] = ws
        await self._put(inp.SocketOpened(self._clock(), socket_id))
        code, reason = await self._read(socket_id, ws)
        self._sockets.pop(socket_id, None)
        await self._put(inp.SocketClosed(self._clock(), socket_id, code, reason))

    async def _read(self, socket_id: int, ws: ClientConnection) -> tuple[int | None, str]:
        try:
            async for message in ws:
                now = self._clock()
                try:
                    frame = parse_frame(message)
                except FrameError as exc:
                    await self._put(inp.BadFrame(now, socket_id, exc))
                else:
                    await self._put(inp.FrameReceived(now, socket_id, frame))
        except websockets.ConnectionClosed as exc:
            sent = exc.sent
            if sent is not None and sent.code == _MESSAGE_TOO_BIG and exc.rcvd is None:
                await self._too_big(socket_id, sent.reason)
                return _MESSAGE_TOO_BIG, sent.reason
            received = exc.rcvd
            return (received.code, received.reason) if received else (None, "no close frame")
        return ws.close_code, ws.close_reason or "closed"

    async def _too_big(self, socket_id: int, reason: str) -> None:
        # websockets refused the message and closed with 1009: its bytes are gone, but the
        # dead letter says what happened and the lost socket's gap covers what it carried.
        log.warning("a frame over %d bytes closed the socket: %s", self._max_frame_bytes, reason)
        error = FrameError(f"frame over the {self._max_frame_bytes}-byte limit ({reason})", b"")
        await self._put(inp.BadFrame(self._clock(), socket_id, error))

    async def _close_socket(self, socket_id: int, reason: str) -> None:
        ws = self._sockets.get(socket_id)
        if ws is not None:
            self._spawn(self._close_ws(ws, reason))
            return
        task = self._socket_tasks.get(socket_id)
        if task is not None and not task.done():
            task.cancel()  # still opening: abandon it

    @staticmethod
    async def _close_ws(ws: ClientConnection, reason: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await ws.close(1000, reason[:120])

    @staticmethod
    async def _send(ws: ClientConnection, text: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await ws.send(text)

    # ------------------------------------------------------------------ backfill

    async def _run_backfill(self, reason: str, topics: tuple[str, ...]) -> None:
        now = self._clock()
        plan = plan_snapshot(topics, now)
        try:
            for body in plan.observation_queries:
                for event in observation_events(
                    await self._rest.queue_observations(body), now, reason
                ):
                    await self._sink(event)
            for body in plan.aggregate_queries:
                answer = await self._rest.conversation_aggregates(body)
                for event in aggregate_events(answer, now, reason):
                    await self._sink(event)
            for body in plan.user_queries:
                answer = await self._rest.user_aggregates(body)
                for event in user_aggregate_events(answer, now, reason):
                    await self._sink(event)
            await self._sink(SnapshotTaken(plan.covered, now, reason))
        except Exception as exc:  # noqa: BLE001 - every backfill answers the session
            await self._put(inp.BackfillFinished(self._clock(), False, _failure(exc)[0]))
        else:
            await self._put(inp.BackfillFinished(self._clock(), True))

    # ------------------------------------------------------------------ shutdown

    async def _cleanup(self) -> None:
        for ws in list(self._sockets.values()):
            await self._close_ws(ws, "stopping")
        self._sockets.clear()
        pending = [*self._tasks, *self._socket_tasks.values()]
        self._socket_tasks.clear()
        if self._backfill is not None:
            pending.append(self._backfill)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
