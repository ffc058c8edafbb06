"""The channel session: feed inputs, assert the exact actions (no sockets, no sleeps).

Audit events are asserted by kind next to the other actions (``plain()`` strips them), so each
test says both what the shell must do and what gets recorded.
"""

from __future__ import annotations

import pytest

from pipeline.core.genesys.actions import (
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
from pipeline.core.genesys.events import DeadLetter, Gap
from pipeline.core.genesys.frames import Heartbeat, Pong
from pipeline.core.genesys.inputs import (
    BackfillFinished,
    BadFrame,
    ChannelChecked,
    ChannelCreated,
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
    TokenReady,
)
from pipeline.core.genesys.session import ChannelSession, SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.errors import FrameError
from tests.unit.session_helpers import (
    CH,
    CH2,
    EXPIRES,
    T0,
    TOPICS,
    URI,
    URI2,
    audit_kinds,
    audits,
    event,
    live_session,
    plain,
    received,
    snapshot,
    state_of,
)

EVENT_TOPIC = TOPICS[0]
CLOSING = "v2.system.socket_closing"


def half() -> float:
    return 0.5


# -- construction -----------------------------------------------------------------------------


def test_session_rejects_an_empty_topic_list() -> None:
    with pytest.raises(ValueError, match="1 to 1000 topics"):
        ChannelSession([])


def test_session_rejects_more_than_1000_topics() -> None:
    with pytest.raises(ValueError, match="got 1001"):
        ChannelSession([f"v2.analytics.queues.{i}.observations" for i in range(1001)])


def test_session_accepts_exactly_1000_topics() -> None:
    assert len(ChannelSession([f"t.{i}" for i in range(1000)]).topics) == 1000


def test_session_drops_duplicate_topics_keeping_order() -> None:
    assert ChannelSession(["b", "a", "b"]).topics == ("b", "a")


@pytest.mark.parametrize(
    "overrides",
    [
        {"heartbeat_timeout_s": 0},
        {"ping_timeout_s": -1},
        {"channel_lifetime_s": 0},
        {"extend_margin_s": -1},
        {"backoff_base_s": 2, "backoff_cap_s": 1},
        {"max_recreate_attempts": 0},
        {"max_backfill_attempts": 0},
    ],
)
def test_settings_reject_nonsense(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SessionSettings(**overrides)  # type: ignore[arg-type]


def test_session_is_idle_and_waits_for_nothing_before_start() -> None:
    session = ChannelSession(TOPICS)
    assert state_of(session) is SessionState.IDLE
    assert session.next_deadline() is None
    assert session.handle(Tick(T0)) == []
    assert session.handle(SocketOpened(T0, 1)) == []


# -- the happy path ---------------------------------------------------------------------------


def test_session_happy_path_order() -> None:
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)

    assert session.handle(Started(T0)) == [FetchToken(force=False)]
    assert state_of(session) is SessionState.AUTHENTICATING

    actions = session.handle(TokenReady(T0 + 1))
    assert plain(actions) == [CreateChannel()]
    assert audit_kinds(actions) == ["token.refreshed"]
    assert state_of(session) is SessionState.CREATING

    actions = session.handle(ChannelCreated(T0 + 2, CH, URI, EXPIRES))
    assert plain(actions) == [Subscribe(CH, TOPICS)]
    assert audit_kinds(actions) == ["channel.created"]
    assert state_of(session) is SessionState.SUBSCRIBING
    assert (session.channel_id, session.connect_uri, session.expires_at) == (CH, URI, EXPIRES)

    actions = session.handle(Subscribed(T0 + 3))
    assert plain(actions) == [OpenSocket(1, URI)]
    assert audit_kinds(actions) == ["channel.subscribed"]
    assert state_of(session) is SessionState.CONNECTING
    assert session.sockets == (1,)

    actions = session.handle(SocketOpened(T0 + 4, 1))
    assert plain(actions) == [Backfill("initial", None, TOPICS)]
    assert audit_kinds(actions) == ["socket.connected"]
    assert state_of(session) is SessionState.LIVE
    assert session.socket_id == 1
    assert session.next_deadline() == T0 + 4 + 70


def test_session_audits_carry_the_channel_and_no_uri() -> None:
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)
    session.handle(Started(T0))
    session.handle(TokenReady(T0))
    (created,) = audits(session.handle(ChannelCreated(T0, CH, URI, EXPIRES)))
    assert created.channel_id == CH
    assert created.details == {"expires_at": EXPIRES}
    assert URI not in repr(created)


