"""Our token provider and REST client against the emulator: single flight, 429s, 5xx, 401s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import RevokeToken
from pipeline.emulator.thread import EmulatorThread
from pipeline.errors import ApiError, AuthError, RateLimitedError
from pipeline.genesys.auth import TokenObserver, TokenProvider
from pipeline.genesys.rest import GenesysRest, RestObserver
from tests.conftest import seconds
from tests.polling import until

pytestmark = pytest.mark.integration


class Recorder(TokenObserver, RestObserver):
    """Remembers every hook call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_token_refreshed(self, expires_in: float) -> None:
        self.events.append(("token", expires_in))

    def on_login_throttled(self, wait_s: float) -> None:
        self.events.append(("login_throttled", wait_s))

    def on_throttled(self, path: str, wait_s: float) -> None:
        self.events.append(("throttled", wait_s))

    def on_retry(self, path: str, status: int | None, attempt: int, wait_s: float) -> None:
        self.events.append(("retry", status))


class Client:
    def __init__(self, emulator: EmulatorThread, http: httpx.AsyncClient, secret: str) -> None:
        self.emulator = emulator
        self.recorder = Recorder()
        self.tokens = TokenProvider(
            http, emulator.base_url, DEMO_CLIENT_ID, SecretStr(secret), observer=self.recorder
        )
        self.rest = GenesysRest(http, self.tokens, observer=self.recorder)

    def requests(self, path: str) -> list[dict[str, object]]:
        assert self.emulator.emulator is not None
        return [
            {"path": r.path, "status": r.status}
            for r in self.emulator.emulator.requests
            if r.path == path
        ]

    def plan_failures(self, count: int, status: int, retry_after: int | None, prefix: str) -> None:
        assert self.emulator.emulator is not None
        self.emulator.emulator.state.faults.fail_requests(count, status, retry_after, prefix)


@pytest.fixture
async def client(emulator_factory: Callable[..., EmulatorThread]) -> AsyncIterator[Client]:
    emulator = emulator_factory(queues=4, agents=20)
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        yield Client(emulator, http, DEMO_CLIENT_SECRET)


async def test_many_callers_share_one_login(client: Client) -> None:
    tokens = await asyncio.gather(*(client.tokens.token() for _ in range(50)))
    assert len(set(tokens)) == 1
    assert len(client.requests("/oauth/token")) == 1
    assert client.tokens.refreshes == 1


async def test_forced_refresh_is_single_flight_too(client: Client) -> None:
    first = await client.tokens.token()
    again = await asyncio.gather(*(client.tokens.token(force=True) for _ in range(20)))
    assert first not in again
    assert len(client.requests("/oauth/token")) <= 2 + 1  # at most one more per wave


async def test_a_token_that_must_outlive_a_moment_is_refreshed_once_for_everyone(
    client: Client,
) -> None:
    first = await client.tokens.token()
    expires_at = client.tokens.expires_at
    assert expires_at is not None
    assert await client.tokens.token(valid_until=expires_at - 1) == first  # outlives it
    # Channels made with the first token roll over together: one login serves them all.
    again = await asyncio.gather(*(client.tokens.token(valid_until=expires_at) for _ in range(10)))
    [renewed] = set(again)
    assert renewed != first
    later = client.tokens.expires_at
    assert later is not None
    assert later > expires_at
    assert len(client.requests("/oauth/token")) == 2


