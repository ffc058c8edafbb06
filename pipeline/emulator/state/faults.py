"""The fault plan: injected failures the emulator's shell carries out (pure).

Theory of operation
-------------------
Tests and the admin API *plan* faults; the HTTP/WebSocket shell *consumes* them.

* REST faults (:meth:`FaultPlan.fail_requests`) are rules "the next ``count`` requests whose
  path starts with ``path_prefix`` answer ``status``", kept in a FIFO. Each request asks
  :meth:`FaultPlan.take_request_fault` once; the first matching rule is used and decremented,
  and the use is logged in :attr:`FaultPlan.consumed` so tests can assert it happened.
  A 429 with ``retry_after`` answers ``too.many.requests.retry.after`` plus ``Retry-After``
  (the SDK retries it by itself); without, ``too.many.requests`` (the SDK raises) — §4.3, §4.4.
  :meth:`FaultPlan.answer_garbage` plans rules of the same queue that answer ``200`` with a
  body that is not JSON (a proxy's maintenance page), for clients that trust a 2xx.
* Socket actions (:class:`DropSocket`, :class:`SendSocketClosing`, :class:`StallSocket`) queue
  per channel; the channel's socket task drains them with :meth:`FaultPlan.take_socket_actions`.
* Heartbeat pauses (:class:`StopHeartbeats`/:class:`ResumeHeartbeats`) are flags the heartbeat
  loop reads through :meth:`FaultPlan.heartbeats_paused`; ``channel_id=None`` means every channel.
* Frame faults (:class:`MalformedFrames`, :class:`TruncatedFrames`, :class:`OversizedFrames`,
  :class:`DuplicateFrames`, :class:`ReorderFrames`) arm per-channel counters; the shell passes
  each outgoing topic frame through :meth:`FaultPlan.shape_frame` and sends whatever comes
  back (zero, one or more frames). Within one frame: malformed beats truncated, then
  oversized, then duplicate, then reorder.
* State faults (:class:`ExpireChannel`, :class:`EvictChannel`, :class:`ExpireToken`,
  :class:`RevokeToken`, :class:`RestrictEntities`) change channels, tokens or permissions;
  ``OrgState.apply_fault`` runs them at once and the plan refuses them.

Every fault is a frozen dataclass, so the shell can ``match fault: case DropSocket(channel_id=c)``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pipeline.emulator.errors import EmulatorError, error_for_status
from pipeline.emulator.state.channels import ChannelId
from pipeline.emulator.state.tokens import TokenId

__all__ = [
    "ConsumedFault",
    "DropSocket",
    "DuplicateFrames",
    "EvictChannel",
    "ExpireChannel",
    "ExpireToken",
    "Fault",
    "FaultPlan",
    "FrameFault",
    "MalformedFrames",
    "OversizedFrames",
    "ReorderFrames",
    "RequestFault",
    "RestrictEntities",
    "ResumeHeartbeats",
    "RevokeToken",
    "SendSocketClosing",
    "SocketAction",
    "StallSocket",
    "StateFault",
    "StopHeartbeats",
    "TruncatedFrames",
]


@dataclass(frozen=True, slots=True)
class RequestFault:
    """Answer a REST request with ``status`` instead of serving it.

    ``garbage``: answer ``status`` (200) with a body that is not JSON instead of an error.
    """

    status: int
    retry_after: int | None = None
    path_prefix: str | None = None
    code: str | None = None
    garbage: bool = False

    def error(self) -> EmulatorError:
        """The error answer (body code chosen from status, ``retry_after`` and ``code``)."""
        return error_for_status(self.status, code=self.code, retry_after=self.retry_after)


@dataclass(frozen=True, slots=True)
class ConsumedFault:
    """Log entry: ``fault`` answered the request for ``path`` at time ``at``."""

    at: float
    path: str
    fault: RequestFault


@dataclass(frozen=True, slots=True)
class DropSocket:
    """Close the channel's socket abruptly (no close frame, no notice)."""

    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class SendSocketClosing:
    """Send ``v2.system.socket_closing``, then close after ``close_after`` seconds (§5.3).

    ``None`` waits the emulator's ``socket_closing_delay_s`` (1 s by default).
    """

    channel_id: ChannelId
    close_after: float | None = None


@dataclass(frozen=True, slots=True)
class StallSocket:
    """The current socket turns into a black hole: the server keeps "sending" (and logging)
    frames, heartbeats and pongs, but nothing reaches the client.

    A half-dead connection (a NAT or proxy that stopped forwarding); only the client's
    heartbeat watchdog can notice it, and what was sent meanwhile is lost: it must be
    covered by a gap and a backfill. A new socket on the channel is not stalled.
    """

    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class StopHeartbeats:
    """Stop heartbeat frames on a channel (``None``: on every channel)."""

    channel_id: ChannelId | None = None


