"""What to do: the actions a :class:`~pipeline.core.genesys.session.ChannelSession` hands back.

``ChannelSession.handle()`` returns a list of these, to be carried out in order. The REST
actions and ``OpenSocket`` expect an answer (see :mod:`pipeline.core.genesys.inputs`); the
others do not. Waiting is not an action: the machine exposes ``next_deadline()`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.genesys.events import AuditEvent, DeadLetter, Gap
from pipeline.core.genesys.frames import TopicEvent

__all__ = [
    "Action",
    "Backfill",
    "CheckChannel",
    "CloseSocket",
    "CreateChannel",
    "Emit",
    "EmitItem",
    "FetchToken",
    "OpenSocket",
    "SendPing",
    "Stopped",
    "Subscribe",
]

EmitItem = TopicEvent | DeadLetter | Gap | AuditEvent
"""What ``Emit`` carries downstream (to Kafka, the DLQ or the audit topic)."""


@dataclass(frozen=True, slots=True)
class FetchToken:
    """Make sure a valid token is ready; answer with ``TokenReady`` or ``TokenFailed``.

    Attributes:
        force: the current token was revoked or refused (401): get a new one, do not reuse it.
        outlive: the token must stay valid after this moment (epoch seconds): a channel is
            rolling over to a new token before its own expires (§5.7). ``None``: any valid one.
    """

    force: bool
    outlive: float | None = None


@dataclass(frozen=True, slots=True)
class CreateChannel:
    """``POST /api/v2/notifications/channels``; answer ``ChannelCreated`` or ``...Failed``."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``PUT .../channels/{channel_id}/subscriptions`` with exactly ``topics`` (§5.1).

    Also used to extend a live channel before it expires (§5.4). Answer ``Subscribed`` or
    ``SubscribeFailed``.
    """

    channel_id: str
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CheckChannel:
    """``HEAD .../channels/{channel_id}``; answer ``ChannelChecked``/``ChannelCheckFailed``."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class OpenSocket:
    """Open a WebSocket to ``connect_uri`` and tag everything it reports with ``socket_id``."""

    socket_id: int
    connect_uri: str


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Close the WebSocket ``socket_id``, or abandon it if it is still opening.

    The machine forgets the socket at once: whatever it reports later only counts as data.
    """

    socket_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class SendPing:
    """Send ``{"message": "ping"}`` on ``socket_id`` (§5.3); the server answers ``pong``."""

    socket_id: int


@dataclass(frozen=True, slots=True)
class Backfill:
    """Take a REST snapshot of ``topics``; answer with ``BackfillFinished``.

    A snapshot shows the current state, so a new ``Backfill`` supersedes one still running:
    the shell cancels the old one and answers only the newest.

    Attributes:
        reason: ``initial`` (first time live) or ``gap`` (live again after a gap).
        gap: the gap to cover when ``reason`` is ``gap``.
    """

    reason: Literal["initial", "gap"]
    gap: Gap | None
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Emit:
    """Pass ``item`` downstream: a topic event, a dead letter, a gap or an audit event."""

    item: EmitItem


@dataclass(frozen=True, slots=True)
class Stopped:
    """The session is over (asked to stop, or failed for good); nothing more will come."""

    reason: str


Action = (
    FetchToken
    | CreateChannel
    | Subscribe
    | CheckChannel
    | OpenSocket
    | CloseSocket
    | SendPing
    | Backfill
    | Emit
    | Stopped
)
