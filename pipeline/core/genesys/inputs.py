"""What happened: the inputs a :class:`~pipeline.core.genesys.session.ChannelSession` is fed.

The shell turns everything it observes into one of these values and passes it to
``ChannelSession.handle()``: the outcome of an action it carried out (a REST answer, a socket
that opened or failed), something the server did (a frame, a close), a timer (:class:`Tick`)
or an operator's wish (:class:`Stop`). Every input carries ``now``: epoch seconds on the
shell's clock, which must not go backwards between inputs. The machine never reads a clock.

Failure inputs carry ``reason`` (a short, safe text: never a token, header or body),
``retry_after`` (seconds, from a ``Retry-After`` header, if any) and ``status`` (the HTTP status,
``None`` for a network error or timeout).

Contract with the shell: every REST action (``FetchToken``, ``CreateChannel``, ``Subscribe``,
``CheckChannel``) is answered exactly once, by its success or failure input, and the machine
has at most one of them in flight. Every ``OpenSocket(socket_id)`` is answered by
:class:`SocketOpened` or :class:`SocketOpenFailed` for that ``socket_id``, unless the machine
cancels it with ``CloseSocket`` first. The shell enforces I/O timeouts and reports them as
failures; as a last line of defence the machine also gives up on a REST call or a socket
open that got no answer within ``SessionSettings.call_timeout_s`` (as if it failed with no
answer): once the machine asks for a new REST call, the shell must drop the old one, so a
late answer can never be taken for the new call's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.genesys.frames import Frame
from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.errors import FrameError

__all__ = [
    "BackfillFinished",
    "BadFrame",
    "ChannelCheckFailed",
    "ChannelChecked",
    "ChannelCreateFailed",
    "ChannelCreated",
    "FrameReceived",
    "PublishStalled",
    "SessionInput",
    "SocketClosed",
    "SocketOpenFailed",
    "SocketOpened",
    "Started",
    "Stop",
    "SubscribeFailed",
    "Subscribed",
    "Tick",
    "TokenFailed",
    "TokenReady",
]


@dataclass(frozen=True, slots=True)
class Started:
    """The shell wants the session to run: it will ask for a token first."""

    now: float


@dataclass(frozen=True, slots=True)
class TokenReady:
    """The token provider holds a valid token (answer to ``FetchToken``).

    Attributes:
        expires_at: when that token expires (epoch seconds, a lower bound: from the login's
            send time), if the shell knows; channels die with their token (§5.7).
    """

    now: float
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class TokenFailed:
    """The token provider could not get a token (answer to ``FetchToken``).

    Attributes:
        status: the login service's HTTP status when it refused (401, 400 ...: the
            credentials are wrong), ``None`` for no answer or a failure it may recover from.
    """

    now: float
    reason: str
    retry_after: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelCreated:
    """``POST /api/v2/notifications/channels`` succeeded (§5.1).

    Attributes:
        channel_id: the channel's ``id``.
        connect_uri: its ``connectUri`` (the WebSocket address).
        expires_at: its ``expires``, as epoch seconds.
        token_expires_at: when the token that created it expires (a lower bound), if the
            shell knows; else the session uses the last ``TokenReady.expires_at``.
    """

    now: float
    channel_id: str
    connect_uri: str
    expires_at: float
    token_expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class ChannelCreateFailed:
    """``POST /api/v2/notifications/channels`` failed."""

    now: float
    reason: str
    retry_after: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    """``PUT .../subscriptions`` succeeded (answer to ``Subscribe``).

    Attributes:
        expires_at: the channel's new ``expires`` if the shell knows it (e.g. from a
            ``GET channels``); ``None`` when it does not (the PUT answer has no ``expires``).
        rejected: the topics Genesys refused (``ignoreErrors=true``, §5.6); the rest are
            subscribed.
    """

    now: float
    expires_at: float | None = None
    rejected: tuple[RejectedTopic, ...] = ()


@dataclass(frozen=True, slots=True)
class SubscribeFailed:
    """``PUT .../subscriptions`` failed (answer to ``Subscribe``)."""

    now: float
    reason: str
    retry_after: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelChecked:
    """``HEAD /api/v2/notifications/channels/{id}`` answered: 200 → exists, 404 → not."""

    now: float
    exists: bool


@dataclass(frozen=True, slots=True)
class ChannelCheckFailed:
    """``HEAD /api/v2/notifications/channels/{id}`` failed with neither 200 nor 404."""

    now: float
    reason: str
    retry_after: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class SocketOpened:
    """The WebSocket tagged ``socket_id`` completed its opening handshake."""

    now: float
    socket_id: int


@dataclass(frozen=True, slots=True)
class SocketOpenFailed:
    """The WebSocket tagged ``socket_id`` could not open.

    Attributes:
        status: the HTTP status of a rejected upgrade (404 → the channel is gone), else None.
    """

    now: float
    socket_id: int
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A frame arrived on the WebSocket tagged ``socket_id`` and parsed."""

    now: float
    socket_id: int
    frame: Frame


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Bytes arrived on the WebSocket tagged ``socket_id`` and did not parse."""

    now: float
    socket_id: int
    error: FrameError


@dataclass(frozen=True, slots=True)
class SocketClosed:
    """The WebSocket tagged ``socket_id`` is closed (by either side, or it broke).

    Attributes:
        code: the close code, ``None`` when the connection broke without one.
    """

    now: float
    socket_id: int
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class BackfillFinished:
    """The REST snapshot asked for by the latest ``Backfill`` finished (or failed)."""

    now: float
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PublishStalled:
    """Handing the stream's output downstream (Kafka) blocked from ``since`` until ``now``.

    The shell reports a stall longer than ``SessionSettings.publish_stall_s`` once it is over
    and the inputs that queued up meanwhile were handled. While it lasted the socket was not
    read, so the stream cannot vouch for that interval: the session records it as a gap.
    """

    now: float
    since: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: the shell calls this no later than ``next_deadline()``."""

    now: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Close everything and finish."""

    now: float


SessionInput = (
    Started
    | TokenReady
    | TokenFailed
    | ChannelCreated
    | ChannelCreateFailed
    | Subscribed
    | SubscribeFailed
    | ChannelChecked
    | ChannelCheckFailed
    | SocketOpened
    | SocketOpenFailed
    | FrameReceived
    | BadFrame
    | SocketClosed
    | BackfillFinished
    | PublishStalled
    | Tick
    | Stop
)
