"""The Genesys Cloud Platform API over httpx: one budget, one retry policy, typed calls.

Every call goes through :meth:`GenesysRest.request`, which waits for the client's shared
:class:`~pipeline.core.genesys.budget.RequestBudget`, sends with a bearer token (:class:`BearerAuth`
refreshes it once on a 401), learns from the ``inin-ratelimit-*`` headers, and follows the
pure decision table in :mod:`pipeline.core.http_policy`: 429 waits ``Retry-After`` (pausing every
caller), 5xx/408/transport errors back off with full jitter, other 4xx raise
:class:`~pipeline.errors.ApiError` with the body's code and the correlation id.

The official SDK is synchronous and hides 429s inside urllib3 retries (reference §4.4), so the
hot and retry-sensitive paths use httpx directly; the SDK is used by the tests to prove the
emulator is faithful.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from pipeline.core.backoff import full_jitter
from pipeline.core.genesys.budget import RequestBudget
from pipeline.core.http_policy import Outcome, decide, parse_retry_after
from pipeline.errors import ApiError, RateLimitedError
from pipeline.genesys.auth import BearerAuth, TokenProvider

__all__ = ["GenesysRest", "RestObserver"]

log = logging.getLogger(__name__)

CHANNELS = "/api/v2/notifications/channels"


class RestObserver:
    """Hooks for REST events; the default does nothing (override what you need)."""

    def on_throttled(self, path: str, wait_s: float) -> None:
        """A 429: every caller waits ``wait_s``."""

    def on_retry(self, path: str, status: int | None, attempt: int, wait_s: float) -> None:
        """A retriable failure; the call is sent again after ``wait_s``."""


class GenesysRest:
    """Async client of the Platform API for one OAuth client.

    Args:
        http: an httpx client whose ``base_url`` is the API base (``https://api.<region>``).
        tokens: the client's token provider.
        budget: the client's request budget (share one per OAuth client).
        max_attempts: attempts per call before giving up.
        clock: epoch seconds.
        observer: REST event hooks.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        budget: RequestBudget | None = None,
        *,
        max_attempts: int = 6,
        clock: Callable[[], float] = time.time,
        observer: RestObserver | None = None,
    ) -> None:
        self._http = http
        self.tokens = tokens
        self._auth = BearerAuth(tokens)
        self.budget = budget or RequestBudget()
        self._max_attempts = max_attempts
        self._clock = clock
        self._observer = observer or RestObserver()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> Any:
        """Send one call with retries; returns the decoded JSON answer (None when empty).

        Raises:
            ApiError: a final error answer.
            RateLimitedError: still 429 after every attempt.
        """
        content = None if json is None else orjson.dumps(json)
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(1, self._max_attempts + 1):
            await self._wait_for_budget()
            sent_at = self._clock()
            answer: httpx.Response | None = None
            status: int | None = None
            retry_after: float | None = None
            try:
                answer = await self._http.request(
                    method, path, content=content, params=params, headers=headers, auth=self._auth
                )
            except httpx.TransportError as exc:
                log.warning("%s %s failed in transport: %s", method, path, type(exc).__name__)
            else:
                status = answer.status_code
                retry_after = parse_retry_after(answer.headers.get("Retry-After"), sent_at)
                self.budget.observe(answer.headers, self._clock())
            decision = decide(status, retry_after, attempt, self._max_attempts)
            if decision.outcome is Outcome.DONE and answer is not None:
                return orjson.loads(answer.content) if answer.content else None
            if decision.outcome is Outcome.RETRY:
                await self._before_retry(path, status, attempt, decision.wait_s)
                continue
            # FAIL; REFRESH_TOKEN cannot reach here: BearerAuth already retried the 401.
            raise self._error(path, status, retry_after, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait_for_budget(self) -> None:
        # A loop, not an Event: another caller's 429 can push the deadline while we sleep.
        while (wait := self.budget.delay(self._clock())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        self.budget.spend()

    async def _before_retry(
        self, path: str, status: int | None, attempt: int, retry_after: float | None
    ) -> None:
        if status == 429:
            wait = (
                retry_after
                if retry_after is not None
                else full_jitter(attempt - 1, 1.0, 60.0, random.random)
            )
            self.budget.throttled(wait, self._clock())
            log.warning("429 on %s: all callers wait %.1fs", path, wait)
            self._observer.on_throttled(path, wait)
            return  # the budget's pause does the waiting
        wait = (
            retry_after
            if retry_after is not None
            else full_jitter(attempt - 1, 0.5, 30.0, random.random)
        )
        self._observer.on_retry(path, status, attempt, wait)
        await asyncio.sleep(wait)

    @staticmethod
    def _error(
        path: str, status: int | None, retry_after: float | None, answer: httpx.Response | None
    ) -> Exception:
        if status == 429:
            return RateLimitedError(path, retry_after)
        if answer is None:
            return ApiError(0, "transport.error", "no answer after retries", None, path)
        try:
            body = orjson.loads(answer.content) if answer.content else {}
        except orjson.JSONDecodeError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return ApiError(
            answer.status_code,
            str(body.get("code", "")),
            str(body.get("message", answer.reason_phrase)),
            answer.headers.get("ININ-Correlation-Id"),
            path,
        )

    # ------------------------------------------------------------------ notifications (§5.1)

    async def create_channel(self) -> dict[str, Any]:
        """``POST /api/v2/notifications/channels`` → ``{"id", "connectUri", "expires"}``."""
        channel: dict[str, Any] = await self.request("POST", CHANNELS)
        return channel

    async def put_subscriptions(self, channel_id: str, topics: list[str]) -> dict[str, Any]:
        """``PUT .../subscriptions``: replace the channel's topics (extends its life)."""
        listing: dict[str, Any] = await self.request(
            "PUT", f"{CHANNELS}/{channel_id}/subscriptions", json=[{"id": t} for t in topics]
        )
        return listing

    async def channel_exists(self, channel_id: str) -> bool:
        """``HEAD .../channels/{id}``: True on 200, False on 404."""
        try:
            await self.request("HEAD", f"{CHANNELS}/{channel_id}")
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def available_topics(self, expand: list[str] | None = None) -> list[dict[str, Any]]:
        """``GET /api/v2/notifications/availabletopics``."""
        params = {"expand": expand} if expand else None
        listing = await self.request("GET", "/api/v2/notifications/availabletopics", params=params)
        entities: list[dict[str, Any]] = listing.get("entities", [])
        return entities

    # ------------------------------------------------------------------ directory (§8)

    async def _all_pages(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        items: list[Any] = []
        page = 1
        while True:
            query = {**(params or {}), "pageSize": "100", "pageNumber": str(page)}
            listing = await self.request("GET", path, params=query)
            items += listing.get("entities", [])
            if page >= int(listing.get("pageCount") or 1):
                return items
            page += 1

    async def queues(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every routing queue (optionally filtered by name)."""
        return await self._all_pages("/api/v2/routing/queues", {"name": name} if name else None)

    async def queue_members(self, queue_id: str) -> list[dict[str, Any]]:
        """Every member of a queue."""
        return await self._all_pages(f"/api/v2/routing/queues/{queue_id}/members")

    async def wrapup_codes(self) -> list[dict[str, Any]]:
        """Every wrap-up code."""
        return await self._all_pages("/api/v2/routing/wrapupcodes")

    # ------------------------------------------------------------------ analytics (§7)

    async def queue_observations(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/analytics/queues/observations/query``."""
        answer: dict[str, Any] = await self.request(
            "POST", "/api/v2/analytics/queues/observations/query", json=body
        )
        return answer

    async def conversation_aggregates(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/analytics/conversations/aggregates/query``."""
        answer: dict[str, Any] = await self.request(
            "POST", "/api/v2/analytics/conversations/aggregates/query", json=body
        )
        return answer

    async def user_aggregates(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/analytics/users/aggregates/query``."""
        answer: dict[str, Any] = await self.request(
            "POST", "/api/v2/analytics/users/aggregates/query", json=body
        )
        return answer
