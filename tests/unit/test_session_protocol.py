"""The channel session against round-two Genesys facts: refused topics (§5.6), channels that
die with their token (§5.7) and the minute between socket_closing and the close (§5.8).

Pure: feed inputs, assert the actions (no sockets, no sleeps).
"""

from __future__ import annotations

from pipeline.core.genesys.actions import (
    Backfill,
    CheckChannel,
    CloseSocket,
    CreateChannel,
    Emit,
    FetchToken,
    OpenSocket,
    Subscribe,
)
from pipeline.core.genesys.events import Gap
from pipeline.core.genesys.frames import Heartbeat
from pipeline.core.genesys.inputs import (
    ChannelChecked,
    ChannelCreated,
    FrameReceived,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    Started,
    Subscribed,
    Tick,
    TokenReady,
)
from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.core.genesys.session import ChannelSession, SessionState
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
    live_session,
    plain,
    received,
    snapshot,
    state_of,
    zero,
)

REFUSED = RejectedTopic(TOPICS[1], "Not authorized for this topic.", ("analytics:x:view",))


# -- refused topics (§5.6) --------------------------------------------------------------------


def test_session_streams_the_permitted_topics_and_audits_the_refused_ones() -> None:
    session = ChannelSession(TOPICS, jitter=zero)
    for step in (Started(T0), TokenReady(T0), ChannelCreated(T0, CH, URI, EXPIRES)):
        session.handle(step)
    actions = session.handle(Subscribed(T0 + 1, rejected=(REFUSED,)))
    assert plain(actions) == [OpenSocket(1, URI)]
    assert audit_kinds(actions) == ["channel.subscribed", "subscription.rejected"]
    subscribed, rejected = audits(actions)
    assert subscribed.details == {"topics": 1}
    assert rejected.channel_id == CH
    assert rejected.details == {
        "topics": 1,
        "topic_names": [TOPICS[1]],
        "reason": "Not authorized for this topic.",
        "missing_permissions": ["analytics:x:view"],
        "call": "subscribe",
    }
    assert session.permitted_topics == TOPICS[:1]
    assert session.rejected_topics == (REFUSED,)

    # The first backfill covers what streams, not what Genesys refused.
    actions = session.handle(SocketOpened(T0 + 2, 1))
    assert Backfill("initial", None, TOPICS[:1]) in plain(actions)
    assert state_of(session) is SessionState.LIVE


def test_session_asks_for_every_topic_again_on_the_extension_and_notes_changes() -> None:
    session = live_session()
    session.handle(FrameReceived(EXPIRES - 3601, 1, Heartbeat()))
    assert session.handle(Tick(EXPIRES - 3600)) == [Subscribe(CH, TOPICS)]  # all, refused or not
    actions = session.handle(Subscribed(EXPIRES - 3599, rejected=(REFUSED,)))
    assert audit_kinds(actions) == ["channel.extended", "subscription.rejected"]
    assert audits(actions)[1].details["call"] == "channel.extend"
    assert state_of(session) is SessionState.LIVE  # never fatal for the channel
    assert session.permitted_topics == TOPICS[:1]


def test_session_keeps_a_channel_whose_every_topic_was_refused() -> None:
    session = ChannelSession(TOPICS[:1], jitter=zero)
    for step in (Started(T0), TokenReady(T0), ChannelCreated(T0, CH, URI, EXPIRES)):
        session.handle(step)
    refused = RejectedTopic(TOPICS[0])
    actions = session.handle(Subscribed(T0 + 1, rejected=(refused,)))
    assert plain(actions) == [OpenSocket(1, URI)]
    assert session.permitted_topics == ()
    actions = session.handle(SocketOpened(T0 + 2, 1))
    assert Backfill("initial", None, ()) in plain(actions)


