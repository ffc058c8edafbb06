"""The channel session under failure: Retry-After, backoff, rejections, giving up."""

from __future__ import annotations

import pytest

from pipeline.core.genesys.actions import (
    Action,
    Backfill,
    CheckChannel,
    CloseSocket,
    CreateChannel,
    FetchToken,
    Stopped,
    Subscribe,
)
from pipeline.core.genesys.frames import Heartbeat
from pipeline.core.genesys.inputs import (
    BackfillFinished,
    ChannelChecked,
    ChannelCheckFailed,
    ChannelCreated,
    ChannelCreateFailed,
    FrameReceived,
    SocketClosed,
    SocketOpened,
    Started,
    Subscribed,
    SubscribeFailed,
    Tick,
    TokenFailed,
    TokenReady,
)
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.http_policy import DEFAULT_MAX_RETRY_AFTER_S
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


def creating(jitter: float = 0.0, settings: SessionSettings | None = None) -> ChannelSession:
    """A session that has just asked for a channel."""
    session = ChannelSession(TOPICS, settings, lambda: jitter)
    session.handle(Started(T0))
    session.handle(TokenReady(T0))
    return session


# -- Retry-After and backoff ------------------------------------------------------------------


def test_session_respects_retry_after_on_429() -> None:
    session = creating()
    actions = session.handle(ChannelCreateFailed(T0 + 1, "throttled", 5.0, 429))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["channel.create.failed"]
    assert audits(actions)[0].details == {
        "status": 429,
        "reason": "throttled",
        "retry_in_s": 5.0,
    }
    assert state_of(session) is SessionState.WAITING
    assert session.next_deadline() == T0 + 6
    assert session.handle(Tick(T0 + 5.999)) == []
    assert session.handle(Tick(T0 + 6)) == [CreateChannel()]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(3600.0, 60.0), (float("inf"), 0.25), (float("nan"), 0.25), (1.5, 1.5)],
)
def test_session_caps_retry_after_and_ignores_one_that_is_not_finite(
    retry_after: float, expected: float
) -> None:
    session = creating(jitter=0.5, settings=SessionSettings(max_retry_after_s=60.0))
    actions = session.handle(ChannelCreateFailed(T0, "throttled", retry_after, 429))
    assert audits(actions)[0].details["retry_in_s"] == expected
    assert session.next_deadline() == T0 + expected


def test_session_caps_retry_after_at_five_minutes_by_default() -> None:
    session = creating()
    session.handle(ChannelCreateFailed(T0, "throttled", 86_400.0, 429))
    assert session.next_deadline() == T0 + DEFAULT_MAX_RETRY_AFTER_S == T0 + 300.0


def test_session_backs_off_exponentially_up_to_the_cap() -> None:
    session = creating(jitter=0.999)
    now, delays = T0, []
    for _ in range(10):
        actions = session.handle(ChannelCreateFailed(now, "unavailable", None, 503))
        delays.append(audits(actions)[0].details["retry_in_s"])
        deadline = session.next_deadline()
        assert deadline is not None
        assert session.handle(Tick(deadline)) == [CreateChannel()]
        now = deadline
    assert delays == [0.999 * min(30.0, 0.5 * 2**k) for k in range(10)]
    assert delays[-1] == pytest.approx(29.97)


def test_session_backoff_resets_once_live() -> None:
    session = creating(jitter=0.999)
    for _ in range(4):
        session.handle(ChannelCreateFailed(T0, "unavailable", None, 503))
        deadline = session.next_deadline()
        assert deadline is not None
        session.handle(Tick(deadline))
    session.handle(ChannelCreated(T0 + 20, CH, URI, EXPIRES))
    session.handle(Subscribed(T0 + 20))
    session.handle(SocketOpened(T0 + 20, 1))
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    session.handle(ChannelChecked(T0 + 30, exists=True))
    assert session.next_deadline() == pytest.approx(T0 + 30 + 0.999 * 0.5)


