"""The Genesys Cloud Platform API over httpx: budgets per family, one retry policy, typed calls.

Every call goes through :meth:`GenesysRest.request`, which waits for the budget of its
endpoint family (:class:`~pipeline.core.genesys.budget.RequestBudgets`, shared by the
client's callers: notifications, analytics, directory, other), sends with a bearer token
(:class:`BearerAuth` refreshes it once on a 401), learns from the ``inin-ratelimit-*``
headers, and follows the one table of :mod:`pipeline.core.http_policy`: 429 pauses every
caller of that family for ``Retry-After`` (capped; backoff when absent) — of every family
when the answer names the token's own budget (docs/genesys-api.md §4.5), so an analytics
storm does not hold up channel recovery — 408/5xx/transport errors back off with full
jitter, anything else raises :class:`~pipeline.errors.ApiError` with the body's code and the
correlation id. A 2xx whose body is not JSON (a proxy's maintenance page, a cut answer) is
retried like a server fault and, at the last attempt, raises ``ApiError`` with code
``response.malformed``; so does a channel answer without ``id`` and ``connectUri``, which
the channel session then retries (a 2xx it could not use).

Attempts are counted here, up to ``max_attempts`` per call, unless the caller counts them
itself and asks for ``attempts=1``: the channel session does, for create, subscribe and HEAD
(the rule is written down in :mod:`pipeline.core.http_policy`).

The official SDK is synchronous and hides 429s inside urllib3 retries (docs/genesys-api.md §4.4), so
the hot and retry-sensitive paths use httpx directly; the SDK is used by the tests to prove the
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

from pipeline.core.genesys.budget import PLATFORM_NAMESPACE, RequestBudgets, family_of
from pipeline.core.genesys.paging import PageLink, Pager
from pipeline.core.http_policy import (
    Backoff,
    Decision,
    Failure,
    ResponseAction,
    decide,
    parse_retry_after,
)
from pipeline.errors import ApiError, PagingError, RateLimitedError
from pipeline.genesys.auth import BearerAuth, TokenProvider

__all__ = ["GenesysRest", "RestObserver"]

log = logging.getLogger(__name__)

CHANNELS = "/api/v2/notifications/channels"


def _malformed(path: str, answer: httpx.Response, what: str) -> ApiError:
    correlation = answer.headers.get("ININ-Correlation-Id")
    return ApiError(answer.status_code, "response.malformed", what, correlation, path)


class RestObserver:
    """Hooks for REST events; the default does nothing (override what you need)."""

    def on_throttled(self, path: str, wait_s: float) -> None:
        """A 429: every caller of the path's family waits ``wait_s``."""

    def on_retry(self, path: str, status: int | None, attempt: int, wait_s: float) -> None:
        """A retriable failure; the call is sent again after ``wait_s``."""


