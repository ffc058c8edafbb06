"""The emulator's notification channels, seen by a plain ``websockets`` client.

Heartbeats, ping/pong, socket_closing, one socket per channel, eviction of the 21st channel,
the 1,000-topic cap, token revocation and expiry, channel expiry, abrupt drops, rate limits
and frame accounting all behave as docs/genesys-api.md §5 documents.

Time-based behaviour runs on a :class:`ManualClock`: the test advances it and calls
``step()``, so nothing waits for real seconds to pass. Where a test needs the server to have
done something, it waits for the proof (a pong, a log entry), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from pipeline.emulator.clock import ManualClock
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import (
    DropSocket,
    ExpireChannel,
    MalformedFrames,
    ResumeHeartbeats,
    RevokeToken,
    SendSocketClosing,
    StopHeartbeats,
)
from pipeline.emulator.thread import EmulatorThread
from tests.conftest import seconds
from tests.polling import until

pytestmark = pytest.mark.integration

CHANNELS = "/api/v2/notifications/channels"


class Org:
    """A logged-in REST client of one emulator."""

    def __init__(self, emulator: EmulatorThread, http: httpx.AsyncClient) -> None:
        self.emulator = emulator
        self.http = http
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        answer = await self.http.post(
            "/oauth/token",
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        )
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def channel(self, topics: list[str] | None = None) -> dict[str, Any]:
        answer = await self.http.post(CHANNELS, headers=self.headers)
        answer.raise_for_status()
        channel: dict[str, Any] = answer.json()
        if topics:
            put = await self.subscribe(channel["id"], topics)
            put.raise_for_status()
        return channel

    async def subscribe(self, channel_id: str, topics: list[str]) -> httpx.Response:
        return await self.http.put(
            f"{CHANNELS}/{channel_id}/subscriptions",
            headers=self.headers,
            json=[{"id": t} for t in topics],
        )

    async def admin(self, path: str) -> Any:
        answer = await self.http.get(f"/__emulator/{path}")
        answer.raise_for_status()
        return answer.json()

    async def head(self, channel_id: str) -> int:
        """The status of ``HEAD`` on the channel: 200 while it lives, 404 after."""
        return (await self.http.head(f"{CHANNELS}/{channel_id}", headers=self.headers)).status_code

    async def sent(self, channel_id: str, kind: str) -> int:
        """How many frames of ``kind`` the channel's sockets were sent (the admin log)."""
        log = await self.admin(f"frames?channel={channel_id}")
        return sum(1 for frame in log if frame["kind"] == kind)

    def queue_ids(self) -> list[str]:
        assert self.emulator.emulator is not None
        return [q.id for q in self.emulator.emulator.center.queues]

    def user_ids(self) -> list[str]:
        assert self.emulator.emulator is not None
        return [u.id for u in self.emulator.emulator.center.users]


@contextlib.asynccontextmanager
async def org_of(emulator: EmulatorThread) -> AsyncIterator[Org]:
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        org = Org(emulator, http)
        await org.login()
        yield org


async def next_frame(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), seconds(within)))
    return frame


async def read_until_closed(ws: ClientConnection) -> None:
    """Read frames until the server closes the socket (raises ConnectionClosed)."""
    while True:
        await next_frame(ws)