async def test_wrong_secret_is_a_final_auth_error(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory()
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        provider = TokenProvider(http, emulator.base_url, DEMO_CLIENT_ID, SecretStr("canary-wrong"))
        with pytest.raises(AuthError) as info:
            await provider.token()
    assert info.value.status == 401
    assert info.value.error == "invalid_client"
    assert "canary-wrong" not in str(info.value)


async def test_login_obeys_retry_after(client: Client) -> None:
    client.plan_failures(1, 429, 1, "/oauth")
    started = time.monotonic()
    assert await client.tokens.token()
    assert time.monotonic() - started >= 0.9
    assert ("login_throttled", 1.0) in client.recorder.events


async def test_rest_waits_out_a_429_storm(client: Client) -> None:
    client.plan_failures(3, 429, 1, "/api/v2/routing")
    started = time.monotonic()
    queues = await client.rest.queues()
    assert len(queues) == 4
    assert time.monotonic() - started >= 2.5
    assert [e for e in client.recorder.events if e[0] == "throttled"] == [("throttled", 1.0)] * 3


async def test_a_429_pauses_other_callers_too(client: Client) -> None:
    await client.tokens.token()
    client.plan_failures(1, 429, 1, "/api/v2/routing/queues")
    first = asyncio.create_task(client.rest.queues())
    await until(
        lambda: ("throttled", 1.0) in client.recorder.events,
        seconds(5),
        message="the first caller got its 429 (Retry-After: 1)",
        poll_s=0.005,
    )
    throttled_at = time.monotonic()
    await client.rest.wrapup_codes()  # another caller, after the 429: must wait too
    assert time.monotonic() - throttled_at >= 0.9
    assert len(await first) == 4


async def test_rest_retries_server_errors(client: Client) -> None:
    client.plan_failures(2, 503, None, "/api/v2/routing")
    assert await client.rest.wrapup_codes()
    assert [e for e in client.recorder.events if e[0] == "retry"] == [("retry", 503)] * 2


async def test_rest_refreshes_a_revoked_token_once(client: Client) -> None:
    await client.tokens.token()
    assert client.emulator.emulator is not None
    token_id = client.emulator.emulator.state.tokens.token_ids()[0]
    client.emulator.inject(RevokeToken(token_id))
    assert await client.rest.queues()
    assert client.tokens.refreshes == 2


async def test_rest_raises_api_error_with_code_and_correlation_id(client: Client) -> None:
    channel = await client.rest.create_channel()
    with pytest.raises(ApiError) as info:
        await client.rest.put_subscriptions(channel["id"], ["v2.analytics.queues.summary"])
    assert info.value.status == 400
    assert info.value.code == "notification.invalid.topic"
    assert info.value.correlation_id
    assert not info.value.retriable


async def test_rest_gives_up_on_endless_429(client: Client) -> None:
    client.rest._max_attempts = 2
    client.plan_failures(5, 429, 0, "/api/v2/routing")
    with pytest.raises(RateLimitedError):
        await client.rest.queues()


async def test_channel_calls(client: Client) -> None:
    channel = await client.rest.create_channel()
    assert await client.rest.channel_exists(channel["id"])
    assert not await client.rest.channel_exists("streaming-0-nope")
    queue_id = (await client.rest.queues())[0]["id"]
    listing = await client.rest.put_subscriptions(
        channel["id"], [f"v2.analytics.queues.{queue_id}.observations"]
    )
    assert [t["state"] for t in listing["entities"]] == ["Permitted"]
    members = await client.rest.queue_members(queue_id)
    assert members
    assert all(m["id"] for m in members)
    topics = await client.rest.available_topics(["schema"])
    assert any(t["id"] == "v2.analytics.queues.{id}.observations" for t in topics)


async def test_each_family_learns_its_own_budget_from_its_own_headers(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(queues=2, agents=4, family_rate_limits="analytics=1/60")
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        client = Client(emulator, http, DEMO_CLIENT_SECRET)
        path = "/api/v2/analytics/queues/observations/query"
        body = {"filter": {"type": "or", "predicates": []}, "metrics": ["oWaiting"]}
        await client.rest.request("POST", path, json=body)  # the family's 1 of 1: spent
        now = time.time()
        assert 50 < client.rest.budgets.for_path(path).delay(now) <= 60
        started = time.monotonic()
        assert (await client.rest.create_channel())["id"]  # notifications: not held up
        assert time.monotonic() - started < 5


async def test_rest_turns_a_garbage_2xx_into_a_clear_error(client: Client) -> None:
    async with httpx.AsyncClient(base_url=client.emulator.base_url) as admin:
        planned = await admin.post(
            "/__emulator/faults",
            json={"type": "rest_garbage", "count": 2, "path_prefix": "/api/v2/notifications"},
        )
    assert planned.status_code == 200
    with pytest.raises(ApiError, match="not JSON") as info:
        await client.rest.create_channel(attempts=1)
    assert (info.value.status, info.value.code) == (200, "response.malformed")
    await client.rest.create_channel()  # one more garbage answer, retried, then a channel
    assert [r["status"] for r in client.requests("/api/v2/notifications/channels")] == [200] * 3