@dataclass(frozen=True, slots=True)
class ResumeHeartbeats:
    """Undo :class:`StopHeartbeats` for the same target (``None``: resume everywhere)."""

    channel_id: ChannelId | None = None


@dataclass(frozen=True, slots=True)
class MalformedFrames:
    """The next ``count`` frames are not JSON."""

    channel_id: ChannelId
    count: int = 1


@dataclass(frozen=True, slots=True)
class TruncatedFrames:
    """The next ``count`` frames lose their second half."""

    channel_id: ChannelId
    count: int = 1


@dataclass(frozen=True, slots=True)
class OversizedFrames:
    """The next ``count`` frames are padded (still valid JSON) to at least ``size`` bytes."""

    channel_id: ChannelId
    count: int = 1
    size: int = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DuplicateFrames:
    """The next ``count`` frames are sent twice."""

    channel_id: ChannelId
    count: int = 1


@dataclass(frozen=True, slots=True)
class ReorderFrames:
    """Hold the next ``count`` (≥ 2) frames, then send them in reverse order."""

    channel_id: ChannelId
    count: int = 2


@dataclass(frozen=True, slots=True)
class ExpireChannel:
    """The channel expires now (HEAD answers 404 from then on)."""

    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class EvictChannel:
    """The channel is evicted as by the 20-channel rule (``no_longer_subscribed``)."""

    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class ExpireToken:
    """The token expires now."""

    token_id: TokenId


@dataclass(frozen=True, slots=True)
class RevokeToken:
    """The token is revoked now (its channels get ``token_revoked``)."""

    token_id: TokenId


@dataclass(frozen=True, slots=True)
class RestrictEntities:
    """From now on the client may not subscribe to topics about these entities (§5.6).

    As if the queues (users ...) moved to a division the client's roles do not reach: a
    subscription naming one is refused with 403, or answers it ``Rejected`` with
    ``ignoreErrors=true``. Already subscribed topics stay. ``restricted=False`` lifts it;
    ``client_id=None`` applies to every client.
    """

    entity_ids: tuple[str, ...]
    client_id: str | None = None
    restricted: bool = True

    def __post_init__(self) -> None:
        # The admin API passes a JSON list: keep a tuple, so the fault stays hashable.
        object.__setattr__(self, "entity_ids", tuple(self.entity_ids))


SocketAction = DropSocket | SendSocketClosing | StallSocket
FrameFault = MalformedFrames | TruncatedFrames | OversizedFrames | DuplicateFrames | ReorderFrames
StateFault = ExpireChannel | EvictChannel | ExpireToken | RevokeToken | RestrictEntities
Fault = SocketAction | StopHeartbeats | ResumeHeartbeats | FrameFault | StateFault


@dataclass(slots=True)
class _Rule:
    fault: RequestFault
    remaining: int


@dataclass(slots=True)
class _FrameCounters:
    malformed: int = 0
    truncated: int = 0
    oversized: int = 0
    oversized_size: int = 0
    duplicate: int = 0
    reorder: int = 0
    held: list[str] = field(default_factory=list)

    def is_idle(self) -> bool:
        return not (
            self.malformed or self.truncated or self.oversized or self.duplicate or self.reorder
        )