async def frames_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], within: float = 5.0
) -> list[dict[str, Any]]:
    """Collect frames until one satisfies ``done`` (included)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds(within)):
        while True:
            seen.append(orjson.loads(await ws.recv()))
            if done(seen[-1]):
                return seen


async def served(ws: ClientConnection) -> None:
    """Wait until the server serves this socket: a ping gets its pong.

    The server registers a socket before it reads from it, so after the pong a fault, a
    channel's end or ``step()`` reaches this socket.
    """
    await ws.send('{"message": "ping"}')
    await frames_until(ws, lambda f: f["eventBody"] == {"message": "pong"})


async def step(emulator: EmulatorThread) -> None:
    """Do the emulator's and every socket's tick work now (off this loop: it blocks)."""
    await asyncio.to_thread(emulator.step)


def is_heartbeat(frame: dict[str, Any]) -> bool:
    return frame == {
        "topicName": "channel.metadata",
        "version": "2",
        "eventBody": {"message": "WebSocket Heartbeat"},
    }


async def test_heartbeats_arrive_at_the_configured_interval(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, heartbeat_s=30.0)
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            for beat in range(1, 4):
                clock.advance(29.5)
                await step(emulator)
                assert await org.sent(channel["id"], "heartbeat") == beat - 1
                clock.advance(0.5)
                await step(emulator)
                assert is_heartbeat(await next_frame(ws))
                assert await org.sent(channel["id"], "heartbeat") == beat


async def test_ping_gets_pong_on_channel_metadata(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await ws.send('{"message": "ping"}')
            frame = await next_frame(ws)
    assert frame["topicName"] == "channel.metadata"
    assert frame["eventBody"] == {"message": "pong"}


@pytest.mark.parametrize(
    ("configured", "named"),
    [(60.0, None), (1.0, 60.0)],
    ids=["delay-from-config", "delay-from-fault"],
)
async def test_socket_closing_is_announced_then_the_socket_closes_after_the_delay(
    emulator_factory: Callable[..., EmulatorThread], configured: float, named: float | None
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, socket_closing_delay_s=configured)
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            emulator.inject(SendSocketClosing(channel["id"], close_after=named))
            await step(emulator)
            assert (await next_frame(ws))["topicName"] == "v2.system.socket_closing"
            clock.advance(59.5)
            await step(emulator)
            await served(ws)  # still open a moment before the delay is up
            clock.advance(0.5)
            await step(emulator)
            with pytest.raises(websockets.ConnectionClosedOK):
                await next_frame(ws)
            assert ws.close_code == 1001
        # The same connectUri still works: socket_closing does not end the channel.
        async with websockets.connect(channel["connectUri"]) as again:
            await served(again)


async def test_a_second_socket_kicks_the_first(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as first:
            await served(first)
            async with websockets.connect(channel["connectUri"]) as second:
                with pytest.raises(websockets.ConnectionClosed):
                    await next_frame(first)
                await second.send('{"message": "ping"}')
                assert (await next_frame(second))["eventBody"] == {"message": "pong"}


async def test_the_second_socket_carries_on_with_the_first_ones_feed(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    assert emulator.emulator is not None
    hub = emulator.emulator.sockets
    async with org_of(emulator) as org:
        channel = await org.channel([f"v2.analytics.queues.{org.queue_ids()[0]}.observations"])
        async with websockets.connect(channel["connectUri"]) as first:
            await served(first)
            first_session = hub.get(channel["id"])
            assert first_session is not None
            async with websockets.connect(channel["connectUri"]) as second:
                await served(second)
                second_session = hub.get(channel["id"])
                assert second_session is not None
                assert second_session is not first_session
                assert second_session.feed is first_session.feed  # nothing re-baselined
                # The kicked socket sends no more (stepped on the emulator's own loop).
                assert await asyncio.to_thread(emulator.call, first_session.step())


async def test_the_21st_channel_evicts_the_oldest_and_tells_its_socket(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock)
    async with org_of(emulator) as org, contextlib.AsyncExitStack() as stack:
        channels = [await org.channel() for _ in range(20)]
        sockets = []
        for channel in channels:  # every channel has a live socket: the oldest-used goes
            clock.advance(1.0)  # each connect is a later use than the one before
            ws = await stack.enter_async_context(websockets.connect(channel["connectUri"]))
            await served(ws)
            sockets.append(ws)
        newest = await org.channel()
        frame = await next_frame(sockets[0])
        oldest = channels[0]["id"]
        assert frame["topicName"] == f"v2.system.no_longer_subscribed.{oldest}"
        assert frame["eventBody"]["channelId"] == oldest
        with pytest.raises(websockets.ConnectionClosed):
            await next_frame(sockets[0])
        head = await org.http.head(f"{CHANNELS}/{oldest}", headers=org.headers)
        assert head.status_code == 404
        head = await org.http.head(f"{CHANNELS}/{newest['id']}", headers=org.headers)
        assert head.status_code == 200


async def test_a_channel_holds_at_most_1000_topics(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(queues=10, agents=400)
    async with org_of(emulator) as org:
        users = org.user_ids()
        topics = [
            f"v2.users.{u}.{kind}"
            for u in users
            for kind in ("presence", "routingStatus", "activity")
        ]
        channel = await org.channel(topics[:1000])
        over = await org.http.post(
            f"{CHANNELS}/{channel['id']}/subscriptions",
            headers=org.headers,
            json=[{"id": topics[1000]}],
        )
        assert over.status_code == 400
        assert over.json()["code"] == "notification.subscription.too.many.subscriptions"
        listed = await org.http.get(
            f"{CHANNELS}/{channel['id']}/subscriptions", headers=org.headers
        )
        assert len(listed.json()["entities"]) == 1000


async def test_compound_topics_expand(emulator_factory: Callable[..., EmulatorThread]) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        user = org.user_ids()[0]
        channel = await org.channel([f"v2.users.{user}?presence&routingStatus"])
        listed = await org.http.get(
            f"{CHANNELS}/{channel['id']}/subscriptions", headers=org.headers
        )
        assert {t["id"] for t in listed.json()["entities"]} == {
            f"v2.users.{user}.presence",
            f"v2.users.{user}.routingStatus",
        }


async def test_revoked_token_ends_its_channels_with_a_system_message(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        channel = await org.channel()
        token_id = (await org.admin("state"))["tokens"][0]["id"]
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            emulator.inject(RevokeToken(token_id))
            frame = await next_frame(ws)
            assert frame["topicName"] == f"v2.system.token_revoked.{channel['id']}"
            with pytest.raises(websockets.ConnectionClosed):
                await next_frame(ws)
        answer = await org.http.get(CHANNELS, headers=org.headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "bad.credentials"


async def test_a_channel_ends_when_the_token_that_created_it_expires(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, token_lifetime_s=600)  # §5.7: the default is on
    async with org_of(emulator) as org:
        channel = await org.channel()
        clock.advance(300.0)
        await org.login()  # a second token: the channel still belongs to the first
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            clock.advance(299.0)
            await step(emulator)
            await served(ws)  # alive a second before the first token expires
            clock.advance(1.0)
            await step(emulator)
            seen = await frames_until(ws, lambda f: f["topicName"].startswith("v2.system."))
            frame = seen[-1]
            assert frame["topicName"] == f"v2.system.token_revoked.{channel['id']}"
            assert "reason" not in frame["eventBody"]  # an expiry, not a revocation
            with pytest.raises(websockets.ConnectionClosed):
                await read_until_closed(ws)
        assert await org.head(channel["id"]) == 404


async def test_dropped_socket_closes_without_a_close_frame(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            emulator.inject(DropSocket(channel["id"]))
            with pytest.raises(websockets.ConnectionClosedError):
                await next_frame(ws)
            assert ws.close_code == 1006


async def test_heartbeats_can_be_stopped_and_resumed(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, heartbeat_s=30.0)
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            emulator.inject(StopHeartbeats(channel["id"]))
            for _ in range(3):
                clock.advance(30.0)
                await step(emulator)
            assert await org.sent(channel["id"], "heartbeat") == 0
            emulator.inject(ResumeHeartbeats(channel["id"]))
            clock.advance(30.0)
            await step(emulator)
            assert is_heartbeat(await next_frame(ws))
            assert await org.sent(channel["id"], "heartbeat") == 1


async def test_expired_channel_answers_404_and_closes_its_socket(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with org_of(emulator) as org:
        channel = await org.channel()
        async with websockets.connect(channel["connectUri"]) as ws:
            await served(ws)
            emulator.inject(ExpireChannel(channel["id"]))
            with pytest.raises(websockets.ConnectionClosed):
                await read_until_closed(ws)
        head = await org.http.head(f"{CHANNELS}/{channel['id']}", headers=org.headers)
        assert head.status_code == 404
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(channel["connectUri"]):
                pass


async def test_every_frame_sent_is_in_the_admin_log(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(speed=120.0, queues=4, agents=40, frame_interval_s=0.2)
    async with org_of(emulator) as org:
        topics = [f"v2.analytics.queues.{q}.observations" for q in org.queue_ids()]
        channel = await org.channel(topics)
        received: list[dict[str, Any]] = []
        async with websockets.connect(channel["connectUri"]) as ws:
            received += await frames_until(ws, lambda f: f["topicName"] in topics, within=10)
            emulator.inject(MalformedFrames(channel["id"], 1))
            unparseable = 0
            async with asyncio.timeout(seconds(10)):
                while not unparseable:
                    raw = await ws.recv()
                    try:
                        received.append(orjson.loads(raw))
                    except orjson.JSONDecodeError:
                        unparseable += 1
            received += await frames_until(ws, lambda f: f["topicName"] in topics, within=10)
        got = {f["metadata"]["CorrelationId"] for f in received if "metadata" in f}
        events: list[dict[str, Any]] = []

        async def logged_all_received() -> bool:
            # The server logs a frame just after sending it, so the last ones may lag.
            log = await org.admin(f"frames?channel={channel['id']}")
            events[:] = [f for f in log if f["kind"] == "event"]
            return got <= {f["correlation_id"] for f in events if f["intact"]}

        await until(
            logged_all_received, seconds(5), message="the server logged every frame we received"
        )
    broken = [f for f in events if not f["intact"]]
    assert len(broken) == 1
    assert broken[0]["correlation_id"] not in got
    assert all(f["topic"] in topics for f in events)


async def test_rate_limit_answers_429_with_retry_after(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(rate_limit=3)
    async with org_of(emulator) as org:
        answers = [await org.http.get(CHANNELS, headers=org.headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["inin-ratelimit-allowed"] == "3"
    assert answers[1].headers["inin-ratelimit-count"] == "2"
    limited = answers[3]
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json()["code"] == "too.many.requests.retry.after"
    assert limited.json()["contextId"] == limited.headers["ININ-Correlation-Id"]


async def test_rate_limit_window_reopens_when_it_closes(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, rate_limit=3, rate_window_s=60)
    async with org_of(emulator) as org:
        answers = [await org.http.get(CHANNELS, headers=org.headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].headers["Retry-After"] == "60"
        clock.advance(59.0)
        limited = await org.http.get(CHANNELS, headers=org.headers)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
        clock.advance(1.0)
        reopened = await org.http.get(CHANNELS, headers=org.headers)
    assert reopened.status_code == 200
    assert reopened.headers["inin-ratelimit-count"] == "1"
    assert reopened.headers["inin-ratelimit-reset"] == "60"


async def test_a_token_expires_after_its_lifetime(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, token_lifetime_s=3600)
    async with org_of(emulator) as org:
        clock.advance(3599.5)
        assert (await org.http.get(CHANNELS, headers=org.headers)).status_code == 200
        clock.advance(0.5)
        expired = await org.http.get(CHANNELS, headers=org.headers)
        assert expired.status_code == 401
        assert expired.json()["code"] == "bad.credentials"
        await org.login()
        assert (await org.http.get(CHANNELS, headers=org.headers)).status_code == 200


async def test_a_channel_expires_after_24_hours_unless_subscribing_extends_it(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    clock = ManualClock()
    # 36 simulated hours: keep small; channels must outlive their first token (86399 s) here.
    emulator = emulator_factory(clock=clock, queues=1, agents=2, channels_die_with_token=False)
    hour = 3600.0
    async with org_of(emulator) as org, contextlib.AsyncExitStack() as stack:
        plain, extended = await org.channel(), await org.channel()
        sockets = {}
        for channel in (plain, extended):
            ws = await stack.enter_async_context(websockets.connect(channel["connectUri"]))
            await served(ws)
            sockets[channel["id"]] = ws
        clock.advance(12 * hour)
        topic = f"v2.analytics.queues.{org.queue_ids()[0]}.observations"
        (await org.subscribe(extended["id"], [topic])).raise_for_status()  # now + 24 h

        clock.advance(12 * hour)  # 24 h: the first channel expires, its socket closes
        await step(emulator)
        with pytest.raises(websockets.ConnectionClosed):
            await read_until_closed(sockets[plain["id"]])
        await org.login()  # the first token (lifetime 86399 s) has expired too
        assert await org.head(plain["id"]) == 404
        assert await org.head(extended["id"]) == 200

        clock.advance(12 * hour)  # 36 h: the subscribed one expires too
        await step(emulator)
        with pytest.raises(websockets.ConnectionClosed):
            await read_until_closed(sockets[extended["id"]])
        assert await org.head(extended["id"]) == 404