def test_session_gap_covers_only_the_permitted_topics() -> None:
    session = ChannelSession(TOPICS, jitter=zero)
    for step in (Started(T0), TokenReady(T0), ChannelCreated(T0, CH, URI, EXPIRES)):
        session.handle(step)
    session.handle(Subscribed(T0 + 1, rejected=(REFUSED,)))
    session.handle(SocketOpened(T0 + 2, 1))
    assert plain(session.handle(SocketClosed(T0 + 5, 1, None, "reset"))) == [CheckChannel(CH)]
    assert plain(session.handle(ChannelChecked(T0 + 6, exists=True))) == [OpenSocket(2, URI)]
    actions = session.handle(SocketOpened(T0 + 7, 2))
    gap = Gap(CH, T0 + 2, T0 + 7, TOPICS[:1], "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS[:1])]


# -- channels die with their token (§5.7): roll over before it expires -------------------------

TOKEN_1 = T0 + 3600.0  # a one-hour token
TOKEN_2 = T0 + 7200.0


def _live_on_short_token() -> ChannelSession:
    session = ChannelSession(TOPICS, jitter=zero)
    for step in (
        Started(T0),
        TokenReady(T0, expires_at=TOKEN_1),
        ChannelCreated(T0, CH, URI, EXPIRES),
        Subscribed(T0),
        SocketOpened(T0, 1),
        FrameReceived(TOKEN_1 - 301, 1, Heartbeat()),  # keeps the watchdog quiet
    ):
        session.handle(step)
    return session


def test_session_rolls_the_channel_over_before_its_token_expires() -> None:
    session = _live_on_short_token()
    assert session.next_deadline() == TOKEN_1 - 300  # token_margin_s before
    assert session.handle(Tick(TOKEN_1 - 300.5)) == []
    assert session.handle(Tick(TOKEN_1 - 300)) == [FetchToken(force=False, outlive=TOKEN_1)]
    assert state_of(session) is SessionState.LIVE  # the old socket streams meanwhile


def test_a_roll_over_makes_before_it_breaks_and_leaves_no_gap() -> None:
    session = _live_on_short_token()
    session.handle(Tick(TOKEN_1 - 300))
    order: list[object] = []
    order += plain(session.handle(TokenReady(TOKEN_1 - 299, expires_at=TOKEN_2)))
    order += plain(session.handle(ChannelCreated(TOKEN_1 - 298, CH2, URI2, EXPIRES + 3600)))
    order += plain(session.handle(Subscribed(TOKEN_1 - 297)))
    assert order == [CreateChannel(), Subscribe(CH2, TOPICS), OpenSocket(2, URI2)]
    assert snapshot(session) == (SessionState.LIVE, 1, (1, 2))  # old still streams

    actions = session.handle(SocketOpened(TOKEN_1 - 296, 2))
    assert plain(actions) == [CloseSocket(1, "replaced")]  # only now: no Gap, no Backfill
    assert audit_kinds(actions) == ["socket.connected", "channel.rolled_over"]
    assert audits(actions)[1].details == {"previous": CH}
    assert session.channel_id == CH2
    # The new channel rolls over before the new token expires.
    session.handle(FrameReceived(TOKEN_2 - 301, 2, Heartbeat()))
    assert session.next_deadline() == TOKEN_2 - 300


def test_a_channel_made_with_the_shells_token_rolls_over_on_that_token() -> None:
    session = ChannelSession(TOPICS, jitter=zero)
    for step in (Started(T0), TokenReady(T0, expires_at=TOKEN_1)):
        session.handle(step)
    session.handle(ChannelCreated(T0, CH, URI, EXPIRES, token_expires_at=TOKEN_2))
    session.handle(Subscribed(T0))
    session.handle(SocketOpened(T0, 1))
    session.handle(FrameReceived(TOKEN_2 - 301, 1, Heartbeat()))
    assert session.next_deadline() == TOKEN_2 - 300


def test_a_short_lived_token_rolls_over_halfway() -> None:
    session = ChannelSession(TOPICS, jitter=zero)
    for step in (
        Started(T0),
        TokenReady(T0, expires_at=T0 + 60),
        ChannelCreated(T0, CH, URI, EXPIRES),
        Subscribed(T0),
        SocketOpened(T0, 1),
    ):
        session.handle(step)
    assert session.next_deadline() == T0 + 30


def test_a_roll_over_without_a_newer_token_waits_for_the_channel_to_end() -> None:
    session = _live_on_short_token()
    session.handle(Tick(TOKEN_1 - 300))
    actions = session.handle(TokenReady(TOKEN_1 - 299, expires_at=TOKEN_1))  # the same token
    assert plain(actions) == []
    assert session.channel_id == CH
    assert session.next_deadline() == TOKEN_1 - 301 + 70  # the watchdog only: no loop
    # When the channel ends with its token, normal recovery follows, with a gap.
    closing = received(TOKEN_1, 1, f"v2.system.token_revoked.{CH}")
    assert plain(session.handle(closing)) == [CloseSocket(1, "token revoked"), FetchToken(True)]


def test_a_channel_closed_with_its_token_mid_roll_over_keeps_the_new_channel() -> None:
    session = _live_on_short_token()
    session.handle(Tick(TOKEN_1 - 300))
    session.handle(TokenReady(TOKEN_1 - 299, expires_at=TOKEN_2))
    session.handle(ChannelCreated(TOKEN_1 - 298, CH2, URI2, EXPIRES + 3600))
    actions = session.handle(received(TOKEN_1 - 297, 1, f"v2.system.token_revoked.{CH}"))
    assert plain(actions) == [CloseSocket(1, "token revoked")]  # Subscribe(CH2) in flight
    assert audit_kinds(actions) == [
        "system.token_revoked", "socket.disconnected", "gap.opened"
    ]  # fmt: skip
    assert session.channel_id == CH2
    assert plain(session.handle(Subscribed(TOKEN_1 - 296))) == [OpenSocket(2, URI2)]
    actions = session.handle(SocketOpened(TOKEN_1 - 295, 2))
    gap = Gap(CH, TOKEN_1 - 297, TOKEN_1 - 295, TOPICS, "token.revoked")  # its last frame
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]


