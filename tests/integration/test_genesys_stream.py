"""A notification session against the emulator survives every documented failure, and every
frame the emulator sent is accounted for: received, dead-lettered, or inside a reported gap
that was backfilled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.events import BackfillEvent, DeadLetter, Gap, StreamEvent
from pipeline.core.genesys.frames import TopicEvent
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import (
    DropSocket,
    EvictChannel,
    ExpireToken,
    MalformedFrames,
    SendSocketClosing,
    StallSocket,
)
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
# A frame in flight when a socket dies was sent just before the client's last received frame
# arrived; this much slack covers loopback latency between the two clocks' readings.
IN_FLIGHT_SLACK_S = 0.5


class Collector:
    """The sink: remembers every stream event with its arrival time."""

    def __init__(self) -> None:
        self.items: list[StreamEvent] = []

    async def __call__(self, item: StreamEvent) -> None:
        self.items.append(item)

    def of(self, kind: type[T]) -> list[T]:
        return [i for i in self.items if isinstance(i, kind)]

    def audits(self, kind: AuditKind) -> list[AuditEvent]:
        return [a for a in self.of(AuditEvent) if a.kind == kind]


@dataclass
class Rig:
    emulator: EmulatorThread
    rest: GenesysRest
    collector: Collector
    stream: ChannelStream
    topics: list[str]
    task: asyncio.Task[None]

    @property
    def channel_id(self) -> str:
        channel = self.stream.session.channel_id
        assert channel is not None
        return channel

    async def live_with_events(self, after: int = 0) -> None:
        """Wait until the session is live and 10 more topic events arrived than ``after``."""
        await until(
            lambda: (
                self.stream.session.state.name == "LIVE"
                and len(self.collector.of(TopicEvent)) >= after + 10
            ),
            seconds(15),
            message=f"live, with 10 topic events after the first {after}",
        )


@pytest.fixture
async def rig(emulator_factory: Callable[..., EmulatorThread]) -> AsyncIterator[Rig]:
    emulator = emulator_factory(
        queues=6, agents=60, speed=120.0, frame_interval_s=0.2, heartbeat_s=0.5
    )
    assert emulator.emulator is not None
    center = emulator.emulator.center
    topics = [f"v2.analytics.queues.{q.id}.observations" for q in center.queues]
    topics += [f"v2.users.{u.id}.presence" for u in center.users[:10]]
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=10) as http:
        tokens = TokenProvider(
            http, emulator.base_url, DEMO_CLIENT_ID, SecretStr(DEMO_CLIENT_SECRET)
        )
        rest = GenesysRest(http, tokens)
        collector = Collector()
        stream = ChannelStream(rest, topics, collector, settings=FAST)
        task = asyncio.create_task(stream.run())
        try:
            yield Rig(emulator, rest, collector, stream, topics, task)
        finally:
            stream.stop()
            await asyncio.wait_for(task, seconds(10))


async def test_session_starts_with_an_initial_backfill(rig: Rig) -> None:
    await rig.live_with_events()
    backfill = [b for b in rig.collector.of(BackfillEvent) if b.reason == "initial"]
    queue_topics = {t for t in rig.topics if ".queues." in t}
    assert {b.topic for b in backfill} >= queue_topics
    assert rig.collector.audits(AuditKind.CHANNEL_CREATED)
    assert rig.collector.audits(AuditKind.CHANNEL_SUBSCRIBED)


async def test_session_survives_every_failure_and_accounts_for_every_frame(rig: Rig) -> None:
    collector, emulator = rig.collector, rig.emulator
    assert emulator.emulator is not None
    await rig.live_with_events()
    gaps = lambda: len(collector.of(Gap))  # noqa: E731
    live = lambda: rig.stream.session.state.name == "LIVE"  # noqa: E731

    async def one_more_gap() -> None:
        before = gaps()
        await until(
            lambda: gaps() == before + 1 and live(), seconds(15), message="one more gap, then live"
        )

    # 1. the socket drops without a close frame
    emulator.inject(DropSocket(rig.channel_id))
    await one_more_gap()
    await rig.live_with_events(len(collector.of(TopicEvent)))

    # 2. socket_closing: the replacement opens before the old socket goes. The server kicks
    # the old socket as the new one connects (one socket per channel), and that close can
    # reach us before our handshake completes: the session takes it as the handover (a clean
    # close within the announced lead while the replacement opens), so no gap either way.
    before, connected = gaps(), len(collector.audits(AuditKind.SOCKET_CONNECTED))
    emulator.inject(SendSocketClosing(rig.channel_id, close_after=1.0))
    await until(
        lambda: len(collector.audits(AuditKind.SOCKET_CONNECTED)) > connected and live(),
        seconds(15),
        message="the replacement socket connected and live",
    )
    assert len(collector.audits(AuditKind.SOCKET_REPLACED)) == 1
    assert gaps() == before

    # 3. the socket stalls: the watchdog pings, hears nothing, reconnects
    emulator.inject(StallSocket(rig.channel_id))
    await one_more_gap()
    assert collector.audits(AuditKind.HEARTBEAT_TIMEOUT)

    # 4. the channel is evicted: a new channel, subscribed again
    first_channel = rig.channel_id
    emulator.inject(EvictChannel(rig.channel_id))
    await one_more_gap()
    assert rig.channel_id != first_channel

    # 5. the token expires: its channel ends with it (§5.7), a new token and channel follow
    refreshes = rig.rest.tokens.refreshes
    for token_id in emulator.emulator.state.tokens.token_ids():
        emulator.inject(ExpireToken(token_id))
    await one_more_gap()
    assert rig.rest.tokens.refreshes > refreshes

    # 6. a 429 storm on the notification API while recovering
    emulator.emulator.state.faults.fail_requests(4, 429, 1, "/api/v2/notifications")
    emulator.inject(DropSocket(rig.channel_id))
    await one_more_gap()
    assert emulator.emulator.state.faults.pending_request_faults() == 0
    # One HTTP request per session call (core/http_policy): every 429 reached the session.
    throttled = [a for a in collector.of(AuditEvent) if a.details.get("status") == 429]
    assert len(throttled) == 4

    # 7. a malformed frame becomes a dead letter with its bytes
    emulator.inject(MalformedFrames(rig.channel_id, 1))
    await until(lambda: len(collector.of(DeadLetter)) == 1, seconds(15), message="one dead letter")

    await rig.live_with_events(len(collector.of(TopicEvent)))
    rig.stream.stop()
    stopped_at = time.time()
    await asyncio.wait_for(rig.task, seconds(10))
    account_for_every_frame(rig, stopped_at)


def account_for_every_frame(rig: Rig, stopped_at: float) -> None:
    assert rig.emulator.emulator is not None
    every = [f for f in rig.emulator.emulator.frames.frames() if f.kind == "event"]
    sent = [f for f in every if f.wall < stopped_at - IN_FLIGHT_SLACK_S]
    received = {e.correlation_id for e in rig.collector.of(TopicEvent)}
    gaps = rig.collector.of(Gap)
    backfilled_after = [b.fetched_at for b in rig.collector.of(BackfillEvent) if b.reason == "gap"]
    dead = rig.collector.of(DeadLetter)

    unaccounted, in_gaps = [], 0
    for frame in sent:
        if frame.intact and frame.correlation_id in received:
            continue
        if not frame.intact:
            continue  # counted against dead letters below
        covering = [
            g
            for g in gaps
            if g.started_at - IN_FLIGHT_SLACK_S <= frame.wall <= g.ended_at
            and frame.topic in g.topics
        ]
        if covering and any(t >= covering[0].ended_at for t in backfilled_after):
            in_gaps += 1
            continue
        unaccounted.append(frame)
    assert unaccounted == [], f"{len(unaccounted)} of {len(sent)} frames lost: {unaccounted[:3]}"
    assert len([f for f in every if not f.intact]) == len(dead)
    assert all(d.raw and d.stage == "parse" for d in dead)
    assert len(received) >= 30  # three waits for ten fresh events each
    assert in_gaps > 0  # the stalled socket's frames: lost in transit, covered by its gap
    for gap in gaps:
        assert gap.ended_at >= gap.started_at
        assert set(gap.topics) == set(rig.topics)