def test_session_emits_topic_events() -> None:
    session = live_session()
    topic_event = event(EVENT_TOPIC, {"data": []})
    assert session.handle(FrameReceived(T0 + 1, 1, topic_event)) == [Emit(topic_event)]


def test_session_turns_a_bad_frame_into_a_dead_letter_with_raw_bytes() -> None:
    session = live_session()
    error = FrameError("invalid JSON: nope", b"{nope", None)
    actions = session.handle(BadFrame(T0 + 1, 1, error))
    assert actions == [Emit(DeadLetter(b"{nope", "invalid JSON: nope", "parse", None, T0 + 1))]
    assert session.next_deadline() == T0 + 1 + 70  # bytes arrived: the socket is alive


# -- heartbeat watchdog -----------------------------------------------------------------------


def test_session_pings_after_silence() -> None:
    session = live_session()
    assert session.handle(Tick(T0 + 69.9)) == []
    assert session.handle(Tick(T0 + 70)) == [SendPing(1)]
    assert session.next_deadline() == T0 + 80


def test_session_pings_only_once() -> None:
    session = live_session()
    session.handle(Tick(T0 + 70))
    assert session.handle(Tick(T0 + 75)) == []


def test_session_pong_resets_the_watchdog() -> None:
    session = live_session()
    session.handle(Tick(T0 + 70))
    assert session.handle(FrameReceived(T0 + 72, 1, Pong())) == []
    assert session.handle(Tick(T0 + 80)) == []
    assert session.next_deadline() == T0 + 72 + 70


def test_session_heartbeat_resets_the_watchdog() -> None:
    session = live_session()
    assert session.handle(FrameReceived(T0 + 30, 1, Heartbeat())) == []
    assert session.handle(Tick(T0 + 70)) == []
    assert session.next_deadline() == T0 + 100


def test_session_reconnects_after_an_unanswered_ping() -> None:
    session = live_session()
    session.handle(FrameReceived(T0 + 5, 1, Heartbeat()))
    session.handle(Tick(T0 + 75))
    assert session.handle(Tick(T0 + 84.9)) == []

    actions = session.handle(Tick(T0 + 85))
    assert plain(actions) == [CloseSocket(1, "heartbeat timeout"), CheckChannel(CH)]
    assert audit_kinds(actions) == ["heartbeat.timeout", "socket.disconnected", "gap.opened"]
    assert audits(actions)[2].details == {"started_at": T0 + 5}
    assert state_of(session) is SessionState.CHECKING


# -- socket_closing: make before break --------------------------------------------------------


def test_session_opens_a_replacement_before_closing_the_old_socket() -> None:
    session = live_session()
    actions = session.handle(received(T0 + 10, 1, CLOSING))
    assert plain(actions) == [OpenSocket(2, URI)]
    assert audit_kinds(actions) == ["socket.closing"]
    assert session.sockets == (1, 2)
    assert state_of(session) is SessionState.LIVE

    actions = session.handle(SocketOpened(T0 + 12, 2))
    assert plain(actions) == [CloseSocket(1, "replaced")]  # no Gap, no Backfill
    assert audit_kinds(actions) == ["socket.connected", "socket.replaced"]
    assert snapshot(session) == (SessionState.LIVE, 2, (2,))


def test_session_counts_frames_on_the_old_socket_until_the_replacement_opens() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    topic_event = event(EVENT_TOPIC)
    assert session.handle(FrameReceived(T0 + 11, 1, topic_event)) == [Emit(topic_event)]
    assert session.next_deadline() == T0 + 11 + 70


def test_session_ignores_the_late_close_of_a_replaced_socket() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    session.handle(SocketOpened(T0 + 12, 2))
    assert session.handle(SocketClosed(T0 + 13, 1, 1000, "kicked")) == []
    assert state_of(session) is SessionState.LIVE


def test_session_keeps_the_old_socket_when_the_replacement_fails() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(SocketOpenFailed(T0 + 11, 2, "refused", 503))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["socket.open_failed"]
    assert (session.state, session.socket_id, session.sockets) == (SessionState.LIVE, 1, (1,))

    # ... and recovers normally once the old socket goes.
    actions = session.handle(SocketClosed(T0 + 60, 1, 1001, "going away"))
    assert plain(actions) == [CheckChannel(CH)]
    assert audit_kinds(actions) == ["socket.disconnected", "gap.opened"]


