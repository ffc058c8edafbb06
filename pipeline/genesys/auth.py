"""Client-credentials tokens for every Genesys caller of one OAuth client.

:class:`TokenProvider` caches the token, refreshes it once 80 % of its life has passed, and
makes sure only one refresh runs however many callers ask at once (single flight: an
``asyncio.Lock`` with a re-check inside). A 429 from the login service is obeyed
(``Retry-After``); 5xx and transport errors are retried with backoff; a refused credential is
final (:class:`~pipeline.errors.AuthError`).

:class:`BearerAuth` plugs the provider into httpx: it adds the ``Authorization`` header and, on
a 401, forces one refresh and sends the request again (httpx's ``auth_flow`` generator shape).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable

import httpx
from pydantic import SecretStr

from pipeline.core.backoff import full_jitter
from pipeline.core.genesys.token import AccessToken, parse_token_answer
from pipeline.core.http_policy import Outcome, decide, parse_retry_after
from pipeline.errors import AuthError, RateLimitedError

__all__ = ["BearerAuth", "TokenObserver", "TokenProvider"]

log = logging.getLogger(__name__)


class TokenObserver:
    """Hooks for token events; the default does nothing (override what you need)."""

    def on_token_refreshed(self, expires_in: float) -> None:
        """A new token was obtained."""

    def on_login_throttled(self, wait_s: float) -> None:
        """The login service answered 429."""


class TokenProvider:
    """Cached, early-refreshed, single-flight client-credentials tokens.

    Args:
        http: the client used for the login call (its base URL is not used).
        login_url: the login service base, e.g. ``https://login.mypurecloud.ie``.
        client_id: the OAuth client id.
        client_secret: the OAuth client secret.
        max_attempts: login attempts per refresh before giving up.
        clock: epoch seconds (injectable for tests).
        observer: token event hooks.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        login_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        max_attempts: int = 6,
        clock: Callable[[], float] = time.time,
        observer: TokenObserver | None = None,
    ) -> None:
        self._http = http
        self._url = login_url.rstrip("/") + "/oauth/token"
        self._auth = httpx.BasicAuth(client_id, client_secret.get_secret_value())
        self._max_attempts = max_attempts
        self._clock = clock
        self._observer = observer or TokenObserver()
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def token(self, *, force: bool = False) -> str:
        """A valid bearer token; ``force`` replaces a token the API refused."""
        stale = self._token
        if not force and stale is not None and stale.is_fresh(self._clock()):
            return stale.value
        async with self._lock:
            current = self._token
            # Another caller refreshed while we waited for the lock: use its token.
            if current is not None and current is not stale and current.is_fresh(self._clock()):
                return current.value
            self._token = await self._login()
            self.refreshes += 1
            expires_in = self._token.expires_at - self._token.issued_at
            log.info("token refreshed (expires in %.0fs)", expires_in)
            self._observer.on_token_refreshed(expires_in)
            return self._token.value

    async def _login(self) -> AccessToken:
        for attempt in range(1, self._max_attempts + 1):
            sent_at = self._clock()
            status: int | None = None
            retry_after: float | None = None
            try:
                answer = await self._http.post(
                    self._url, auth=self._auth, data={"grant_type": "client_credentials"}
                )
            except httpx.TransportError as exc:
                log.warning(
                    "login failed in transport (%s); attempt %d", type(exc).__name__, attempt
                )
                status, retry_after = None, None
            else:
                status = answer.status_code
                retry_after = parse_retry_after(answer.headers.get("Retry-After"), sent_at)
                if status not in {429, 408} and status < 500:
                    return parse_token_answer(status, answer.content, sent_at)
            decision = decide(status, retry_after, attempt, self._max_attempts)
            if decision.outcome is not Outcome.RETRY:
                if status == 429:
                    raise RateLimitedError(self._url, retry_after)
                raise AuthError(status or 0, "login_unavailable", decision.reason)
            wait = (
                decision.wait_s
                if decision.wait_s is not None
                else full_jitter(attempt - 1, 0.5, 30.0, random.random)
            )
            if status == 429:
                self._observer.on_login_throttled(wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


class BearerAuth(httpx.Auth):
    """httpx auth: bearer token from a provider; one forced refresh on 401."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the current token; on 401 get a new one and send once more."""
        request.headers["Authorization"] = f"Bearer {await self._provider.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self._provider.token(force=True)}"
            yield request
