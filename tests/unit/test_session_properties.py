"""Invariants of the channel session over random input sequences (hypothesis).

A fake shell answers the machine's requests (success or failure, in any order, sometimes
twice, sometimes never) and throws in frames, closes, ticks and noise. Whatever happens, the
machine must not raise, must not reuse a socket id, must hold at most two sockets, must
report gaps that end after they start, and ``next_deadline()`` must be right: a tick before
it changes nothing, a tick at it does something, and after a tick it lies in the future (no
busy loop). (Checked once with 5,000 examples; the suite runs 200 to stay fast.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.core.genesys.actions import (
    Action,
    Backfill,
    CheckChannel,
    CloseSocket,
    CreateChannel,
    Emit,
    FetchToken,
    OpenSocket,
    Stopped,
    Subscribe,
)
from pipeline.core.genesys.events import Gap
from pipeline.core.genesys.frames import Heartbeat, Pong
from pipeline.core.genesys.inputs import (
    BackfillFinished,
    BadFrame,
    ChannelChecked,
    ChannelCheckFailed,
    ChannelCreated,
    ChannelCreateFailed,
    FrameReceived,
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
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.errors import FrameError
from tests.unit.session_helpers import CH, T0, TOPICS, frame

STATUSES = st.sampled_from([None, 401, 403, 404, 429, 500, 503])
RETRY_AFTER = st.sampled_from([None, 0.0, 2.5])
STEPS = st.sampled_from([0.0, 0.01, 0.3, 5.0, 31.0, 75.0, 3000.0, 50_000.0])
SHORT = SessionSettings(extend_margin_s=60.0, max_recreate_attempts=4)


class FakeShell:
    """Feeds the machine and checks every answer against the invariants."""

    def __init__(self, session: ChannelSession) -> None:
        self.session = session
        self.now = T0
        self.requests: list[Action] = []  # REST calls and sockets still to be answered
        self.issued: set[int] = set()
        self.opened: set[int] = set()
        self.held: set[int] = set()  # opened or opening, neither closed by us nor by the server
        self.channels = 0
        self.stopped = 0

    def feed(self, event: SessionInput) -> list[Action]:
        actions = self.session.handle(event)
        for action in actions:
            self.check(action)
        assert len(self.held) <= 2
        assert len(self.session.sockets) <= 2
        assert set(self.session.sockets) <= self.held
        assert isinstance(self.session.state, SessionState)
        return actions

    def check(self, action: Action) -> None:
        assert self.stopped == 0, "nothing may follow Stopped"
        match action:
            case OpenSocket(socket_id=sid):
                assert sid not in self.issued, f"socket id {sid} reused"
                self.issued.add(sid)
                self.held.add(sid)
                self.requests.append(action)
            case CloseSocket(socket_id=sid):
                self.held.discard(sid)
            case FetchToken() | CreateChannel() | Subscribe() | CheckChannel():
                self.requests.append(action)
            case Emit(item=Gap() as gap):
                assert gap.ended_at >= gap.started_at
                assert gap.topics == TOPICS
            case Stopped():
                self.stopped += 1
            case Backfill(reason="gap", gap=gap):
                assert gap is not None
            case _:
                pass

    def answer(self, index: int, ok: bool, status: int | None, after: float | None) -> None:
        if not self.requests:
            return
        request = self.requests.pop(index % len(self.requests))
        now = self.now
        event: SessionInput
        match request:
            case FetchToken():
                event = TokenReady(now) if ok else TokenFailed(now, "x", after)
            case CreateChannel():
                self.channels += 1
                name = f"{CH}-{self.channels}"
                created = ChannelCreated(now, name, f"wss://h/{name}", now + 600.0)
                event = created if ok else ChannelCreateFailed(now, "x", after, status)
            case Subscribe():
                event = Subscribed(now) if ok else SubscribeFailed(now, "x", after, status)
            case CheckChannel():
                event = ChannelChecked(now, status != 404) if ok else ChannelCheckFailed(now, "x")
            case OpenSocket(socket_id=sid):
                if ok:
                    self.opened.add(sid)
                    event = SocketOpened(now, sid)
                else:
                    self.held.discard(sid)
                    event = SocketOpenFailed(now, sid, "x", status)
            case _:
                return
        self.feed(event)

    def close(self, sid: int) -> None:
        self.held.discard(sid)
        self.feed(SocketClosed(self.now, sid, 1006, "x"))

    def tick_at_deadline(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            assert self.feed(Tick(self.now + 1e6)) == []
            self.now += 1e6
            return
        self.now = max(self.now, deadline)
        assert self.feed(Tick(self.now)), "a deadline passed with nothing to do"
        after = self.session.next_deadline()
        assert after is None or after > self.now, "busy loop: deadline not in the future"

    def tick_before_deadline(self, fraction: float) -> None:
        deadline = self.session.next_deadline()
        if deadline is None or deadline <= self.now:
            return
        self.now += (deadline - self.now) * fraction
        if self.now < deadline:
            assert self.feed(Tick(self.now)) == []


def _frames() -> list[Callable[[float, int], SessionInput]]:
    def topic(now: float, sid: int) -> SessionInput:
        return FrameReceived(now, sid, frame(TOPICS[0], {"data": []}))

    def system(kind: str) -> Callable[[float, int], SessionInput]:
        return lambda now, sid: FrameReceived(now, sid, frame(f"v2.system.{kind}.{CH}"))

    return [
        topic,
        lambda now, sid: FrameReceived(now, sid, Heartbeat()),
        lambda now, sid: FrameReceived(now, sid, Pong()),
        lambda now, sid: FrameReceived(now, sid, frame("v2.system.socket_closing")),
        system("no_longer_subscribed"),
        system("token_revoked"),
        system("maintenance"),  # a kind we do not know: audited as system.unknown
        lambda now, sid: BadFrame(now, sid, FrameError("bad", b"{", None)),
    ]


FRAMES = _frames()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), draw=st.floats(0.0, 0.999))
def test_session_invariants_hold_for_any_input_sequence(data: Any, draw: float) -> None:
    shell = FakeShell(ChannelSession(TOPICS, SHORT, lambda: draw))
    shell.feed(Started(shell.now))
    for _ in range(data.draw(st.integers(1, 80))):
        shell.now += data.draw(STEPS)
        move = data.draw(
            st.sampled_from(
                ["answer"] * 6
                + ["frame"] * 3
                + ["close", "deadline"]
                + ["early", "noise", "backfill", "stop"]
            )
        )
        ids = sorted(shell.issued) or [1]
        if move == "answer":
            shell.answer(
                data.draw(st.integers(0, 5)),
                data.draw(st.booleans()) or data.draw(st.booleans()),
                data.draw(STATUSES),
                data.draw(RETRY_AFTER),
            )
        elif move == "frame":
            make = data.draw(st.sampled_from(FRAMES))
            shell.feed(make(shell.now, data.draw(st.sampled_from(ids))))
        elif move == "close":
            shell.close(data.draw(st.sampled_from(ids)))
        elif move == "deadline":
            shell.tick_at_deadline()
        elif move == "early":
            shell.tick_before_deadline(data.draw(st.floats(0.0, 0.99)))
        elif move == "noise":  # answers nobody asked for, ids nobody issued
            shell.feed(data.draw(st.sampled_from(_noise(shell.now))))
        elif move == "backfill":
            shell.feed(BackfillFinished(shell.now, data.draw(st.booleans())))
        elif data.draw(st.integers(0, 9)) == 0:  # stop, rarely
            shell.feed(Stop(shell.now))
            assert shell.session.next_deadline() is None
    assert shell.stopped <= 1


def _noise(now: float) -> list[SessionInput]:
    return [
        Started(now),
        TokenReady(now),
        Subscribed(now, now + 10.0),
        ChannelChecked(now, True),
        ChannelCreated(now, "stray", "wss://h/stray", now + 1.0),
        SocketOpened(now, 999),
        SocketOpenFailed(now, 999, "x", 404),
        SocketClosed(now, 999, None, "x"),
    ]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.sampled_from([0.0, 1.0, 40.0, 69.9, 70.0, 80.0, 500.0]), max_size=30),
    draw=st.floats(0.0, 0.999),
)
def test_session_ticks_only_at_deadlines_drive_a_silent_socket_to_recovery(
    steps: list[float], draw: float
) -> None:
    shell = FakeShell(ChannelSession(TOPICS, jitter=lambda: draw))
    shell.feed(Started(T0))
    while shell.requests:  # answer everything successfully: reach LIVE
        shell.answer(0, True, None, None)
    assert shell.session.state is SessionState.LIVE
    for step in steps:
        shell.now += step
        shell.tick_before_deadline(0.5)
        shell.tick_at_deadline()