def test_session_recreates_the_channel_when_the_replacement_gets_404() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(SocketOpenFailed(T0 + 11, 2, "not found", 404))
    assert plain(actions) == [CloseSocket(1, "channel gone"), CreateChannel()]
    assert audit_kinds(actions) == ["socket.open_failed", "socket.disconnected", "gap.opened"]


def test_session_waits_for_the_replacement_when_the_old_socket_drops_first() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(SocketClosed(T0 + 11, 1, None, "no close frame"))
    assert plain(actions) == []  # no HEAD: the replacement already tells us
    assert state_of(session) is SessionState.CONNECTING

    actions = session.handle(SocketOpened(T0 + 12, 2))
    gap = Gap(CH, T0 + 10, T0 + 12, TOPICS, "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]
    assert audit_kinds(actions) == ["socket.connected"]  # the Gap is the gap.closed fact


def test_session_opens_one_replacement_per_socket_closing_burst() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    assert plain(session.handle(received(T0 + 11, 1, CLOSING))) == []


# -- drops: gap, HEAD, backoff, reconnect -----------------------------------------------------


def test_session_checks_the_channel_after_a_drop_and_reconnects_after_backoff() -> None:
    session = live_session(jitter=half)
    session.handle(received(T0 + 5, 1, EVENT_TOPIC))

    actions = session.handle(SocketClosed(T0 + 20, 1, 1006, "abnormal closure"))
    assert plain(actions) == [CheckChannel(CH)]
    assert audit_kinds(actions) == ["socket.disconnected", "gap.opened"]

    assert session.handle(ChannelChecked(T0 + 21, exists=True)) == []
    assert state_of(session) is SessionState.WAITING
    deadline = session.next_deadline()
    assert deadline == T0 + 21 + 0.25  # half of min(cap, base * 2**0)
    assert session.handle(Tick(T0 + 21.2)) == []
    assert session.handle(Tick(deadline)) == [OpenSocket(2, URI)]

    actions = session.handle(SocketOpened(T0 + 23, 2))
    gap = Gap(CH, T0 + 5, T0 + 23, TOPICS, "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]
    assert (gap.seconds, len(gap.topics)) == (18.0, 2)
    assert audit_kinds(actions) == ["socket.connected"]  # the Gap is the gap.closed fact


@pytest.mark.parametrize("draw", [0.0, 0.3, 0.999])
def test_session_reconnect_delay_stays_within_the_first_ceiling(draw: float) -> None:
    session = live_session(jitter=lambda: draw)
    session.handle(SocketClosed(T0 + 20, 1, 1006, ""))
    actions = session.handle(ChannelChecked(T0 + 20, exists=True))
    deadline = session.next_deadline()
    if actions:  # a zero delay opens at once (the deadline is then the open's timeout)
        assert actions == [OpenSocket(2, URI)]
    else:
        assert T0 + 20 <= deadline <= T0 + 20 + 0.5


def test_session_gap_starts_at_open_time_when_the_socket_got_no_frame() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    session.handle(ChannelChecked(T0 + 31, exists=True))
    actions = session.handle(SocketOpened(T0 + 32, 2))
    assert Emit(Gap(CH, T0, T0 + 32, TOPICS, "socket.dropped")) in actions


def test_session_creates_a_new_channel_when_the_check_says_gone() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    actions = session.handle(ChannelChecked(T0 + 31, exists=False))
    assert plain(actions) == [CreateChannel()]
    assert audit_kinds(actions) == ["channel.gone"]

    assert plain(session.handle(ChannelCreated(T0 + 32, CH2, URI2, EXPIRES))) == [
        Subscribe(CH2, TOPICS)
    ]
    assert plain(session.handle(Subscribed(T0 + 33))) == [OpenSocket(2, URI2)]
    actions = session.handle(SocketOpened(T0 + 34, 2))
    gap = Gap(CH, T0, T0 + 34, TOPICS, "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]
    assert session.channel_id == CH2


def test_session_creates_a_new_channel_when_the_upgrade_gets_404() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    assert session.handle(ChannelChecked(T0 + 31, exists=True)) == [OpenSocket(2, URI)]
    actions = session.handle(SocketOpenFailed(T0 + 32, 2, "not found", 404))
    assert plain(actions) == [CreateChannel()]
    assert audit_kinds(actions) == ["socket.open_failed"]


def test_session_checks_again_when_a_reconnect_fails_otherwise() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    session.handle(ChannelChecked(T0 + 31, exists=True))
    actions = session.handle(SocketOpenFailed(T0 + 32, 2, "timeout", None))
    assert plain(actions) == [CheckChannel(CH)]


def test_session_reports_no_gap_when_the_first_connect_fails() -> None:
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)
    for step in (Started(T0), TokenReady(T0), ChannelCreated(T0, CH, URI, EXPIRES)):
        session.handle(step)
    session.handle(Subscribed(T0))
    actions = session.handle(SocketOpenFailed(T0 + 1, 1, "refused", 503))
    assert plain(actions) == [CheckChannel(CH)]
    assert audit_kinds(actions) == ["socket.open_failed"]  # never live: nothing missed yet
    assert session.handle(ChannelChecked(T0 + 2, exists=True)) == [OpenSocket(2, URI)]
    assert plain(session.handle(SocketOpened(T0 + 3, 2))) == [Backfill("initial", None, TOPICS)]


def test_session_ignores_a_late_duplicate_close() -> None:
    session = live_session()
    session.handle(SocketClosed(T0 + 30, 1, 1006, ""))
    assert session.handle(SocketClosed(T0 + 31, 1, 1006, "")) == []
    assert state_of(session) is SessionState.CHECKING


# -- system messages --------------------------------------------------------------------------


def test_session_recreates_the_channel_on_no_longer_subscribed() -> None:
    session = live_session()
    actions = session.handle(received(T0 + 30, 1, f"v2.system.no_longer_subscribed.{CH}"))
    assert plain(actions) == [CloseSocket(1, "no longer subscribed"), CreateChannel()]
    assert audit_kinds(actions) == [
        "system.no_longer_subscribed",
        "socket.disconnected",
        "gap.opened",
    ]
    # The close the shell reports afterwards changes nothing (idempotence).
    assert session.handle(SocketClosed(T0 + 31, 1, 1000, "")) == []

    session.handle(ChannelCreated(T0 + 32, CH2, URI2, EXPIRES))
    assert plain(session.handle(Subscribed(T0 + 33))) == [OpenSocket(2, URI2)]
    actions = session.handle(SocketOpened(T0 + 34, 2))
    gap = Gap(CH, T0 + 30, T0 + 34, TOPICS, "channel.no_longer_subscribed")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]


def test_session_fetches_a_forced_token_then_a_new_channel_on_token_revoked() -> None:
    session = live_session()
    actions = session.handle(received(T0 + 30, 1, f"v2.system.token_revoked.{CH}"))
    assert plain(actions) == [CloseSocket(1, "token revoked"), FetchToken(force=True)]
    assert audit_kinds(actions) == ["system.token_revoked", "socket.disconnected", "gap.opened"]
    assert state_of(session) is SessionState.AUTHENTICATING
    assert session.handle(SocketClosed(T0 + 31, 1, 1000, "")) == []

    actions = session.handle(TokenReady(T0 + 32))
    assert plain(actions) == [CreateChannel()]
    assert audits(actions)[0].details == {"forced": True}


def test_session_only_audits_subscription_changed() -> None:
    session = live_session()
    actions = session.handle(received(T0 + 30, 1, "v2.subscription.updated", {"reason": "x"}))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["system.subscription_changed"]
    assert audits(actions)[0].details == {"reason": "x"}
    assert state_of(session) is SessionState.LIVE


def test_session_audits_an_unknown_system_message_under_one_kind() -> None:
    session = live_session()
    actions = session.handle(received(T0 + 30, 1, f"v2.system.maintenance.{CH}"))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["system.unknown"]
    assert audits(actions)[0].details == {"reason": None, "system_kind": "maintenance"}
    assert state_of(session) is SessionState.LIVE


# -- tokens -----------------------------------------------------------------------------------


def test_session_refreshes_the_token_after_401_on_subscribe() -> None:
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)
    session.handle(Started(T0))
    session.handle(TokenReady(T0))
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES))
    actions = session.handle(SubscribeFailed(T0 + 1, "unauthorized", None, 401))
    assert plain(actions) == [FetchToken(force=True)]
    assert audit_kinds(actions) == ["subscribe.failed"]
    # The channel made with the refused token is dropped: a new one follows the new token.
    assert plain(session.handle(TokenReady(T0 + 2))) == [CreateChannel()]


