"""The REST and login shells follow the shared HTTP table for every status (httpx.MockTransport:
no sockets), and count attempts in one place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from pipeline.core.http_policy import Backoff, is_retriable
from pipeline.errors import ApiError, AuthError, RateLimitedError
from pipeline.genesys.auth import TokenObserver, TokenProvider
from pipeline.genesys.rest import GenesysRest, RestObserver

API = "https://api.example.test"
LOGIN = "https://login.example.test"
NO_WAIT = Backoff(base_s=0.0, cap_s=0.0)
TOKEN = {"access_token": "canary-token", "token_type": "bearer", "expires_in": 3600}


class Server:
    """Answers every API call with ``status`` (None: refuses the connection), logins with 200."""

    def __init__(self, status: int | None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.calls = 0
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.logins += 1
            return httpx.Response(200, json=TOKEN)
        self.calls += 1
        if self.status is None:
            raise httpx.ConnectError("refused", request=request)
        body = {"code": "some.code", "message": "a message"} if self.status >= 400 else {}
        return httpx.Response(self.status, json=body, headers=self.headers)


class Login:
    """A login service that answers every request with ``status`` (None: refuses)."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.logins += 1
        if self.status is None:
            raise httpx.ConnectError("refused", request=request)
        if 200 <= self.status < 300:
            return httpx.Response(self.status, json=TOKEN)
        return httpx.Response(self.status, json={"error": "some_error"})


@pytest.fixture
async def rest_for() -> AsyncIterator[Callable[..., GenesysRest]]:
    clients: list[httpx.AsyncClient] = []

    def make(
        server: Server, observer: RestObserver | None = None, backoff: Backoff = NO_WAIT
    ) -> GenesysRest:
        http = httpx.AsyncClient(base_url=API, transport=httpx.MockTransport(server))
        clients.append(http)
        tokens = TokenProvider(http, LOGIN, "id", SecretStr("canary-secret"), backoff=NO_WAIT)
        return GenesysRest(http, tokens, max_attempts=3, observer=observer, backoff=backoff)

    yield make
    for http in clients:
        await http.aclose()


@pytest.mark.parametrize("status", [None, *range(100, 600)])
async def test_rest_follows_the_table_for_every_status(
    status: int | None, rest_for: Callable[[Server], GenesysRest]
) -> None:
    server = Server(status)
    rest = rest_for(server)
    if status is not None and 200 <= status < 300:
        await rest.request("GET", "/api/v2/thing")
        assert server.calls == 1
        return
    with pytest.raises((ApiError, RateLimitedError)) as info:
        await rest.request("GET", "/api/v2/thing")
    error = info.value
    assert error.retriable == is_retriable(status)
    if status == 401:  # BearerAuth: one forced refresh and one re-send, not a retry
        assert (server.calls, server.logins) == (2, 2)
    else:
        assert server.calls == (3 if is_retriable(status) else 1)
    if status == 429:
        assert isinstance(error, RateLimitedError)
    else:
        assert isinstance(error, ApiError)
        assert error.status == (status or 0)


@pytest.mark.parametrize("status", [None, 408, 429, 500, 503])
async def test_a_caller_that_counts_attempts_itself_gets_exactly_one_request(
    status: int | None, rest_for: Callable[[Server], GenesysRest]
) -> None:
    server = Server(status)
    rest = rest_for(server)
    with pytest.raises((ApiError, RateLimitedError)):
        await rest.create_channel(attempts=1)
    with pytest.raises((ApiError, RateLimitedError)):
        await rest.put_subscriptions("ch", ["t"], attempts=1)
    with pytest.raises((ApiError, RateLimitedError)):
        await rest.channel_exists("ch", attempts=1)
    assert server.calls == 3


class Throttles(RestObserver):
    def __init__(self) -> None:
        self.waits: list[float] = []

    def on_throttled(self, path: str, wait_s: float) -> None:
        self.waits.append(wait_s)


async def test_a_huge_retry_after_is_capped_and_pauses_its_family_even_without_a_retry(
    rest_for: Callable[..., GenesysRest],
) -> None:
    server = Server(429, {"Retry-After": "86400"})
    observer = Throttles()
    backoff = Backoff(base_s=0.0, cap_s=0.0, max_retry_after_s=5.0)
    rest = rest_for(server, observer=observer, backoff=backoff)
    with pytest.raises(RateLimitedError) as info:
        await rest.request("GET", "/api/v2/thing", attempts=1)
    assert info.value.retry_after == 5.0
    assert observer.waits == [5.0]
    assert 4.0 < rest.budgets.for_path("/api/v2/thing").delay(time.time()) <= 5.0
    assert rest.budgets.for_path("/api/v2/notifications/channels").delay(time.time()) == 0.0