class GenesysRest:
    """Async client of the Platform API for one OAuth client.

    Args:
        http: an httpx client whose ``base_url`` is the API base (``https://api.<region>``).
        tokens: the client's token provider.
        budgets: the client's request budgets (share them per OAuth client).
        max_attempts: attempts per call before giving up (callers may ask for fewer).
        clock: epoch seconds.
        observer: REST event hooks.
        backoff: waits between attempts, and the longest ``Retry-After`` obeyed.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        budgets: RequestBudgets | None = None,
        *,
        max_attempts: int = 6,
        clock: Callable[[], float] = time.time,
        observer: RestObserver | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._http = http
        self.tokens = tokens
        self._auth = BearerAuth(tokens)
        self.budgets = budgets or RequestBudgets()
        self._max_attempts = max_attempts
        self._clock = clock
        self._observer = observer or RestObserver()
        self._backoff = backoff or Backoff()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | list[str]] | None = None,
        attempts: int | None = None,
    ) -> Any:
        """Send one call, with retries; returns the decoded JSON answer (None when empty).

        Args:
            method: the HTTP method.
            path: the path under the API base.
            json: a body to send as JSON, if any.
            params: query parameters.
            attempts: the most attempts in total (default ``max_attempts``); 1 for a caller
                that counts attempts itself.

        Raises:
            ApiError: a final error answer, or no answer at the last attempt (status 0).
            RateLimitedError: still 429 at the last attempt.
            ValueError: ``attempts`` < 1.
        """
        limit = self._max_attempts if attempts is None else attempts
        if limit < 1:
            raise ValueError(f"attempts must be ≥ 1, got {limit}")
        content = None if json is None else orjson.dumps(json)
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(1, limit + 1):
            await self._wait_for_budget(path)
            answer = await self._send(method, path, content, params, headers)
            status = None if answer is None else answer.status_code
            retry_after = None
            if answer is not None:
                header = answer.headers.get("Retry-After")
                retry_after = parse_retry_after(
                    header, self._clock(), self._backoff.max_retry_after_s
                )
            decision = decide(status, retry_after, attempt, limit)
            if decision.action is ResponseAction.DONE and answer is not None:
                try:
                    return orjson.loads(answer.content) if answer.content else None
                except orjson.JSONDecodeError:
                    if attempt == limit:
                        raise _malformed(path, answer, "the answer is not JSON") from None
                    decision = Decision(ResponseAction.RETRY, Failure.SERVER, "not JSON", None)
            wait = self._backoff.delay(attempt - 1, decision.wait_s, random.random)
            if decision.failure is Failure.THROTTLED:
                # every caller of the family pauses, whether we retry or not
                self._throttled(path, wait, _limit_namespace(answer))
            if decision.action is not ResponseAction.RETRY:
                # FAIL, or REFRESH_TOKEN: BearerAuth already re-sent the 401 with a new token.
                raise self._error(path, decision, answer)
            if decision.failure is not Failure.THROTTLED:  # a 429 waits in the budget
                self._observer.on_retry(path, status, attempt, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str | list[str]] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response | None:
        """One HTTP exchange; None when no answer came."""
        try:
            answer = await self._http.request(
                method, path, content=content, params=params, headers=headers, auth=self._auth
            )
        except httpx.TransportError as exc:
            log.warning("%s %s failed in transport: %s", method, path, type(exc).__name__)
            return None
        self.budgets.for_path(path).observe(answer.headers, self._clock())
        return answer

    async def _wait_for_budget(self, path: str) -> None:
        budget = self.budgets.for_path(path)
        # A loop, not an Event: another caller's 429 can push the deadline while we sleep.
        while (wait := budget.delay(self._clock())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        budget.spend()

    def _throttled(self, path: str, wait: float, namespace: str | None) -> None:
        self.budgets.throttled(path, wait, self._clock(), namespace)
        scope = "every family" if namespace == PLATFORM_NAMESPACE else family_of(path)
        log.warning("429 on %s: callers of %s wait %.1fs", path, scope, wait)
        self._observer.on_throttled(path, wait)

    @staticmethod
    def _error(path: str, decision: Decision, answer: httpx.Response | None) -> Exception:
        if decision.failure is Failure.THROTTLED:
            return RateLimitedError(path, decision.wait_s)
        if answer is None:
            return ApiError(0, "transport.error", decision.message, None, path)
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
            retry_after=decision.wait_s,
        )

    # ------------------------------------------------------------------ notifications (§5.1)

    async def create_channel(self, *, attempts: int | None = None) -> dict[str, Any]:
        """``POST /api/v2/notifications/channels`` → ``{"id", "connectUri", "expires"}``.

        ``attempts`` as in :meth:`request` (the channel session passes 1).
        """
        channel = await self.request("POST", CHANNELS, attempts=attempts)
        if not (
            isinstance(channel, dict)
            and isinstance(channel.get("id"), str)
            and isinstance(channel.get("connectUri"), str)
        ):
            raise ApiError(
                200,
                "response.malformed",
                "the channel answer lacks id and connectUri",
                None,
                CHANNELS,
            )
        return channel

    async def put_subscriptions(
        self,
        channel_id: str,
        topics: list[str],
        *,
        attempts: int | None = None,
        ignore_errors: bool = True,
    ) -> dict[str, Any]:
        """``PUT .../subscriptions``: replace the channel's topics (extends its life).

        Args:
            channel_id: the channel.
            topics: the topics it should hold.
            attempts: as in :meth:`request` (the channel session passes 1).
            ignore_errors: ``ignoreErrors=true`` (the default): a topic the client may not
                see comes back ``Rejected`` and the rest are subscribed, instead of a 403
                for the whole call that subscribes nothing (§5.6).

        Returns:
            The ``ChannelTopicEntityListing`` answer.
        """
        listing: dict[str, Any] = await self.request(
            "PUT",
            f"{CHANNELS}/{channel_id}/subscriptions",
            json=[{"id": t} for t in topics],
            params={"ignoreErrors": "true" if ignore_errors else "false"},
            attempts=attempts,
        )
        return listing

    async def channel_exists(self, channel_id: str, *, attempts: int | None = None) -> bool:
        """``HEAD .../channels/{id}``: True on 200, False on 404.

        ``attempts`` as in :meth:`request` (the channel session passes 1).
        """
        try:
            await self.request("HEAD", f"{CHANNELS}/{channel_id}", attempts=attempts)
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
        """Every entity of a listing: follow ``nextUri`` until there is none (§8.1).

        Raises:
            PagingError: the links loop, leave the API or never end (see ``core.genesys.paging``).
        """
        pager = Pager(path, params)
        link: PageLink | None = pager.first()
        items: list[Any] = []
        while link is not None:
            listing = await self.request("GET", link.path, params=_query(link.params))
            if not isinstance(listing, dict):
                raise PagingError(path, "a page was not a JSON object")
            items += listing.get("entities") or []
            link = pager.next(listing)
        if pager.pages > 1:
            log.debug("%s: %d entities in %d pages", path, len(items), pager.pages)
        return items

    async def queues(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every routing queue (optionally filtered by name)."""
        return await self._all_pages("/api/v2/routing/queues", {"name": name} if name else None)

    async def queue_members(self, queue_id: str) -> list[dict[str, Any]]:
        """Every member of a queue."""
        return await self._all_pages(f"/api/v2/routing/queues/{queue_id}/members")

    async def wrapup_codes(self) -> list[dict[str, Any]]:
        """Every wrap-up code."""
        return await self._all_pages("/api/v2/routing/wrapupcodes")

    async def users(self) -> list[dict[str, Any]]:
        """Every user of the org."""
        return await self._all_pages("/api/v2/users")

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


def _query(params: tuple[tuple[str, str], ...]) -> dict[str, str | list[str]]:
    """Query pairs as httpx params (a repeated key, e.g. ``id``, becomes a list)."""
    query: dict[str, str | list[str]] = {}
    for key, value in params:
        held = query.get(key)
        if held is None:
            query[key] = value
        elif isinstance(held, list):
            held.append(value)
        else:
            query[key] = [held, value]
    return query


def _limit_namespace(answer: httpx.Response | None) -> str | None:
    """``ErrorBody.limit.namespace`` of a 429, if the body names one (§4.1)."""
    if answer is None:
        return None
    try:
        body = orjson.loads(answer.content) if answer.content else None
    except orjson.JSONDecodeError:
        return None
    limit = body.get("limit") if isinstance(body, dict) else None
    namespace = limit.get("namespace") if isinstance(limit, dict) else None
    return namespace if isinstance(namespace, str) else None