# -- extension and rollover -------------------------------------------------------------------


def _near_expiry(jitter: float = 0.0) -> ChannelSession:
    session = live_session(jitter=lambda: jitter)
    session.handle(FrameReceived(EXPIRES - 3601, 1, Heartbeat()))
    return session


def test_session_extends_before_expiry() -> None:
    session = _near_expiry()
    assert session.next_deadline() == EXPIRES - 3600
    assert session.handle(Tick(EXPIRES - 3600.5)) == []
    assert session.handle(Tick(EXPIRES - 3600)) == [Subscribe(CH, TOPICS)]
    assert state_of(session) is SessionState.LIVE

    actions = session.handle(Subscribed(EXPIRES - 3599, expires_at=EXPIRES + 80_000))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["channel.extended"]
    assert session.expires_at == EXPIRES + 80_000


def test_session_assumes_a_full_lifetime_when_the_extension_has_no_expiry() -> None:
    session = _near_expiry()
    session.handle(Tick(EXPIRES - 3600))
    session.handle(Subscribed(EXPIRES - 3599))
    assert session.expires_at == EXPIRES - 3599 + 86_400


def test_session_extends_a_short_lived_channel_halfway() -> None:
    session = ChannelSession(TOPICS, jitter=lambda: 0.0)
    for step in (
        Started(T0),
        TokenReady(T0),
        ChannelCreated(T0, CH, URI, T0 + 100),
        Subscribed(T0),
        SocketOpened(T0, 1),
    ):
        session.handle(step)
    assert session.next_deadline() == T0 + 50  # not T0 + 100 - 3600: no extension storm
    assert session.handle(Tick(T0 + 50)) == [Subscribe(CH, TOPICS)]