def test_a_revocation_of_every_token_drops_the_new_channel_too() -> None:
    session = _live_on_short_token()
    session.handle(Tick(TOKEN_1 - 300))
    session.handle(TokenReady(TOKEN_1 - 299, expires_at=TOKEN_2))
    session.handle(ChannelCreated(TOKEN_1 - 298, CH2, URI2, EXPIRES + 3600))
    revoked = received(
        TOKEN_1 - 297, 1, f"v2.system.token_revoked.{CH}", {"reason": "user_tokens_revoked"}
    )
    session.handle(revoked)
    assert session.channel_id is None
    assert plain(session.handle(Subscribed(TOKEN_1 - 296))) == [FetchToken(force=True)]


# -- socket_closing (§5.8): a minute's notice, one socket per channel ---------------------------

CLOSING = "v2.system.socket_closing"


def test_the_kicked_old_socket_is_a_handover_not_a_gap() -> None:
    session = live_session()
    assert plain(session.handle(received(T0 + 10, 1, CLOSING))) == [OpenSocket(2, URI)]
    # Our replacement's connect makes the service close the old socket (one per channel),
    # cleanly, before our handshake completes.
    assert session.handle(SocketClosed(T0 + 10.2, 1, 1000, "another connection")) == []
    assert state_of(session) is SessionState.CONNECTING
    actions = session.handle(SocketOpened(T0 + 10.3, 2))
    assert plain(actions) == []  # no Gap, no Backfill, nothing left to close
    assert audit_kinds(actions) == ["socket.connected", "socket.replaced"]
    assert audits(actions)[1].details == {"previous_socket_id": 1}
    assert snapshot(session) == (SessionState.LIVE, 2, (2,))


def test_a_clean_close_after_the_announced_minute_is_a_gap() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    actions = session.handle(SocketClosed(T0 + 70, 1, 1001, "socket closing"))
    assert audit_kinds(actions) == ["socket.disconnected", "gap.opened"]
    actions = session.handle(SocketOpened(T0 + 71, 2))
    gap = Gap(CH, T0 + 10, T0 + 71, TOPICS, "socket.dropped")
    assert plain(actions) == [Emit(gap), Backfill("gap", gap, TOPICS)]


def test_a_handover_whose_replacement_fails_is_a_gap_from_the_old_sockets_last_frame() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    session.handle(SocketClosed(T0 + 10.2, 1, 1000, "another connection"))
    actions = session.handle(SocketOpenFailed(T0 + 11, 2, "refused", 503))
    assert plain(actions) == [CheckChannel(CH)]
    assert audit_kinds(actions) == ["socket.open_failed", "socket.disconnected", "gap.opened"]
    assert audits(actions)[1].details == {
        "socket_id": 1, "cause": "socket.dropped", "code": 1000, "reason": "another connection"
    }  # fmt: skip
    assert audits(actions)[2].details == {"started_at": T0 + 10}


def test_a_handover_whose_replacement_gets_404_builds_a_new_channel() -> None:
    session = live_session()
    session.handle(received(T0 + 10, 1, CLOSING))
    session.handle(SocketClosed(T0 + 10.2, 1, 1000, "another connection"))
    actions = session.handle(SocketOpenFailed(T0 + 11, 2, "not found", 404))
    assert plain(actions) == [CreateChannel()]
    assert session.channel_id is None


def test_a_token_of_unknown_expiry_ends_the_roll_overs_instead_of_looping() -> None:
    session = _live_on_short_token()
    session.handle(Tick(TOKEN_1 - 300))
    assert plain(session.handle(TokenReady(TOKEN_1 - 299))) == [CreateChannel()]
    session.handle(ChannelCreated(TOKEN_1 - 298, CH2, URI2, EXPIRES + 3600))
    session.handle(Subscribed(TOKEN_1 - 297))
    session.handle(SocketOpened(TOKEN_1 - 296, 2))
    assert session.next_deadline() == TOKEN_1 - 296 + 70  # the watchdog only