class FaultPlan:
    """Queues of planned faults, consumed by the shell."""

    def __init__(self) -> None:
        self._rules: deque[_Rule] = deque()
        self._actions: dict[ChannelId, list[SocketAction]] = {}
        self._frames: dict[ChannelId, _FrameCounters] = {}
        self._paused: set[ChannelId] = set()
        self._paused_all = False
        self.consumed: list[ConsumedFault] = []
        """Every REST fault used so far, oldest first."""

    # ------------------------------------------------------------------ REST

    def fail_requests(
        self,
        count: int,
        status: int,
        retry_after: int | None = None,
        path_prefix: str | None = None,
        *,
        code: str | None = None,
    ) -> RequestFault:
        """Make the next ``count`` matching REST requests answer ``status``.

        Args:
            count: How many requests (≥ 1).
            status: HTTP status, 400–599.
            retry_after: Seconds for ``Retry-After`` (429: also picks the body code).
            path_prefix: Only requests whose path starts with it; ``None`` matches all.
            code: Error code instead of the status's usual one.

        Returns:
            The planned fault.

        Raises:
            ValueError: ``count`` < 1 or ``status`` not an error status.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if not 400 <= status <= 599:
            raise ValueError(f"not an error status: {status}")
        fault = RequestFault(status, retry_after, path_prefix, code)
        self._rules.append(_Rule(fault, count))
        return fault

    def answer_garbage(self, count: int, path_prefix: str | None = None) -> RequestFault:
        """Make the next ``count`` matching REST requests answer 200 with a non-JSON body.

        Raises:
            ValueError: ``count`` < 1.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = RequestFault(200, None, path_prefix, None, garbage=True)
        self._rules.append(_Rule(fault, count))
        return fault

    def take_request_fault(self, path: str, now: float) -> RequestFault | None:
        """Consume the fault for one REST request on ``path`` (without query), if any."""
        for rule in self._rules:
            prefix = rule.fault.path_prefix
            if prefix is None or path.startswith(prefix):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                self.consumed.append(ConsumedFault(now, path, rule.fault))
                return rule.fault
        return None

    def pending_request_faults(self) -> int:
        """How many REST requests the plan will still fail."""
        return sum(rule.remaining for rule in self._rules)

    # ------------------------------------------------------------------ WebSocket

    def inject(self, fault: SocketAction | StopHeartbeats | ResumeHeartbeats | FrameFault) -> None:
        """Plan one WebSocket fault.

        Raises:
            ValueError: A frame count below its minimum.
            TypeError: A state fault (use ``OrgState.apply_fault``).
        """
        match fault:
            case (
                DropSocket(channel_id=cid)
                | SendSocketClosing(channel_id=cid)
                | StallSocket(channel_id=cid)
            ):
                self._actions.setdefault(cid, []).append(fault)
            case StopHeartbeats(channel_id=None):
                self._paused_all = True
            case StopHeartbeats(channel_id=cid) if cid is not None:
                self._paused.add(cid)
            case ResumeHeartbeats(channel_id=None):
                self._paused_all = False
                self._paused.clear()
            case ResumeHeartbeats(channel_id=cid) if cid is not None:
                self._paused.discard(cid)
            case (
                MalformedFrames()
                | TruncatedFrames()
                | OversizedFrames()
                | DuplicateFrames()
                | ReorderFrames()
            ):
                self._arm(fault)
            case _:
                raise TypeError(f"not a WebSocket fault: {type(fault).__name__}")

    def take_socket_actions(self, channel_id: str) -> list[SocketAction]:
        """Drain the socket actions planned for ``channel_id``, oldest first."""
        return self._actions.pop(ChannelId(channel_id), [])

    def heartbeats_paused(self, channel_id: str) -> bool:
        """True while heartbeats must not be sent on ``channel_id``."""
        return self._paused_all or ChannelId(channel_id) in self._paused

    def shape_frame(self, channel_id: str, frame: str) -> list[str]:
        """Pass one outgoing frame through the armed frame faults; send what comes back."""
        counters = self._frames.get(ChannelId(channel_id))
        if counters is None:
            return [frame]
        if counters.malformed:
            counters.malformed -= 1
            frame = "}{" + frame  # never valid JSON
        elif counters.truncated:
            counters.truncated -= 1
            frame = frame[: len(frame) // 2]
        elif counters.oversized and frame.endswith("}"):
            counters.oversized -= 1
            padding = max(0, counters.oversized_size - len(frame))
            frame = frame[:-1] + ',"padding":"' + "x" * padding + '"}'
        out = [frame]
        if counters.duplicate:
            counters.duplicate -= 1
            out = [frame, frame]
        if counters.reorder:
            counters.reorder -= 1
            counters.held.extend(out)
            out = []
            if not counters.reorder:
                out, counters.held = counters.held[::-1], []
        if counters.is_idle() and not counters.held:
            del self._frames[ChannelId(channel_id)]
        return out

    def clear(self) -> None:
        """Forget every planned fault (the :attr:`consumed` log stays)."""
        self._rules.clear()
        self._actions.clear()
        self._frames.clear()
        self._paused.clear()
        self._paused_all = False

    def _arm(self, fault: FrameFault) -> None:
        minimum = 2 if isinstance(fault, ReorderFrames) else 1
        if fault.count < minimum:
            raise ValueError(f"{type(fault).__name__}.count must be at least {minimum}")
        counters = self._frames.setdefault(fault.channel_id, _FrameCounters())
        match fault:
            case MalformedFrames(count=n):
                counters.malformed += n
            case TruncatedFrames(count=n):
                counters.truncated += n
            case OversizedFrames(count=n, size=size):
                counters.oversized += n
                counters.oversized_size = size
            case DuplicateFrames(count=n):
                counters.duplicate += n
            case ReorderFrames(count=n):
                counters.reorder += n
