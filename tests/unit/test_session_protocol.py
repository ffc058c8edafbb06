"""The channel session against round-two Genesys facts: refused topics (§5.6), channels that
die with their token (§5.7) and the minute between socket_closing and the close (§5.8).

Pure: feed inputs, assert the actions (no sockets, no sleeps).
"""

from __future__ import annotations

from pipeline.core.genesys.actions import Backfill, CheckChannel, Emit, OpenSocket, Subscribe
from pipeline.core.genesys.events import Gap
from pipeline.core.genesys.frames import Heartbeat
from pipeline.core.genesys.inputs import (
    ChannelChecked,
    ChannelCreated,
    FrameReceived,
    SocketClosed,
    SocketOpened,
    Started,
    Subscribed,
    Tick,
    TokenReady,
)
from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.core.genesys.session import ChannelSession, SessionState
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
