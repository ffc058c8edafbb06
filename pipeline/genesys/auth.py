"""Client-credentials tokens for every Genesys caller of one OAuth client.

:class:`TokenProvider` caches the token, refreshes it once 80 % of its life has passed, and
makes sure only one refresh runs however many callers ask at once (single flight: an
``asyncio.Lock`` with a re-check inside). Login answers follow the one table of
:mod:`pipeline.core.http_policy`: a 429 is obeyed (``Retry-After``, capped), 408, 5xx and
transport errors are retried with backoff, up to ``max_attempts`` per refresh (``attempts=1``
for a caller that counts attempts itself: the channel session); a refused credential is final
(:class:`~pipeline.errors.AuthError`).

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

from pipeline.core.genesys.token import AccessToken, parse_token_answer
from pipeline.core.http_policy import (
    Backoff,
    Failure,
    ResponseAction,
    decide,
    is_retriable,
    parse_retry_after,
)
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
        backoff: waits between login attempts, and the longest ``Retry-After`` obeyed.
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
        backoff: Backoff | None = None,
    ) -> None:
        self._http = http
        self._url = login_url.rstrip("/") + "/oauth/token"
        self._auth = httpx.BasicAuth(client_id, client_secret.get_secret_value())
        self._max_attempts = max_attempts
        self._clock = clock
        self._observer = observer or TokenObserver()
        self._backoff = backoff or Backoff()
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def expires_at(self) -> float | None:
        """When the current token expires (epoch seconds on ``clock``; None before the first).

        A lower bound: measured from when the login was sent.
        """
        return None if self._token is None else self._token.expires_at

    async def token(
        self,
        *,
        force: bool = False,
        attempts: int | None = None,
        valid_until: float | None = None,
    ) -> str:
        """A valid bearer token.

        Args:
            force: replace the current token (the API refused it).
            attempts: login attempts if a refresh is due (default ``max_attempts``).
            valid_until: the token must still be valid after this moment (epoch seconds);
                a cached one that expires sooner is replaced. A channel rolling over to a new
                token asks this way (§5.7), so channels made with one token share one login.

        Returns:
            The token value.

        Raises:
            AuthError: the login service refused the credentials, or stayed unavailable.
            RateLimitedError: the login service still throttled the last attempt.
            ValueError: ``attempts`` < 1.
        """
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be ≥ 1, got {attempts}")
        stale = self._token
        if not force and (value := self._usable(stale, valid_until)) is not None:
            return value
        async with self._lock:
            current = self._token
            # Another caller refreshed while we waited for the lock: use its token.
            if current is not stale and (value := self._usable(current, valid_until)) is not None:
                return value
            self._token = await self._login(self._max_attempts if attempts is None else attempts)
            self.refreshes += 1
            expires_in = self._token.expires_at - self._token.issued_at
            log.info("token refreshed (expires in %.0fs)", expires_in)
            self._observer.on_token_refreshed(expires_in)
            return self._token.value

    def _usable(self, token: AccessToken | None, valid_until: float | None) -> str | None:
        """The token's value if it may be handed out as it is, else None."""
        if token is None or not token.is_fresh(self._clock()):
            return None
        if valid_until is not None and token.expires_at <= valid_until:
            return None
        return token.value

    async def _login(self, attempts: int) -> AccessToken:
        for attempt in range(1, attempts + 1):
            sent_at = self._clock()
            answer: httpx.Response | None = None
            retry_after: float | None = None
            try:
                answer = await self._http.post(
                    self._url, auth=self._auth, data={"grant_type": "client_credentials"}
                )
            except httpx.TransportError as exc:
                log.warning(
                    "login failed in transport (%s); attempt %d", type(exc).__name__, attempt
                )
            else:
                header = answer.headers.get("Retry-After")
                retry_after = parse_retry_after(header, sent_at, self._backoff.max_retry_after_s)
            status = None if answer is None else answer.status_code
            if answer is not None and not is_retriable(status):
                # A token, or the OAuth error of a refused credential (AuthError).
                return parse_token_answer(answer.status_code, answer.content, sent_at)
            decision = decide(status, retry_after, attempt, attempts)
            if decision.action is not ResponseAction.RETRY:
                if decision.failure is Failure.THROTTLED:
                    raise RateLimitedError(self._url, decision.wait_s)
                raise AuthError(status or 0, "login_unavailable", decision.message)
            wait = self._backoff.delay(attempt - 1, decision.wait_s, random.random)
            if decision.failure is Failure.THROTTLED:
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