def test_session_retries_a_failed_extension_while_streaming() -> None:
    session = _near_expiry(jitter=0.5)
    session.handle(Tick(EXPIRES - 3600))
    actions = session.handle(SubscribeFailed(EXPIRES - 3599, "busy", None, 503))
    assert plain(actions) == []
    assert audit_kinds(actions) == ["channel.extend.failed"]
    assert state_of(session) is SessionState.LIVE
    assert session.next_deadline() == EXPIRES - 3599 + 0.25
    assert session.handle(Tick(EXPIRES - 3599 + 0.25)) == [Subscribe(CH, TOPICS)]


def test_session_rolls_over_when_the_extension_gets_404() -> None:
    session = _near_expiry()
    session.handle(Tick(EXPIRES - 3600))
    actions = session.handle(SubscribeFailed(EXPIRES - 3599, "not found", None, 404))
    assert plain(actions) == [CreateChannel()]
    assert (session.state, session.socket_id) == (SessionState.LIVE, 1)

    now = EXPIRES - 3598
    assert plain(session.handle(ChannelCreated(now, CH2, URI2, now + 86_400))) == [
        Subscribe(CH2, TOPICS)
    ]
    assert plain(session.handle(Subscribed(now))) == [OpenSocket(2, URI2)]  # no backoff
    actions = session.handle(SocketOpened(now, 2))
    assert plain(actions) == [CloseSocket(1, "replaced")]  # no gap, no backfill
    assert audit_kinds(actions) == ["socket.connected", "channel.rolled_over"]
    assert audits(actions)[1].details == {"previous": CH}
    assert (session.channel_id, session.socket_id) == (CH2, 2)


def test_session_rolls_over_after_a_token_refresh_when_the_extension_gets_401() -> None:
    session = _near_expiry()
    session.handle(Tick(EXPIRES - 3600))
    actions = session.handle(SubscribeFailed(EXPIRES - 3599, "unauthorized", None, 401))
    assert plain(actions) == [FetchToken(force=True)]
    assert state_of(session) is SessionState.LIVE
    assert plain(session.handle(TokenReady(EXPIRES - 3598))) == [CreateChannel()]