def test_session_retries_network_failures_of_every_rest_step() -> None:
    # With a zero delay the retry comes at once; each failure is audited.
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)
    session.handle(Started(T0))
    actions = session.handle(TokenFailed(T0, "connect timeout"))
    assert plain(actions) == [FetchToken(force=False)]
    assert audit_kinds(actions) == ["token.failed"]
    session.handle(TokenReady(T0))
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES))
    actions = session.handle(SubscribeFailed(T0, "reset", None, None))
    assert plain(actions) == [Subscribe(CH, TOPICS)]
    assert audit_kinds(actions) == ["subscribe.failed"]


def test_session_keeps_the_forced_flag_when_a_forced_token_fetch_fails() -> None:
    session = creating()
    session.handle(ChannelCreateFailed(T0, "unauthorized", None, 401))
    assert plain(session.handle(TokenFailed(T0, "idp down"))) == [FetchToken(force=True)]


def test_session_retries_a_failed_check() -> None:
    session = live_session(jitter=lambda: 0.5)
    session.handle(SocketClosed(T0 + 10, 1, 1006, ""))
    actions = session.handle(ChannelCheckFailed(T0 + 11, "unavailable", 2.0, 503))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["channel.check.failed"]
    assert session.handle(Tick(T0 + 13)) == [CheckChannel(CH)]


def test_session_refreshes_the_token_when_the_check_gets_401() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 10, 1, 1006, ""))
    actions = session.handle(ChannelCheckFailed(T0 + 11, "unauthorized", None, 401))
    assert plain(actions) == [FetchToken(force=True)]


# -- rejections and giving up -----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 409, 422])
def test_session_fails_when_the_subscription_is_rejected(status: int) -> None:
    session = creating()
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES))
    actions = session.handle(SubscribeFailed(T0 + 1, "missing permission", None, status))
    assert plain(actions) == [Stopped("subscribe.rejected")]
    assert audit_kinds(actions) == ["subscribe.rejected", "session.stopped"]
    assert audits(actions)[0].details == {"status": status, "reason": "missing permission"}
    assert state_of(session) is SessionState.FAILED
    assert session.next_deadline() is None
    assert session.handle(Tick(T0 + 1000)) == []


def test_session_closes_its_socket_when_an_extension_is_rejected() -> None:
    session = live_session()
    session.handle(FrameReceived(EXPIRES - 3601, 1, Heartbeat()))
    assert session.handle(Tick(EXPIRES - 3600)) == [Subscribe(CH, TOPICS)]
    actions = session.handle(SubscribeFailed(EXPIRES - 3599, "forbidden", None, 403))
    assert plain(actions) == [CloseSocket(1, "subscribe.rejected"), Stopped("subscribe.rejected")]


def test_session_fails_when_channel_creation_is_rejected() -> None:
    session = creating()
    actions = session.handle(ChannelCreateFailed(T0, "bad request", None, 400))
    assert plain(actions) == [Stopped("channel.create.rejected")]


def test_session_gives_up_after_too_many_channels_in_a_row() -> None:
    session = creating(settings=SessionSettings(max_recreate_attempts=2))
    for name in ("a", "b"):
        session.handle(ChannelCreated(T0, name, URI, EXPIRES))
        actions = session.handle(SubscribeFailed(T0, "not found", None, 404))
    assert plain(actions) == [Stopped("channel.recreate_exhausted")]
    assert audit_kinds(actions) == [
        "subscribe.failed",
        "channel.recreate_exhausted",
        "session.stopped",
    ]
    assert state_of(session) is SessionState.FAILED


def test_session_counts_channels_only_until_one_goes_live() -> None:
    session = creating(settings=SessionSettings(max_recreate_attempts=2))
    session.handle(ChannelCreated(T0, "a", URI, EXPIRES))
    session.handle(SubscribeFailed(T0, "not found", None, 404))
    session.handle(ChannelCreated(T0, "b", URI, EXPIRES))
    session.handle(Subscribed(T0))
    session.handle(SocketOpened(T0, 1))
    session.handle(SocketClosed(T0 + 1, 1, 1006, ""))
    assert plain(session.handle(ChannelChecked(T0 + 1, exists=False))) == [CreateChannel()]


# -- backfill ---------------------------------------------------------------------------------


