"""The gate every request passes before its handler: planned faults, bearer token, budget.

:class:`RequestGate` is the aiohttp middleware. In order (docs/genesys-api.md §4, §10):

1. a request to ``/oauth/**`` or ``/api/v2/**`` may be answered by a planned REST fault
   (:meth:`~pipeline.emulator.state.faults.FaultPlan.take_request_fault`): an error, or a
   200 whose body is not JSON;
2. an ``/api/v2/**`` request needs a valid bearer token (401 otherwise); the
   :class:`~pipeline.emulator.state.tokens.Principal` it speaks for is stored on the request
   for the handler (:func:`principal_of`);
3. it is counted against its token's budget and its endpoint family's, if one is configured
   (429 over either, :mod:`~pipeline.emulator.state.ratelimit`), and every answer carries the
   ``inin-ratelimit-*`` headers; a login call counts against the login family's budget only,
   keyed by the client id of its Basic header.

Every answer carries ``ININ-Correlation-Id``; a refusal (:class:`EmulatorError`, or aiohttp's
own 404/400) becomes an ``ErrorBody`` that echoes it as ``contextId``. Each answered request is
appended to the request log, for tests that assert the calls they expect happened.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.http.answers import json_response
from pipeline.emulator.http.login import basic_credentials
from pipeline.emulator.state.org import OrgState
from pipeline.emulator.state.tokens import ClientId, Principal

__all__ = ["PRINCIPAL_KEY", "RequestGate", "RequestRecord", "principal_of"]

PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
_CORRELATION_HEADER = "ININ-Correlation-Id"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_GARBAGE = "<html><body>Service temporarily unavailable (maintenance)</body></html>"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP request the emulator answered (for tests that assert calls happened)."""

    at: float
    method: str
    path: str
    status: int
    client_id: str | None


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller of an ``/api/v2`` request (set by the gate)."""
    return request[PRINCIPAL_KEY]


class RequestGate:
    """The middleware in front of every handler.

    Args:
        state: the org (faults, tokens, rate limiter).
        now: emulator time in seconds.
        log: where answered requests are appended.
    """

    def __init__(
        self, state: OrgState, now: Callable[[], float], log: deque[RequestRecord]
    ) -> None:
        self._state = state
        self._now = now
        self._log = log

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Check the request, run the handler, stamp and log the answer."""
        correlation_id = str(uuid.uuid4())
        client_id: str | None = None
        extra_headers: dict[str, str] = {}
        try:
            garbage = self._raise_planned_fault(request.path)
            if garbage is not None:
                response: web.StreamResponse = garbage
            else:
                if request.path.startswith("/api/v2"):
                    principal = self._authenticate(request)
                    client_id = principal.client_id
                    extra_headers = self._count(
                        request.path, principal.client_id, principal.token_id
                    )
                elif request.path.startswith("/oauth"):
                    login_client, _ = basic_credentials(request.headers.get("Authorization"))
                    if login_client is not None:
                        extra_headers = self._count(request.path, ClientId(login_client), None)
                response = await handler(request)
        except EmulatorError as exc:
            response = json_response(exc.body(correlation_id), exc.status, exc.headers)
        except web.HTTPException as exc:
            response = json_response(_http_error_body(exc, correlation_id), exc.status)
        if not response.prepared:
            response.headers[_CORRELATION_HEADER] = correlation_id
            response.headers.update(extra_headers)
        self._log.append(
            RequestRecord(self._now(), request.method, request.path, response.status, client_id)
        )
        return response

    def _count(self, path: str, client_id: ClientId, token_id: str | None) -> dict[str, str]:
        """Count the request against its budgets; its rate-limit headers, or a 429."""
        decision = self._state.limiter.check(client_id, self._now(), token_id=token_id, path=path)
        if not decision.allowed:
            raise decision.error()
        return decision.headers() if decision.allowed_limit else {}

        """Answer with a planned REST fault, if one matches (login and Platform API only)."""

    def _raise_planned_fault(self, path: str) -> web.Response | None:
        """Answer with a planned REST fault, if one matches (login and Platform API only).

        Returns:
            The garbage answer of a ``garbage`` fault, else None.

        Raises:
            EmulatorError: the planned error answer.
        """
        if path.startswith(("/api/v2", "/oauth")):
            fault = self._state.faults.take_request_fault(path, self._now())
            if fault is not None and fault.garbage:
                return web.Response(status=200, text=_GARBAGE, content_type="text/html")
            if fault is not None:
                raise fault.error()
        return None

    def _authenticate(self, request: web.Request) -> Principal:
        """Check the bearer token and remember who it speaks for (401 otherwise)."""
        principal = self._state.tokens.authenticate(
            request.headers.get("Authorization"), self._now()
        )
        request[PRINCIPAL_KEY] = principal
        return principal


def _http_error_body(exc: web.HTTPException, correlation_id: str) -> dict[str, object]:
    return {
        "message": exc.reason,
        "code": "not.found" if exc.status == 404 else "bad.request",
        "status": exc.status,
        "contextId": correlation_id,
        "details": [],
        "errors": [],
    }
