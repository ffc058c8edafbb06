"""The channel session never waits forever, and never pretends to stream while publishing
stalls: REST calls and socket opens time out, a stalled sink is a gap, a refused login ends
the session."""

from __future__ import annotations

from pipeline.core.genesys.actions import Backfill, CloseSocket, CreateChannel, Emit, OpenSocket
from pipeline.core.genesys.events import Gap
from pipeline.core.genesys.inputs import (
    ChannelCreated,
    PublishStalled,
    Started,
    Subscribed,
    Tick,
    TokenFailed,
    TokenReady,
)
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from tests.unit.session_helpers import (
    CH,
    EXPIRES,
    T0,
    TOPICS,
    URI,
    audit_kinds,
    audits,
    live_session,
    plain,
    received,
    state_of,
)

TIMEOUT = 60.0
SETTINGS = SessionSettings(call_timeout_s=TIMEOUT)


def zero() -> float:
    return 0.0


def creating() -> ChannelSession:
    """A session that asked for a channel at ``T0``."""
    session = ChannelSession(TOPICS, SETTINGS, zero)
    session.handle(Started(T0))
    assert plain(session.handle(TokenReady(T0))) == [CreateChannel()]
    return session


def test_session_fails_a_rest_call_that_gets_no_answer_in_time() -> None:
    session = creating()
    assert session.next_deadline() == T0 + TIMEOUT
    assert session.handle(Tick(T0 + TIMEOUT - 0.001)) == []
    actions = session.handle(Tick(T0 + TIMEOUT))
    assert audit_kinds(actions) == ["channel.create.failed"]
    assert audits(actions)[0].details == {
        "status": None,
        "reason": "no answer in 60 s",
        "retry_in_s": 0.0,
    }
    assert plain(actions) == [CreateChannel()]  # after a zero backoff: asked again


def test_session_ignores_the_late_answer_of_a_timed_out_call() -> None:
    session = creating()
    session.handle(Tick(T0 + TIMEOUT))  # times out, asks again at once (zero jitter)
    late = session.handle(ChannelCreated(T0 + TIMEOUT + 1, CH, URI, EXPIRES))
    # The answer is taken by the call in flight (the shell cancelled the first one).
    assert audit_kinds(late) == ["channel.created"]
    assert state_of(session) is SessionState.SUBSCRIBING


def test_session_abandons_a_socket_that_never_opens() -> None:
    session = creating()
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES))
    assert plain(session.handle(Subscribed(T0))) == [OpenSocket(1, URI)]
    assert session.next_deadline() == T0 + TIMEOUT
    actions = session.handle(Tick(T0 + TIMEOUT))
    assert CloseSocket(1, "no answer in 60 s") in plain(actions)
    assert audit_kinds(actions)[0] == "socket.open_failed"
    assert audits(actions)[0].details["reason"] == "no answer in 60 s"
    assert state_of(session) is not SessionState.LIVE


def test_session_records_a_gap_when_publishing_stalled() -> None:
    session = live_session()
    session.handle(received(T0 + 5, 1, TOPICS[0]))
    actions = session.handle(PublishStalled(T0 + 50, T0 + 10))
    gap = Gap(CH, T0 + 10, T0 + 50, TOPICS, "publish.stalled")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]
    assert audit_kinds(actions) == ["gap.opened"]
    assert audits(actions)[0].details == {"started_at": T0 + 10}
    assert state_of(session) is SessionState.LIVE


def test_session_without_a_live_socket_leaves_a_stall_to_the_gap_it_has() -> None:
    session = creating()
    assert session.handle(PublishStalled(T0 + 50, T0 + 10)) == []


def test_session_fails_when_the_login_refuses_the_credentials() -> None:
    session = ChannelSession(TOPICS, SETTINGS, zero)
    session.handle(Started(T0))
    actions = session.handle(TokenFailed(T0 + 1, "login refused: invalid_client", None, 401))
    assert audit_kinds(actions) == ["token.rejected", "session.stopped"]
    assert state_of(session) is SessionState.FAILED
    assert session.failure == "token.rejected: status 401, login refused: invalid_client"


def test_session_retries_a_login_that_is_unavailable() -> None:
    session = ChannelSession(TOPICS, SETTINGS, zero)
    session.handle(Started(T0))
    actions = session.handle(TokenFailed(T0 + 1, "503 login_unavailable", None, 503))
    assert audit_kinds(actions) == ["token.failed"]
    assert session.failure is None
