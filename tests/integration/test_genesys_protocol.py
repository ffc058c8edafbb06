"""Our notification client against the emulator behaving as Genesys documents it (issue 13):
refused topics (§5.6), channels that die with their token (§5.7), per-family rate limits
(§4.5) and the minute between socket_closing and the close (§5.8)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.events import BackfillEvent, Gap, StreamEvent
from pipeline.core.genesys.frames import TopicEvent
from pipeline.core.genesys.session import SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.emulator.clock import ManualClock
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import EvictChannel, ExpireToken, SendSocketClosing
from pipeline.emulator.thread import EmulatorThread
from pipeline.genesys.auth import TokenProvider
from pipeline.genesys.rest import GenesysRest
from pipeline.genesys.stream import ChannelStream
from tests.conftest import seconds
from tests.polling import until

pytestmark = pytest.mark.integration

T = TypeVar("T")

FAST = SessionSettings(
    heartbeat_timeout_s=1.5, ping_timeout_s=0.5, backoff_base_s=0.05, backoff_cap_s=0.3
)


class Collector:
    """The sink: remembers every stream event."""

    def __init__(self) -> None:
        self.items: list[StreamEvent] = []

    async def __call__(self, item: StreamEvent) -> None:
        self.items.append(item)

    def of(self, kind: type[T]) -> list[T]:
        return [i for i in self.items if isinstance(i, kind)]

    def audits(self, kind: AuditKind) -> list[AuditEvent]:
        return [a for a in self.of(AuditEvent) if a.kind == kind]


@contextlib.asynccontextmanager
async def streaming(
    emulator: EmulatorThread,
    topics: Sequence[str],
    settings: SessionSettings = FAST,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[tuple[ChannelStream, Collector]]:
    """One channel stream over our own REST client, stopped on exit."""
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=10) as http:
        extra = {} if clock is None else {"clock": clock}
        tokens = TokenProvider(
            http, emulator.base_url, DEMO_CLIENT_ID, SecretStr(DEMO_CLIENT_SECRET), **extra
        )
        collector = Collector()
        stream = ChannelStream(GenesysRest(http, tokens), topics, collector, settings=settings)
        task = asyncio.create_task(stream.run())
        try:
            yield stream, collector
        finally:
            stream.stop()
            await asyncio.wait_for(task, seconds(10))


def queue_topics(emulator: EmulatorThread) -> list[str]:
    assert emulator.emulator is not None
    return [f"v2.analytics.queues.{q.id}.observations" for q in emulator.emulator.center.queues]


# -- §5.6: a topic the client may not see ------------------------------------------------------


async def test_a_refused_queue_is_reported_and_the_rest_streams(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(
        queues=3, agents=30, speed=120.0, frame_interval_s=0.2, restricted_queues=1
    )
    topics = queue_topics(emulator)
    hidden = topics[-1]
    async with streaming(emulator, topics) as (stream, collector):
        await until(
            lambda: (
                stream.session.state is SessionState.LIVE and len(collector.of(TopicEvent)) >= 5
            ),
            seconds(15),
            message="live with topic events despite one refused topic",
        )
        [rejected] = collector.audits(AuditKind.SUBSCRIPTION_REJECTED)
        assert rejected.details["topics"] == 1
        assert rejected.details["topic_names"] == [hidden]
        assert rejected.details["missing_permissions"] == ["analytics:queueObservation:view"]
        assert [r.topic for r in stream.session.rejected_topics] == [hidden]
        assert emulator.emulator is not None
        [channel] = emulator.emulator.state.channels.channels(emulator.emulator.now())
        assert channel.topics == tuple(topics[:-1])  # only the permitted ones subscribed
        assert hidden not in {e.topic for e in collector.of(TopicEvent)}
        assert hidden not in {b.topic for b in collector.of(BackfillEvent)}
        assert not collector.of(Gap)


# -- §5.7: a channel dies with the token that created it ---------------------------------------


async def test_channels_roll_over_to_new_tokens_before_theirs_expire_without_a_gap(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    # 8-second tokens: the session rolls its channel over 3 s before each token expires.
    emulator = emulator_factory(
        queues=3, agents=30, speed=120.0, frame_interval_s=0.2, heartbeat_s=0.5,
        token_lifetime_s=8,
    )  # fmt: skip
    settings = SessionSettings(
        heartbeat_timeout_s=1.5, ping_timeout_s=0.5, backoff_base_s=0.05, backoff_cap_s=0.3,
        token_margin_s=3.0,
    )  # fmt: skip
    async with streaming(emulator, queue_topics(emulator), settings) as (stream, collector):
        await until(
            lambda: (
                len(collector.audits(AuditKind.CHANNEL_ROLLED_OVER)) >= 2
                and stream.session.state is SessionState.LIVE
            ),
            seconds(30),
            message="two planned roll-overs",
        )
        assert collector.of(Gap) == []
        assert collector.audits(AuditKind.SYSTEM_TOKEN_REVOKED) == []  # none died under us
        rolled = collector.audits(AuditKind.CHANNEL_ROLLED_OVER)
        created = collector.audits(AuditKind.CHANNEL_CREATED)
        assert len(created) == len(rolled) + 1
        assert {a.details["previous"] for a in rolled} <= {c.channel_id for c in created}


async def test_a_channel_closed_with_its_token_anyway_is_recovered_with_a_backfilled_gap(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(
        queues=3, agents=30, speed=120.0, frame_interval_s=0.2, heartbeat_s=0.5
    )
    assert emulator.emulator is not None
    async with streaming(emulator, queue_topics(emulator)) as (stream, collector):
        await until(
            lambda: (
                stream.session.state is SessionState.LIVE and len(collector.of(TopicEvent)) >= 3
            ),
            seconds(15),
            message="live",
        )
        first = stream.session.channel_id
        [channel] = emulator.emulator.state.channels.channels(emulator.emulator.now())
        emulator.inject(ExpireToken(channel.token_id))  # long before the planned roll-over
        await until(
            lambda: len(collector.of(Gap)) == 1 and stream.session.state is SessionState.LIVE,
            seconds(15),
            message="a gap, then live on a new channel",
        )
        await until(
            lambda: any(b.reason == "gap" for b in collector.of(BackfillEvent)),
            seconds(15),
            message="the gap backfilled",
        )
        [gap] = collector.of(Gap)
        assert (gap.channel_id, gap.reason) == (first, "token.revoked")
        assert stream.session.channel_id != first
        assert collector.audits(AuditKind.SYSTEM_TOKEN_REVOKED)


# -- §4.5: per-family budgets -------------------------------------------------------------------


async def test_an_analytics_429_storm_does_not_hold_up_channel_recovery(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(
        queues=3, agents=30, speed=120.0, frame_interval_s=0.2, heartbeat_s=0.5
    )
    assert emulator.emulator is not None
    async with streaming(emulator, queue_topics(emulator)) as (stream, collector):
        await until(
            lambda: (
                stream.session.state is SessionState.LIVE
                and bool(collector.audits(AuditKind.BACKFILL_FINISHED))
            ),
            seconds(15),
            message="live, initial backfill done",
        )
        # Another caller's analytics query meets a 429 storm: its family pauses for 30 s.
        faults = emulator.emulator.state.faults
        faults.fail_requests(5, 429, 30, "/api/v2/analytics")
        rest = stream._rest
        analytics = asyncio.create_task(rest.queue_observations({"metrics": ["oWaiting"]}))
        await until(lambda: faults.pending_request_faults() == 4, seconds(5), message="a 429")
        first = stream.session.channel_id
        assert first is not None
        emulator.inject(EvictChannel(first))  # the channel must be recreated right now
        await until(
            lambda: (
                stream.session.state is SessionState.LIVE
                and stream.session.channel_id not in (None, first)
            ),
            seconds(10),  # far less than the analytics family's 30 s pause
            message="live on a new channel while analytics waits",
        )
        assert not analytics.done()  # still waiting out its own family's Retry-After
        analytics.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await analytics


# -- §5.8: socket_closing comes a minute before the close ---------------------------------------


async def test_socket_closing_a_minute_ahead_is_a_make_before_break_handover(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()  # the emulator's time: the minute passes only when we say
    emulator = emulator_factory(clock=clock, queues=2, agents=10)
    assert emulator.emulator is not None
    assert emulator.config.socket_closing_delay_s == 60.0  # the documented default
    quiet = SessionSettings(heartbeat_timeout_s=30.0, backoff_base_s=0.05, backoff_cap_s=0.3)
    async with streaming(emulator, queue_topics(emulator), quiet) as (stream, collector):
        await until(
            lambda: (
                stream.session.state is SessionState.LIVE
                and bool(collector.audits(AuditKind.BACKFILL_FINISHED))
            ),
            seconds(15),
            message="live",
        )
        channel = stream.session.channel_id
        assert channel is not None
        emulator.inject(SendSocketClosing(channel))  # no delay named: the configured minute
        await asyncio.to_thread(emulator.step)  # the notice goes out now
        await until(
            lambda: (
                bool(collector.audits(AuditKind.SOCKET_REPLACED))
                and stream.session.state is SessionState.LIVE
            ),
            seconds(10),
            message="the replacement socket took over",
        )
        clock.advance(60.0)  # the announced close is due: it finds the old socket gone
        await asyncio.to_thread(emulator.step)
        [closing] = collector.audits(AuditKind.SOCKET_CLOSING)
        assert closing.details == {"socket_id": 1, "replacing": True}
        assert stream.session.socket_id == 2
        assert stream.session.channel_id == channel  # same channel, new socket
        assert collector.of(Gap) == []
        assert [b for b in collector.of(BackfillEvent) if b.reason == "gap"] == []
        sent = [f.kind for f in emulator.emulator.frames.frames(channel)]
        assert sent.count("socket_closing") == 1
        await until(
            lambda: stream.session.state is SessionState.LIVE, seconds(5), message="still live"
        )