def test_session_rollover_turns_into_recovery_if_the_old_socket_dies() -> None:
    session = _near_expiry()
    session.handle(Tick(EXPIRES - 3600))
    session.handle(SubscribeFailed(EXPIRES - 3599, "not found", None, 404))
    actions = session.handle(SocketClosed(EXPIRES - 3598, 1, 1006, ""))
    assert plain(actions) == []  # CreateChannel is already in flight
    assert audit_kinds(actions) == ["socket.disconnected", "gap.opened"]
    session.handle(ChannelCreated(EXPIRES - 3597, CH2, URI2, EXPIRES + 80_000))
    assert plain(session.handle(Subscribed(EXPIRES - 3596))) == [OpenSocket(2, URI2)]
    actions = session.handle(SocketOpened(EXPIRES - 3595, 2))
    gap = Gap(CH, EXPIRES - 3601, EXPIRES - 3595, TOPICS, "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]


def test_session_token_revoked_during_a_rollover_drops_the_new_channel_too() -> None:
    session = _near_expiry()
    session.handle(Tick(EXPIRES - 3600))
    session.handle(SubscribeFailed(EXPIRES - 3599, "not found", None, 404))
    session.handle(ChannelCreated(EXPIRES - 3598, CH2, URI2, EXPIRES + 80_000))
    actions = session.handle(received(EXPIRES - 3597, 1, f"v2.system.token_revoked.{CH}"))
    assert plain(actions) == [CloseSocket(1, "token revoked")]  # Subscribe(CH2) in flight
    assert session.channel_id is None
    # The answer for the dropped channel is discarded; the token comes next.
    assert plain(session.handle(Subscribed(EXPIRES - 3596))) == [FetchToken(force=True)]


# -- stale sockets, unexpected inputs, stop ---------------------------------------------------


def test_session_abandons_an_opening_replacement_when_the_channel_dies() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(received(T0 + 11, 1, f"v2.system.no_longer_subscribed.{CH}"))
    assert plain(actions) == [
        CloseSocket(1, "no longer subscribed"),
        CloseSocket(2, "no longer subscribed"),
        CreateChannel(),
    ]
    assert session.sockets == ()


def test_session_closes_an_abandoned_socket_that_opens_anyway() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    session.handle(received(T0 + 11, 1, f"v2.system.no_longer_subscribed.{CH}"))
    assert session.handle(SocketOpened(T0 + 12, 2)) == [CloseSocket(2, "unwanted")]
    assert session.handle(SocketOpened(T0 + 12, 1)) == [CloseSocket(1, "unwanted")]


def test_session_emits_events_from_a_stale_socket_without_changing_state() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    session.handle(SocketOpened(T0 + 12, 2))

    topic_event = event(EVENT_TOPIC)
    assert session.handle(FrameReceived(T0 + 13, 1, topic_event)) == [Emit(topic_event)]
    assert session.handle(received(T0 + 13, 1, f"v2.system.no_longer_subscribed.{CH}")) == []
    assert session.handle(received(T0 + 13, 1, CLOSING)) == []
    assert session.next_deadline() == T0 + 12 + 70  # only socket 2 feeds the watchdog
    assert (session.state, session.sockets) == (SessionState.LIVE, (2,))


@pytest.mark.parametrize(
    "stray",
    [
        Started(T0 + 1),
        TokenReady(T0 + 1),
        ChannelCreated(T0 + 1, CH2, URI2, EXPIRES),
        Subscribed(T0 + 1),
        SubscribeFailed(T0 + 1, "x", None, 403),
        ChannelChecked(T0 + 1, exists=False),
        SocketOpened(T0 + 1, 99),
        SocketOpenFailed(T0 + 1, 99, "x", 404),
        SocketClosed(T0 + 1, 99, 1000, ""),
    ],
)
def test_session_ignores_inputs_it_did_not_ask_for(stray: SessionInput) -> None:
    session = live_session()
    assert session.handle(stray) == []
    assert (session.state, session.channel_id, session.sockets) == (SessionState.LIVE, CH, (1,))


def test_session_stop_closes_every_socket() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(Stop(T0 + 11))
    assert plain(actions) == [
        CloseSocket(2, "stop requested"),
        CloseSocket(1, "stop requested"),
        Stopped("stop requested"),
    ]
    assert audit_kinds(actions) == ["session.stopped"]
    assert state_of(session) is SessionState.STOPPED
    assert session.sockets == ()
    assert session.next_deadline() is None


def test_session_ignores_everything_after_stop() -> None:
    session = live_session()
    session.handle(Stop(T0 + 1))
    assert session.handle(Tick(T0 + 1000)) == []
    assert session.handle(SocketClosed(T0 + 1000, 1, 1000, "")) == []
    assert session.handle(Stop(T0 + 1001)) == []


def test_session_stop_before_start_just_stops() -> None:
    session = ChannelSession(TOPICS)
    assert plain(session.handle(Stop(T0))) == [Stopped("stop requested")]


def test_session_backfill_success_is_audited() -> None:
    session = live_session()
    actions = session.handle(BackfillFinished(T0 + 2, ok=True))
    assert actions[0] == Emit(audits(actions)[0])
    assert audit_kinds(actions) == ["backfill.finished"]
    assert audits(actions)[0].details == {"backfill": "initial", "reason": "", "failures": 0}
