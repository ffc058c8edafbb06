"""The notification channel session, as a pure state machine (no I/O, no clock).

Theory of operation
-------------------
A session keeps one notification channel (≤ 1,000 topics, docs/genesys-api.md §5.4) streaming
through one WebSocket. The shell feeds it what happened (:mod:`~pipeline.core.genesys.inputs`, each
with ``now``) and carries out what it returns (:mod:`~pipeline.core.genesys.actions`). After
applying an input, the machine derives the next step from the facts it holds, in this order
(docs/genesys-api.md §5.5):

1. a token is needed (start, a 401, ``token_revoked``)  → ``FetchToken``
2. there is no usable channel                           → ``CreateChannel``
3. the channel is not subscribed yet                    → ``Subscribe``
4. the channel is suspect (its socket broke)            → ``CheckChannel`` (HEAD)
5. no socket streams from the channel                   → ``OpenSocket``, after a backoff
                                                          when a socket failed
6. the channel is near its ``expires``                  → ``Subscribe`` again (extends it)

At most one REST call is in flight and nothing is issued while a delay runs, so every answer
is unambiguous and every failure is followed by a delay: no tight loops. ``state`` is a view
of those facts::

       IDLE
         │ Started
         ▼
    AUTHENTICATING ◄───────────────────── 401 on any REST call, token_revoked
         │ TokenReady
         ▼
      CREATING ◄───────────────────────── HEAD 404, upgrade 404, no_longer_subscribed
         │ ChannelCreated
         ▼
     SUBSCRIBING
         │ Subscribed
         ▼
     CONNECTING ◄── Tick ── WAITING ◄── exists ── CHECKING
         │    │            (backoff)                 ▲
         │    └──── open failed (not 404) ───────────┤
         │ SocketOpened                              │
         ▼                                           │
        LIVE ───── drop, heartbeat timeout ──────────┘

    retriable REST failure → WAITING (Retry-After, else backoff) → the same call again
    final REST failure, max_recreate_attempts reached → FAILED;  Stop → STOPPED  (both final)

Inside LIVE, without leaving it:

* Watchdog: any frame on the streaming socket counts. After ``heartbeat_timeout_s`` of
  silence → ``SendPing``; nothing within ``ping_timeout_s`` → close it and recover (§5.3).
* ``socket_closing`` → ``OpenSocket`` (same URI); when it opens, ``CloseSocket(old)``:
  make before break, no gap. The service allows one socket per channel (§5.4), so our
  replacement's connect closes the old socket, often before our handshake completes: a
  clean close within ``socket_closing_lead_s`` (§5.8: a minute) while the replacement opens
  is that handover, not a gap. If the replacement fails, the old socket carries on until it
  goes (or, handed over already, the gap starts at its last frame), then normal recovery runs.
* Extension: re-subscribe ``extend_margin_s`` before ``expires`` (§5.4). A 404 or 401 on it
  builds a new channel in the background, opens its socket, then closes the old one
  (``channel.rolled_over``).

Token roll-over (§5.7: a channel does not outlive the token that created it, BELIEF): the
session knows when that token expires (``TokenReady.expires_at`` /
``ChannelCreated.token_expires_at``) and ``token_margin_s`` before it (halfway through a
short-lived token) asks for a token that outlives it (``FetchToken(outlive=...)``), then a new
channel, its subscriptions and its socket while the old socket streams, and closes the old
socket only once the new one is open (``channel.rolled_over``, no gap). If the old channel
ends first anyway (``token_revoked``), the gap is recorded and backfilled as usual, and the
half-built successor is kept when its token is the newer one.

Refused topics (§5.6): the shell subscribes with ``ignoreErrors=true`` and reports the topics
Genesys answered ``Rejected`` in ``Subscribed.rejected``. They never fail the channel: it
streams the permitted ones, every subscribe (the extension too) asks for all of them again so
a permission granted later is picked up, each answer with refusals is audited
(``subscription.rejected``), and gaps and backfills cover the permitted topics only.

Gaps: losing the streaming socket opens a gap at its last frame (its open time if it got
none). The next socket that opens ends it: ``ended_at`` is that moment, the earliest one at
which the stream is live again; the machine then emits the :class:`Gap` and a ``Backfill``
whose snapshot, taken after ``ended_at``, covers it. The first socket ever opened asks for
the ``initial`` backfill instead (the service sends nothing until values change, §7).
Which backfill is wanted, and when a failed one is asked for again:
:class:`~pipeline.core.genesys.backfill_schedule.BackfillSchedule`.

REST failures: what a status means comes from the one table of
:func:`pipeline.core.http_policy.classify`, narrowed to what a session can do by
:func:`~pipeline.core.genesys.calls.classify_failure`: 401 → a new token (and a new channel:
channels die with their token, §5.4); 404 on subscribe, extend or HEAD → the channel is gone,
build a new one; every RETRY row of the table (408, 429, 5xx but 501/505, no answer) and a 2xx
the shell could not use → the same call after a delay; anything else (other 4xx, 501, 505,
1xx, 3xx) → FAILED. The session is the one place that counts attempts of its REST calls
(unbounded; its shell makes one HTTP request per call), see :mod:`pipeline.core.http_policy`.
Timeouts and limits: :class:`~pipeline.core.genesys.session_settings.SessionSettings`.

Backoff: a delay is ``retry_after`` when the server gave one (cut to ``max_retry_after_s``),
else full jitter over ``attempt`` (:class:`~pipeline.core.http_policy.Backoff`), so the first
retry waits ``uniform(0, backoff_base_s)``. ``attempt`` counts delays since the last socket
went live (or the last successful extension). After a socket failure the HEAD goes at once;
the backoff sits before the next ``OpenSocket``.

Timeouts: the shell owns I/O timeouts, but a REST call or socket open still unanswered after
``call_timeout_s`` counts as failed without an answer (retried like a network error), so a
shell bug cannot park the session. A ``PublishStalled`` (the shell's sink blocked longer than
``publish_stall_s``, so nothing was read meanwhile) on a live stream is a gap of its own,
reason ``publish.stalled``, from the stall's start to now, with its backfill. A refused login
(4xx on the token call) is final: ``token.rejected``, FAILED, and :attr:`failure` says why.

Edge cases not handled: a backfill has no timeout of its own (its REST calls have theirs,
and its sink may legitimately block while Kafka is away); times must not go backwards; a Stop
drops an open gap unreported.

This module is long because it holds one state machine: every transition reads and writes
the same few facts (token, channel, sockets, gap), and the order of ``_advance`` is the
protocol; split across modules, each part would need all of them. Its tables and bookkeeping
live beside it: :mod:`~pipeline.core.genesys.calls`,
:mod:`~pipeline.core.genesys.backfill_schedule`, :mod:`~pipeline.core.genesys.session_settings`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.actions import (
    Action,
    Backfill,
    CheckChannel,
    CloseSocket,
    CreateChannel,
    Emit,
    FetchToken,
    OpenSocket,
    SendPing,
    Stopped,
    Subscribe,
)
from pipeline.core.genesys.backfill_schedule import BackfillSchedule
from pipeline.core.genesys.calls import (
    ANSWERED_BY,
    FAILED_KIND,
    REJECTED_KIND,
    Call,
    Outcome,
    classify_failure,
    no_answer,
)
from pipeline.core.genesys.events import DeadLetter, Gap
from pipeline.core.genesys.frames import SocketClosing, SystemMessage, TopicEvent
from pipeline.core.genesys.inputs import (
    BackfillFinished,
    BadFrame,
    ChannelChecked,
    ChannelCheckFailed,
    ChannelCreated,
    ChannelCreateFailed,
    FrameReceived,
    PublishStalled,
    SessionInput,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    Started,
    Stop,
    Subscribed,
    SubscribeFailed,
    Tick,
    TokenFailed,
    TokenReady,
)
from pipeline.core.genesys.rejections import RejectedTopic, rejection_details
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.genesys.topics import MAX_TOPICS_PER_CHANNEL
from pipeline.core.http_policy import Backoff

__all__ = ["ChannelSession", "SessionState"]


class SessionState(enum.Enum):
    """Where the session stands (a view of its facts; see the module docstring)."""

    IDLE = "idle"
    AUTHENTICATING = "authenticating"
    CREATING = "creating"
    SUBSCRIBING = "subscribing"
    CHECKING = "checking"
    CONNECTING = "connecting"
    WAITING = "waiting"
    LIVE = "live"
    STOPPED = "stopped"
    FAILED = "failed"


_STATE_OF = {
    Call.TOKEN: SessionState.AUTHENTICATING,
    Call.CREATE: SessionState.CREATING,
    Call.SUBSCRIBE: SessionState.SUBSCRIBING,
    Call.EXTEND: SessionState.SUBSCRIBING,
    Call.CHECK: SessionState.CHECKING,
}
_SYSTEM = {
    "no_longer_subscribed": AuditKind.SYSTEM_NO_LONGER_SUBSCRIBED,
    "token_revoked": AuditKind.SYSTEM_TOKEN_REVOKED,
    "subscription_changed": AuditKind.SYSTEM_SUBSCRIPTION_CHANGED,
}  # any other v2.system.* kind: SYSTEM_UNKNOWN, with the kind in its details


@dataclass(slots=True)
class _Channel:
    id: str
    uri: str
    expires_at: float
    token_expires_at: float | None = None  # when the token that created it expires
    subscribed_at: float | None = None
    suspect: bool = False
    rolling: bool = False  # a roll-over to a new token started (at most one per channel)


@dataclass(slots=True)
class _Socket:
    id: int
    channel_id: str
    uri: str
    asked_at: float  # when OpenSocket was issued
    token_expires_at: float | None = None  # its channel's token
    last_frame_at: float = 0.0
    ping_sent_at: float | None = None
    closing_at: float | None = None  # when the server announced socket_closing


@dataclass(frozen=True, slots=True)
class _Handover:
    """The streaming socket closed cleanly while its replacement opens (socket_closing)."""

    socket: _Socket
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Pending:
    call: Call
    channel_id: str | None
    asked_at: float


class ChannelSession:
    """One notification channel and its WebSocket, as a sans-I/O state machine.

    Args:
        topics: the topics to subscribe (duplicates dropped, order kept).
        settings: timing and retry limits.
        jitter: returns a float in [0, 1) for backoff jitter; defaults to a private
            ``random.Random`` (tests pass a constant).

    Raises:
        ValueError: no topics, or more than a channel holds
            (:data:`~pipeline.core.genesys.topics.MAX_TOPICS_PER_CHANNEL`).
    """

    def __init__(
        self,
        topics: Sequence[str],
        settings: SessionSettings | None = None,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._topics = tuple(dict.fromkeys(topics))
        self._permitted = self._topics
        self._rejected: tuple[RejectedTopic, ...] = ()
        count, most = len(self._topics), MAX_TOPICS_PER_CHANNEL
        if not 1 <= count <= most:
            raise ValueError(f"a session takes 1 to {most} topics, got {count}")
        self._settings = s = settings or SessionSettings()
        self._backoff = Backoff(s.backoff_base_s, s.backoff_cap_s, s.max_retry_after_s)
        self._jitter = jitter or random.Random().random  # noqa: S311 - jitter, not crypto
        self._started = False
        self._end: SessionState | None = None
        self._need_token = self._force_token = False
        self._outlive: float | None = None  # the token asked for must outlive this (roll-over)
        self._token_expires_at: float | None = None  # of the last token the shell reported
        self._rest: _Pending | None = None
        self._resume_at: float | None = None
        self._attempt = self._fresh_channels = self._last_socket_id = 0
        self._channel: _Channel | None = None
        self._live: _Socket | None = None
        self._opening: _Socket | None = None
        self._handover: _Handover | None = None
        self._backoff_open = self._was_live = False
        self._gap: Gap | None = None
        self._failure: str | None = None
        self._backfills = BackfillSchedule(
            s.max_backfill_attempts, s.backoff_base_s, s.backoff_cap_s, self._jitter
        )

    @property
    def state(self) -> SessionState:
        """The current state."""
        if self._end is not None:
            return self._end
        if not self._started:
            return SessionState.IDLE
        if self._live is not None:
            return SessionState.LIVE
        if self._rest is not None:
            return _STATE_OF[self._rest.call]
        return SessionState.CONNECTING if self._opening is not None else SessionState.WAITING

    @property
    def failure(self) -> str | None:
        """Why the session FAILED, on one line (its audit kind and facts); None otherwise."""
        return self._failure

    @property
    def failure_kind(self) -> AuditKind | None:
        """The audit kind of the failure that ended the session, if it FAILED."""
        if self._failure is None:
            return None
        return AuditKind(self._failure.partition(":")[0])

    @property
    def topics(self) -> tuple[str, ...]:
        """The subscribed topics."""
        return self._topics

    @property
    def permitted_topics(self) -> tuple[str, ...]:
        """The topics the last subscribe answer accepted (all of them until one says not)."""
        return self._permitted

    @property
    def rejected_topics(self) -> tuple[RejectedTopic, ...]:
        """The topics the last subscribe answer refused (§5.6); empty when none."""
        return self._rejected

    @property
    def channel_id(self) -> str | None:
        """The channel being set up or streamed (None while a new one is created)."""
        return None if self._channel is None else self._channel.id

    @property
    def connect_uri(self) -> str | None:
        """The WebSocket address of :attr:`channel_id`."""
        return None if self._channel is None else self._channel.uri

    @property
    def expires_at(self) -> float | None:
        """When :attr:`channel_id` expires, as far as the machine knows."""
        return None if self._channel is None else self._channel.expires_at

    @property
    def socket_id(self) -> int | None:
        """The socket that streams (drives the state), if any."""
        return None if self._live is None else self._live.id

    @property
    def sockets(self) -> tuple[int, ...]:
        """Every socket the machine holds open or is opening (at most two)."""
        return tuple(s.id for s in (self._live, self._opening) if s is not None)

    def next_deadline(self) -> float | None:
        """The latest time at which the shell must call ``handle(Tick(now))``."""
        if self._end is not None or not self._started:
            return None
        timers = (self._resume_at, self._backfills.retry_at, self._extend_at(), self._roll_at())
        times = [t for t in timers if t is not None]
        timeout = self._settings.call_timeout_s
        for asked in (self._rest, self._opening):
            if asked is not None:
                times.append(asked.asked_at + timeout)
        if self._live is not None:
            live = self._live
            if live.ping_sent_at is None:
                times.append(live.last_frame_at + self._settings.heartbeat_timeout_s)
            else:
                times.append(live.ping_sent_at + self._settings.ping_timeout_s)
        return min(times, default=None)

    def handle(self, event: SessionInput) -> list[Action]:
        """Apply one input and return the actions to carry out, in order.

        Inputs that do not fit the current state (late, duplicated, from a forgotten socket)
        are ignored; this method never raises for them.
        """
        if self._end is not None:
            return []
        now = event.now
        out: list[Action]
        match event:
            case Started():
                out = []
                if not self._started:
                    self._started = self._need_token = True
            case TokenReady():
                out = self._on_token_ready(event)
            case ChannelCreated():
                out = self._on_created(event)
            case Subscribed():
                out = self._on_subscribed(event)
            case ChannelChecked():
                out = self._on_checked(event)
            case TokenFailed() | ChannelCreateFailed() | SubscribeFailed() | ChannelCheckFailed():
                out = self._on_failed(event)
            case SocketOpened():
                out = self._on_opened(now, event.socket_id)
            case SocketOpenFailed():
                out = self._on_open_failed(now, event.socket_id, event.reason, event.status)
            case SocketClosed():
                out = self._on_closed(event)
            case FrameReceived() | BadFrame():
                out = self._on_frame(event)
            case BackfillFinished():
                out = self._on_backfill_finished(event)
            case PublishStalled():
                out = self._on_publish_stalled(event)
            case Tick():
                out = self._on_tick(now)
            case Stop():
                return self._finish(now, SessionState.STOPPED, "stop requested", [])
        return out + self._advance(now)

    # -- the next step ------------------------------------------------------------------------

    def _advance(self, now: float) -> list[Action]:
        if not self._started or self._end is not None or self._rest is not None:
            return []
        if self._resume_at is not None:
            if now < self._resume_at:
                return []
            self._resume_at = None
        if self._need_token:
            fetch = FetchToken(self._force_token, self._outlive)
            return [self._call(now, Call.TOKEN, None, fetch)]
        ch = self._channel
        if ch is None:
            if self._fresh_channels >= self._settings.max_recreate_attempts:
                details = {"channels_created": self._fresh_channels}
                exhausted = AuditKind.CHANNEL_RECREATE_EXHAUSTED
                return self._fail(now, exhausted, None, details)
            return [self._call(now, Call.CREATE, None, CreateChannel())]
        if ch.subscribed_at is None:
            return [self._call(now, Call.SUBSCRIBE, ch.id, Subscribe(ch.id, self._topics))]
        if ch.suspect:
            return [self._call(now, Call.CHECK, ch.id, CheckChannel(ch.id))]
        if self._live is None or self._live.channel_id != ch.id:
            if self._opening is not None:
                return []
            if self._backoff_open:
                self._backoff_open = False
                self._resume_at = now + self._delay(None)
                return self._advance(now)
            return [self._open(now, ch)]
        extend_at = self._extend_at()
        if extend_at is not None and now >= extend_at:
            return [self._call(now, Call.EXTEND, ch.id, Subscribe(ch.id, self._topics))]
        roll_at = self._roll_at()
        if roll_at is not None and now >= roll_at:
            # Make before break (§5.7): a token that outlives this channel's, then a new
            # channel, its subscriptions and socket; the old socket streams until then.
            ch.rolling, self._need_token, self._outlive = True, True, ch.token_expires_at
            return self._advance(now)
        return []

    def _roll_at(self) -> float | None:
        # When to roll the channel over before its token expires; guards as in _extend_at.
        ch, live = self._channel, self._live
        if (
            self._rest is not None
            or self._resume_at is not None
            or self._need_token
            or ch is None
            or ch.token_expires_at is None
            or ch.rolling
            or ch.subscribed_at is None
            or ch.suspect
            or live is None
            or live.channel_id != ch.id
        ):
            return None
        expiry, since = ch.token_expires_at, ch.subscribed_at
        halfway = since + max(0.0, expiry - since) / 2
        return max(expiry - self._settings.token_margin_s, halfway)

    def _extend_at(self) -> float | None:
        # Mirrors the guards of _advance, so the deadline is never one _advance would skip.
        ch, live = self._channel, self._live
        if (
            self._rest is not None
            or self._resume_at is not None
            or self._need_token
            or ch is None
            or ch.subscribed_at is None
            or ch.suspect
            or live is None
            or live.channel_id != ch.id
            or ch.expires_at <= ch.subscribed_at  # claims to be expired: let it go, then recover
        ):
            return None
        halfway = ch.subscribed_at + (ch.expires_at - ch.subscribed_at) / 2
        return max(ch.expires_at - self._settings.extend_margin_s, halfway)

    def _call(self, now: float, call: Call, channel_id: str | None, action: Action) -> Action:
        self._rest = _Pending(call, channel_id, now)
        return action

    def _take(self, *calls: Call) -> _Pending | None:
        pending = self._rest
        if pending is None or pending.call not in calls:
            return None
        self._rest = None
        return pending

    def _target(self, pending: _Pending | None) -> _Channel | None:
        # The channel a REST answer applies to; None if it was forgotten meanwhile (stale).
        ch = self._channel
        return (
            ch if pending is not None and ch is not None and ch.id == pending.channel_id else None
        )

    def _delay(self, retry_after: float | None) -> float:
        delay = self._backoff.delay(self._attempt, retry_after, self._jitter)
        self._attempt += 1
        return delay

    # -- REST answers -------------------------------------------------------------------------

    def _on_token_ready(self, event: TokenReady) -> list[Action]:
        if self._take(Call.TOKEN) is None:
            return []
        forced, self._need_token, self._force_token = self._force_token, False, False
        outlive, self._outlive = self._outlive, None
        # None: the shell does not know, and then no channel made with it is rolled over.
        self._token_expires_at = event.expires_at
        audit = self._audit(event.now, AuditKind.TOKEN_REFRESHED, forced=forced)
        return [audit, *self._roll_to_new_token(event.expires_at, outlive)]

    def _roll_to_new_token(self, expires_at: float | None, outlive: float | None) -> list[Action]:
        # A roll-over asked for this token: if it outlives the channel's, build the successor
        # while the old socket streams (make before break). If not, the channel dies with its
        # token and normal recovery runs (the roll-over is not tried again for it).
        ch, live = self._channel, self._live
        if outlive is None or ch is None or not ch.rolling or live is None:
            return []
        if live.channel_id != ch.id or (expires_at is not None and expires_at <= outlive):
            return []
        return self._forget(ch.id, "rolled over")

    def _on_created(self, event: ChannelCreated) -> list[Action]:
        if self._take(Call.CREATE) is None:
            return []
        token = self._token_expires_at if event.token_expires_at is None else event.token_expires_at
        self._channel = _Channel(event.channel_id, event.connect_uri, event.expires_at, token)
        self._fresh_channels += 1
        return [self._audit(event.now, AuditKind.CHANNEL_CREATED, expires_at=event.expires_at)]

    def _on_subscribed(self, event: Subscribed) -> list[Action]:
        pending = self._take(Call.SUBSCRIBE, Call.EXTEND)
        ch = self._target(pending)
        if pending is None or ch is None:
            return []
        ch.subscribed_at = event.now
        out = self._note_rejections(event, pending.call)
        if pending.call is Call.SUBSCRIBE:
            ch.expires_at = ch.expires_at if event.expires_at is None else event.expires_at
            topics = len(self._permitted)
            return [self._audit(event.now, AuditKind.CHANNEL_SUBSCRIBED, topics=topics), *out]
        # §5.4: re-subscribing extends; "to now + 24 h" is UNVERIFIED (channel_lifetime_s).
        lifetime = self._settings.channel_lifetime_s
        ch.expires_at = event.now + lifetime if event.expires_at is None else event.expires_at
        self._attempt = 0
        extended = self._audit(event.now, AuditKind.CHANNEL_EXTENDED, expires_at=ch.expires_at)
        return [extended, *out]

    def _note_rejections(self, event: Subscribed, call: Call) -> list[Action]:
        # Refused topics never fail the channel (§5.6): it streams the rest, and every
        # subscribe (also each extension) asks for all of them again, so a permission granted
        # later is picked up. Gaps and backfills cover the permitted topics only.
        self._rejected = event.rejected
        refused = {r.topic for r in event.rejected}
        self._permitted = tuple(t for t in self._topics if t not in refused)
        if not event.rejected:
            return []
        details = rejection_details(event.rejected, call.value)
        return [self._audit(event.now, AuditKind.SUBSCRIPTION_REJECTED, **details)]

    def _on_checked(self, event: ChannelChecked) -> list[Action]:
        ch = self._target(self._take(Call.CHECK))
        if ch is None:
            return []
        if event.exists:
            ch.suspect = False
            return []
        gone = self._audit(event.now, AuditKind.CHANNEL_GONE, ch.id)
        return [gone, *self._forget(ch.id, "channel gone")]

    def _on_failed(
        self, event: TokenFailed | ChannelCreateFailed | SubscribeFailed | ChannelCheckFailed
    ) -> list[Action]:
        pending = self._take(*ANSWERED_BY[type(event)])
        if pending is None or (pending.channel_id is not None and self._target(pending) is None):
            return []
        now, status = event.now, event.status
        outcome = classify_failure(pending.call, status)
        facts: dict[str, Any] = {"status": status, "reason": event.reason}
        if outcome is Outcome.FATAL:
            rejected = REJECTED_KIND.get(pending.call, AuditKind.SUBSCRIBE_REJECTED)
            return self._fail(now, rejected, pending.channel_id, facts)
        out: list[Action] = []
        if outcome is Outcome.REAUTH:
            # Channels die with the token that made them (§5.4): new token, then new channel.
            self._need_token = self._force_token = True
            if self._channel is not None:
                out = self._forget(self._channel.id, "token refused")
        elif outcome is Outcome.GONE and pending.channel_id is not None:
            out = self._forget(pending.channel_id, "channel gone")
        delay = self._delay(event.retry_after)
        self._resume_at = now + delay
        failed = FAILED_KIND[pending.call]
        audit = self._audit(now, failed, pending.channel_id, **facts, retry_in_s=delay)
        return [audit, *out]

    def _forget(self, channel_id: str, reason: str) -> list[Action]:
        # The channel is dead or unusable: drop it and any socket still opening on it. A socket
        # that streams from it stays until a new one replaces it (make before break).
        out: list[Action] = []
        opening = self._opening
        if opening is not None and opening.channel_id == channel_id:
            self._opening = None
            out.append(CloseSocket(opening.id, reason))
        if self._channel is not None and self._channel.id == channel_id:
            self._channel = None
        return out

    # -- sockets ------------------------------------------------------------------------------

    def _open(self, now: float, ch: _Channel) -> Action:
        self._last_socket_id += 1
        self._opening = _Socket(self._last_socket_id, ch.id, ch.uri, now, ch.token_expires_at)
        return OpenSocket(self._last_socket_id, ch.uri)

    def _on_opened(self, now: float, socket_id: int) -> list[Action]:
        sock = self._opening
        if sock is None or sock.id != socket_id:
            # A socket we abandoned opened anyway (the shell raced our CloseSocket): close it
            # again, so no socket outlives the machine's interest in it.
            live = self._live is not None and self._live.id == socket_id
            unwanted = 0 < socket_id <= self._last_socket_id and not live
            return [CloseSocket(socket_id, "unwanted")] if unwanted else []
        old, self._live, self._opening = self._live, sock, None
        handed, self._handover = self._handover, None
        sock.last_frame_at = now
        self._attempt = self._fresh_channels = 0
        self._backoff_open = False
        out: list[Action] = [
            self._audit(now, AuditKind.SOCKET_CONNECTED, sock.channel_id, socket_id=sock.id)
        ]
        if old is not None:
            out.append(CloseSocket(old.id, "replaced"))
            if old.channel_id != sock.channel_id:
                rolled = AuditKind.CHANNEL_ROLLED_OVER
                out.append(self._audit(now, rolled, sock.channel_id, previous=old.channel_id))
            else:
                replaced = AuditKind.SOCKET_REPLACED
                out.append(self._audit(now, replaced, sock.channel_id, previous_socket_id=old.id))
        elif handed is not None:  # the old socket already closed: the channel moved over
            replaced = AuditKind.SOCKET_REPLACED
            previous = handed.socket.id
            out.append(self._audit(now, replaced, sock.channel_id, previous_socket_id=previous))
        if self._gap is not None:
            gap = replace(self._gap, ended_at=max(now, self._gap.started_at))
            self._gap = None
            # The Gap is the fact: the producer writes it as the gap.closed audit record.
            out += [Emit(gap), self._backfills.request(Backfill("gap", gap, gap.topics))]
        elif not self._was_live:
            out.append(self._backfills.request(Backfill("initial", None, self._permitted)))
        self._was_live = True
        return out

    def _on_open_failed(
        self, now: float, socket_id: int, reason: str, status: int | None
    ) -> list[Action]:
        sock = self._opening
        if sock is None or sock.id != socket_id:
            return []
        self._opening = None
        facts = {"socket_id": socket_id, "status": status, "reason": reason}
        out: list[Action] = [
            self._audit(now, AuditKind.SOCKET_OPEN_FAILED, sock.channel_id, **facts)
        ]
        gone = status == 404  # a 404 on the upgrade: the channel is gone (§5.4, UNVERIFIED)
        handed, self._handover = self._handover, None
        if handed is not None:
            # The old socket closed for a replacement that never came: the gap starts at its
            # last frame, and normal recovery follows.
            self._live, old = handed.socket, handed.socket
            out += self._lose_live(now, old, "socket.dropped", None, handed.code, handed.reason)
            if gone:
                out += self._forget(sock.channel_id, "channel gone")
            return out
        live = self._live
        if live is not None and live.channel_id == sock.channel_id:
            # A socket_closing replacement failed: the old socket carries on until it goes.
            if gone:
                out += self._lose_live(now, live, "channel.gone", "channel gone")
                out += self._forget(sock.channel_id, "channel gone")
            return out
        self._backoff_open = True
        if gone:
            out += self._forget(sock.channel_id, "channel gone")
        elif self._channel is not None and self._channel.id == sock.channel_id:
            self._channel.suspect = True
        return out

    def _on_closed(self, event: SocketClosed) -> list[Action]:
        live = self._live
        if live is not None and event.socket_id == live.id:
            if self._is_handover(event, live):
                self._live, self._handover = None, _Handover(live, event.code, event.reason)
                return []
            return self._lose_live(
                event.now, live, "socket.dropped", None, event.code, event.reason
            )
        if self._opening is not None and event.socket_id == self._opening.id:
            return self._on_open_failed(event.now, event.socket_id, event.reason, None)
        return []  # a socket already forgotten (replaced, closed by us): nothing to do

    def _is_handover(self, event: SocketClosed, live: _Socket) -> bool:
        # One socket per channel (§5.4): our replacement's connect makes the service close the
        # old socket, and from then on it delivers the channel's notifications to the new one
        # (BELIEF), so nothing falls between. It is that close when it is clean (a close
        # frame), comes while the replacement on the same channel opens, and comes sooner than
        # the service's own close, a minute after socket_closing (§5.8). Edge case left: a
        # service that closes earlier than it announced, while our handshake is in flight.
        opening, lead = self._opening, self._settings.socket_closing_lead_s
        return (
            event.code is not None
            and live.closing_at is not None
            and event.now - live.closing_at < lead
            and opening is not None
            and opening.channel_id == live.channel_id
        )

    def _lose_live(
        self,
        now: float,
        sock: _Socket,
        cause: str,
        close_reason: str | None,
        code: int | None = None,
        reason: str = "",
    ) -> list[Action]:
        self._live = None
        out: list[Action] = [] if close_reason is None else [CloseSocket(sock.id, close_reason)]
        facts = {"socket_id": sock.id, "cause": cause, "code": code, "reason": reason}
        out.append(self._audit(now, AuditKind.SOCKET_DISCONNECTED, sock.channel_id, **facts))
        if self._gap is None:
            start = sock.last_frame_at
            self._gap = Gap(sock.channel_id, start, start, self._permitted, cause)
            out.append(self._audit(now, AuditKind.GAP_OPENED, sock.channel_id, started_at=start))
        self._backoff_open = True
        ch, opening = self._channel, self._opening
        if ch is not None and ch.id == sock.channel_id:
            # A replacement already opening on this channel will tell; else ask HEAD (§5.5).
            ch.suspect = opening is None or opening.channel_id != ch.id
        return out

    def _on_frame(self, event: FrameReceived | BadFrame) -> list[Action]:
        out: list[Action] = []
        if isinstance(event, BadFrame):
            err = event.error
            out.append(Emit(DeadLetter(err.raw, err.reason, "parse", err.topic, event.now)))
        elif isinstance(event.frame, TopicEvent):
            out.append(Emit(event.frame))  # real data, even from a stale socket (dedup is later)
        live = self._live
        if live is None or event.socket_id != live.id:
            return out  # stale or unknown socket: data only, no effect on the state
        live.last_frame_at, live.ping_sent_at = event.now, None
        if isinstance(event, BadFrame):
            return out
        frame = event.frame
        if isinstance(frame, SocketClosing):
            live.closing_at = event.now if live.closing_at is None else live.closing_at
            ch = self._channel
            replacing = self._opening is None and ch is not None and ch.id == live.channel_id
            facts = {"socket_id": live.id, "replacing": replacing}
            out.append(self._audit(event.now, AuditKind.SOCKET_CLOSING, live.channel_id, **facts))
            if replacing and ch is not None:
                out.append(
                    self._open(event.now, ch)
                )  # same connectUri (§5.3: JAVA-NH does the same)
        elif isinstance(frame, SystemMessage):
            out += self._on_system(event.now, live, frame)
        return out

    def _on_system(self, now: float, live: _Socket, msg: SystemMessage) -> list[Action]:
        reason = msg.body.get("reason")
        facts: dict[str, Any] = {"reason": reason if isinstance(reason, str) else None}
        kind = _SYSTEM.get(msg.kind)
        if kind is None:
            kind, facts["system_kind"] = AuditKind.SYSTEM_UNKNOWN, msg.kind
        out: list[Action] = [self._audit(now, kind, live.channel_id, **facts)]
        if msg.kind == "no_longer_subscribed":
            out += self._lose_live(
                now, live, "channel.no_longer_subscribed", "no longer subscribed"
            )
            out += self._forget(live.channel_id, "no longer subscribed")
        elif msg.kind == "token_revoked":
            # Every channel made with that token is dead (§5.4, §5.7). A channel rolling over
            # already has a newer token: keep it, unless all the user's tokens were revoked.
            out += self._lose_live(now, live, "token.revoked", "token revoked")
            out += self._forget(live.channel_id, "token revoked")
            ch = self._channel
            if ch is None or reason == "user_tokens_revoked" or not _newer(ch, live):
                self._need_token = self._force_token = True
                if ch is not None:
                    out += self._forget(ch.id, "token revoked")
        # subscription_changed and unknown kinds: audited only (UNVERIFIED what they imply).
        return out

    # -- timers, backfill, the end ------------------------------------------------------------

    def _on_tick(self, now: float) -> list[Action]:
        out = self._timed_out(now)
        live, s = self._live, self._settings
        pinged = None if live is None else live.ping_sent_at
        if live is not None and pinged is None:
            if now - live.last_frame_at >= s.heartbeat_timeout_s:  # §5.3: ask for a pong
                live.ping_sent_at = now
                out.append(SendPing(live.id))
        elif live is not None and pinged is not None and now - pinged >= s.ping_timeout_s:
            silent = now - live.last_frame_at
            out.append(
                self._audit(now, AuditKind.HEARTBEAT_TIMEOUT, live.channel_id, silent_s=silent)
            )
            out += self._lose_live(now, live, "heartbeat.timeout", "heartbeat timeout")
        again = self._backfills.due(now)
        if again is not None:
            out.append(again)
        return out

    def _timed_out(self, now: float) -> list[Action]:
        # The shell answers every call and open itself; this only catches one that never does.
        timeout = self._settings.call_timeout_s
        reason = f"no answer in {timeout:.0f} s"
        out: list[Action] = []
        pending = self._rest
        if pending is not None and now - pending.asked_at >= timeout:
            out += self._on_failed(no_answer(pending.call, now, reason))
        opening = self._opening
        if opening is not None and now - opening.asked_at >= timeout:
            out.append(CloseSocket(opening.id, reason))
            out += self._on_open_failed(now, opening.id, reason, None)
        return out

    def _on_publish_stalled(self, event: PublishStalled) -> list[Action]:
        # Nothing was read while the sink blocked: the stream cannot vouch for that interval.
        # With a gap already open (or no stream yet) the reconnect's gap or the initial
        # backfill covers it; else the stall is a gap of its own, backfilled now that the sink
        # takes items again.
        live = self._live
        if live is None or self._gap is not None:
            return []
        start = min(event.since, event.now)
        gap = Gap(live.channel_id, start, event.now, self._topics, "publish.stalled")
        opened = self._audit(event.now, AuditKind.GAP_OPENED, live.channel_id, started_at=start)
        return [opened, Emit(gap), self._backfills.request(Backfill("gap", gap, gap.topics))]

    def _on_backfill_finished(self, event: BackfillFinished) -> list[Action]:
        verdict = self._backfills.finished(event.now, event.ok, event.reason)
        if verdict is None:
            return []
        kind, facts = verdict
        return [self._audit(event.now, kind, **facts)]

    def _fail(
        self, now: float, kind: AuditKind, channel_id: str | None, facts: dict[str, Any]
    ) -> list[Action]:
        audit = self._audit(now, kind, channel_id, **facts)
        said = ", ".join(
            f"status {v}" if k == "status" else str(v) for k, v in facts.items() if v is not None
        )
        self._failure = f"{kind}: {said}" if said else str(kind)
        return self._finish(now, SessionState.FAILED, str(kind), [audit])

    def _finish(
        self, now: float, end: SessionState, reason: str, out: list[Action]
    ) -> list[Action]:
        for sock in (self._opening, self._live):
            if sock is not None:
                out.append(CloseSocket(sock.id, reason))
        self._live = self._opening = None
        self._end = end
        out.append(self._audit(now, AuditKind.SESSION_STOPPED, reason=reason))
        return [*out, Stopped(reason)]

    def _audit(
        self, now: float, kind: AuditKind, channel_id: str | None = None, **facts: Any
    ) -> Emit:
        if channel_id is None:
            channel_id = self.channel_id or (None if self._live is None else self._live.channel_id)
        return Emit(AuditEvent(kind, now, channel_id, facts))


def _newer(channel: _Channel, sock: _Socket) -> bool:
    """True when ``channel`` was made with a token that outlives ``sock``'s channel's."""
    mine, theirs = channel.token_expires_at, sock.token_expires_at
    return mine is not None and theirs is not None and mine > theirs