class TokenBudgetServer(Server):
    """429s naming the token's own budget in ``ErrorBody.limit`` (§4.1, §4.5)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return super().__call__(request)
        limit = {"key": "client.credentials.token.rate.per.minute", "namespace": "platform.api"}
        body = {"code": "too.many.requests.retry.after", "limit": limit}
        return httpx.Response(429, json=body, headers={"Retry-After": "3"})


async def test_a_429_for_the_tokens_own_budget_pauses_every_family(
    rest_for: Callable[..., GenesysRest],
) -> None:
    backoff = Backoff(base_s=0.0, cap_s=0.0, max_retry_after_s=5.0)
    rest = rest_for(TokenBudgetServer(429), backoff=backoff)
    with pytest.raises(RateLimitedError):
        await rest.request("GET", "/api/v2/analytics/x", attempts=1)
    for path in ("/api/v2/notifications/channels", "/api/v2/routing/queues", "/api/v2/x"):
        assert 2.0 < rest.budgets.for_path(path).delay(time.time()) <= 3.0


async def test_an_api_error_carries_the_retry_after_of_its_answer(
    rest_for: Callable[[Server], GenesysRest],
) -> None:
    rest = rest_for(Server(503, {"Retry-After": "7"}))
    with pytest.raises(ApiError) as info:
        await rest.request("GET", "/api/v2/thing", attempts=1)
    assert (info.value.status, info.value.retry_after, info.value.retriable) == (503, 7.0, True)


async def test_attempts_must_be_positive(rest_for: Callable[[Server], GenesysRest]) -> None:
    with pytest.raises(ValueError, match="attempts must be ≥ 1"):
        await rest_for(Server(200)).request("GET", "/x", attempts=0)


@pytest.mark.parametrize("status", [None, *range(100, 600)])
async def test_login_follows_the_table_for_every_status(status: int | None) -> None:
    login = Login(status)
    async with httpx.AsyncClient(transport=httpx.MockTransport(login)) as http:
        tokens = TokenProvider(
            http, LOGIN, "id", SecretStr("canary-secret"), max_attempts=3, backoff=NO_WAIT
        )
        if status is not None and 200 <= status < 300:
            assert await tokens.token() == "canary-token"
            assert login.logins == 1
            return
        with pytest.raises((AuthError, RateLimitedError)) as info:
            await tokens.token()
    assert login.logins == (3 if is_retriable(status) else 1)
    assert "canary-secret" not in str(info.value)
    if status == 429:
        assert isinstance(info.value, RateLimitedError)
    else:
        assert isinstance(info.value, AuthError)
        assert info.value.status == (status or 0)
        assert info.value.error == ("login_unavailable" if is_retriable(status) else "some_error")


async def test_a_session_login_is_one_request() -> None:
    login = Login(503)
    async with httpx.AsyncClient(transport=httpx.MockTransport(login)) as http:
        tokens = TokenProvider(http, LOGIN, "id", SecretStr("s"), max_attempts=6, backoff=NO_WAIT)
        with pytest.raises(AuthError, match="gave up after 1 attempt"):
            await tokens.token(force=True, attempts=1)
    assert login.logins == 1


class Garbage(Server):
    """Answers every API call with 200 and ``body`` (not what the API promises)."""

    def __init__(self, body: bytes) -> None:
        super().__init__(200)
        self.body = body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return super().__call__(request)
        self.calls += 1
        return httpx.Response(200, content=self.body)


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"id": "ch"', b"\xff\xfe"])
async def test_a_2xx_that_is_not_json_is_retried_then_a_clear_error(
    body: bytes, rest_for: Callable[[Server], GenesysRest]
) -> None:
    server = Garbage(body)
    rest = rest_for(server)
    with pytest.raises(ApiError, match="not JSON") as info:
        await rest.request("GET", "/api/v2/thing")
    assert (info.value.status, info.value.code) == (200, "response.malformed")
    assert server.calls == 3  # retried like a server fault, up to the attempts allowed


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"id": "ch"}', b'{"id": 1, "connectUri": 2}'])
async def test_a_channel_answer_without_its_fields_is_an_error_the_session_retries(
    body: bytes, rest_for: Callable[[Server], GenesysRest]
) -> None:
    rest = rest_for(Garbage(body))
    with pytest.raises(ApiError, match="id and connectUri") as info:
        await rest.create_channel(attempts=1)
    assert (info.value.status, info.value.code) == (200, "response.malformed")


async def test_a_login_429_with_a_huge_retry_after_waits_the_cap_only() -> None:
    class Throttled:
        def __call__(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(429, headers={"Retry-After": "86400"}, json={})

    waits: list[float] = []

    class Observer(TokenObserver):
        def on_login_throttled(self, wait_s: float) -> None:
            waits.append(wait_s)

    async with httpx.AsyncClient(transport=httpx.MockTransport(Throttled())) as http:
        backoff = Backoff(base_s=0.0, cap_s=0.0, max_retry_after_s=0.01)
        tokens = TokenProvider(
            http, LOGIN, "id", SecretStr("s"), backoff=backoff, observer=Observer()
        )
        with pytest.raises(RateLimitedError) as info:
            await asyncio.wait_for(tokens.token(attempts=3), 5)
    assert waits == [0.01, 0.01]
    assert info.value.retry_after == 0.01