def test_session_retries_a_failed_backfill_then_abandons_it() -> None:
    session = live_session(jitter=lambda: 0.5)
    initial = Backfill("initial", None, TOPICS)

    actions = session.handle(BackfillFinished(T0 + 1, ok=False, reason="503"))
    assert audit_kinds(actions) == ["backfill.failed"]
    assert session.next_deadline() == T0 + 1.25
    assert session.handle(BackfillFinished(T0 + 1.1, ok=True)) == []  # none in flight
    assert session.handle(Tick(T0 + 1.25)) == [initial]

    session.handle(BackfillFinished(T0 + 2, ok=False, reason="503"))
    assert session.handle(Tick(T0 + 2.5)) == [initial]
    actions = session.handle(BackfillFinished(T0 + 3, ok=False, reason="503"))
    assert audit_kinds(actions) == ["backfill.abandoned"]
    assert audits(actions)[0].details == {"backfill": "initial", "reason": "503", "failures": 3}
    assert session.next_deadline() == T0 + 70  # only the watchdog is left


def test_session_new_backfill_supersedes_a_waiting_retry() -> None:
    session = live_session(jitter=lambda: 0.5)
    session.handle(BackfillFinished(T0 + 1, ok=False, reason="503"))
    assert session.next_deadline() == T0 + 1.25
    session.handle(received(T0 + 1.1, 1, "v2.system.socket_closing"))
    session.handle(SocketClosed(T0 + 1.15, 1, None, "no close frame"))  # a drop: a gap
    actions = session.handle(SocketOpened(T0 + 1.2, 2))
    assert [a.reason for a in actions if isinstance(a, Backfill)] == ["gap"]
    assert session.next_deadline() == T0 + 1.2 + 70  # the stale retry is gone
    assert session.handle(Tick(T0 + 1.25)) == []


# -- every status, every call: the shared table decides -----------------------------------


def _failed_create(status: int | None) -> tuple[ChannelSession, list[Action]]:
    session = creating()
    return session, session.handle(ChannelCreateFailed(T0, "r", None, status))


def _failed_subscribe(status: int | None) -> tuple[ChannelSession, list[Action]]:
    session = creating()
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES))
    return session, session.handle(SubscribeFailed(T0, "r", None, status))


def _failed_extend(status: int | None) -> tuple[ChannelSession, list[Action]]:
    session = live_session()
    session.handle(FrameReceived(EXPIRES - 3601, 1, Heartbeat()))
    assert session.handle(Tick(EXPIRES - 3600)) == [Subscribe(CH, TOPICS)]
    return session, session.handle(SubscribeFailed(EXPIRES - 3599, "r", None, status))


def _failed_check(status: int | None) -> tuple[ChannelSession, list[Action]]:
    session = live_session()
    assert plain(session.handle(SocketClosed(T0 + 10, 1, 1006, ""))) == [CheckChannel(CH)]
    return session, session.handle(ChannelCheckFailed(T0 + 11, "r", None, status))


CALLS = {
    "create": (_failed_create, CreateChannel()),
    "subscribe": (_failed_subscribe, Subscribe(CH, TOPICS)),
    "extend": (_failed_extend, Subscribe(CH, TOPICS)),
    "check": (_failed_check, CheckChannel(CH)),
}


def expected_next(call: str, status: int | None) -> str:
    """The session's rules over the shared table, written out independently."""
    if status == 401:
        return "new token"
    if status == 404 and call != "create":
        return "new channel"
    if status is None or status in (408, 429) or 200 <= status < 300:
        return "same call"  # a 2xx reported as a failure: its answer was unusable
    if 500 <= status < 600 and status not in (501, 505):
        return "same call"
    return "fail"


@pytest.mark.parametrize("status", [None, *range(100, 600)])
def test_every_failed_status_of_every_call_follows_the_shared_table(status: int | None) -> None:
    for call, (fail, same_call) in CALLS.items():
        session, actions = fail(status)
        done = plain(actions)
        expected = {
            "new token": [FetchToken(force=True)],
            "new channel": [CreateChannel()],
            "same call": [same_call],
        }.get(expected_next(call, status))
        if expected is None:
            assert isinstance(done[-1], Stopped), (call, done)
            assert state_of(session) is SessionState.FAILED
        else:
            assert done == expected, (call, status)
            assert state_of(session) is not SessionState.FAILED
