"""The Genesys Cloud emulator: login, Platform API and notification WebSocket on one base URL.

The official SDK sends the login to the same base when its host has no ``api.`` in it
(reference §2), so ``http://127.0.0.1:PORT`` serves ``/oauth/token``, ``/api/v2/**`` and the
channel sockets at ``ws://127.0.0.1:PORT/channels/{id}`` (the ``connectUri`` it hands out).
``/__emulator/**`` is the admin API for tests (a path the real service does not have).

This module is the shell: the clock, the sockets and the aiohttp plumbing. What to answer is
decided by the pure state (``state.py`` and the modules under it), the simulation
(``simulation.py``) and the analytics engine (``analytics.py``).

Every answer carries ``ININ-Correlation-Id``; every ``/api/v2`` answer to an authenticated
client carries ``inin-ratelimit-count/allowed/reset`` (§4.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.http.sockets import FrameLog, SocketSession
from pipeline.emulator.simulation.center import ContactCenter, SimulationConfig
from pipeline.emulator.state.catalogue import EntityKind
from pipeline.emulator.state.channels import ChannelEnded, ChannelSettings
from pipeline.emulator.state.faults import Fault
from pipeline.emulator.state.org import EmulatorSettings, EmulatorState
from pipeline.emulator.state.ratelimit import RateLimitSettings
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig, Principal

__all__ = ["EMULATOR_KEY", "PRINCIPAL_KEY", "Emulator", "RequestRecord", "json_response"]

log = logging.getLogger(__name__)

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator")
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
_CORRELATION_HEADER = "ININ-Correlation-Id"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer, serialised with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP request the emulator answered (for tests that assert calls happened)."""

    at: float
    method: str
    path: str
    status: int
    client_id: str | None


class Emulator:
    """A running emulated Genesys Cloud org.

    Args:
        config: behaviour, size and seed.

    Use ``await start()`` (returns the base URL) and ``await aclose()``, or ``async with``.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        cfg = self.config
        self._mono0 = time.monotonic()
        self.started_at = datetime.now(UTC).replace(microsecond=0)
        self.center = ContactCenter(
            SimulationConfig(
                queues=cfg.queues,
                agents=cfg.agents,
                seed=cfg.seed,
                arrival_rate_per_queue_per_min=cfg.arrival_rate,
            ),
            self.started_at,
        )
        settings = EmulatorSettings(
            channels=ChannelSettings(wall_epoch=self.started_at),
            rate_limit=RateLimitSettings(
                limit=cfg.rate_limit, window_seconds=int(cfg.rate_window_s)
            ),
            bad_client_status=cfg.bad_credentials_status,
        )
        client = OAuthClientConfig(ClientId(cfg.client_id), cfg.client_secret, cfg.token_lifetime_s)
        self.state = EmulatorState(
            [client],
            # Seeded for repeatable ids; emulator tokens guard nothing real.
            random.Random(cfg.seed),  # noqa: S311
            settings,
            entity_exists=self._entity_exists,
        )
        self.frames = FrameLog(keep_text=cfg.keep_frame_text)
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        self.sockets: dict[str, SocketSession] = {}
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """Emulator time: seconds since the emulator was created."""
        return time.monotonic() - self._mono0

    def advance(self) -> None:
        """Bring the simulation up to the current (sped-up) time."""
        self.center.advance(self.started_at + timedelta(seconds=self.now() * self.config.speed))

    @property
    def ws_base_url(self) -> str:
        """``ws://host:port``: the base of every ``connectUri``."""
        return self.base_url.replace("http://", "ws://", 1)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Listen on the configured host and port; returns the base URL."""
        from pipeline.emulator.http.notifications import add_routes  # routes import this module

        app = web.Application(middlewares=[self._middleware])
        app[EMULATOR_KEY] = self
        add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.config.host}:{port}"
        self._ticker = asyncio.create_task(self._tick_loop())
        log.info(
            "emulator listening on %s (%d queues, %d agents, seed %d)",
            self.base_url,
            len(self.center.queues),
            len(self.center.users),
            self.config.seed,
        )
        return self.base_url

    async def aclose(self) -> None:
        """Close every socket and stop listening."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for session in list(self.sockets.values()):
            await session.close(1001, b"emulator stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _tick_loop(self) -> None:
        """Advance the simulation and end expired channels, every tick."""
        while True:
            await asyncio.sleep(self.config.tick_s)
            self.advance()
            for ended in self.state.sweep(self.now()):
                await self.end_channel(ended)

    # ------------------------------------------------------------------ faults and endings

    async def inject(self, fault: Fault) -> None:
        """Inject a fault (see ``faults.py``); state faults take effect at once."""
        for ended in self.state.apply_fault(fault, self.now()):
            await self.end_channel(ended)

    async def end_channel(self, ended: ChannelEnded) -> None:
        """Tell a live socket its channel ended (system message), then close it."""
        session = self.sockets.get(ended.channel.id)
        log.info("channel %s ended: %s", ended.channel.id, ended.reason)
        if session is None:
            return
        if ended.notice is not None:
            await session.send_system(ended.notice.topic_name, ended.notice.event_body())
        await session.close(1000, ended.reason.encode())

    # ------------------------------------------------------------------ HTTP plumbing

    def _entity_exists(self, kind: EntityKind, entity_id: str) -> bool:
        index = {
            "queue": self.center.queue_index,
            "user": self.center.user_index,
            "wrapup": self.center.wrapup_index,
        }.get(kind)
        # Entities the simulation does not model (flows, conversations) are taken on trust.
        return True if index is None else entity_id in index

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        correlation_id = str(uuid.uuid4())
        path = request.path
        client_id: str | None = None
        extra_headers: dict[str, str] = {}
        try:
            if path.startswith(("/api/v2", "/oauth")):
                fault = self.state.faults.take_request_fault(path, self.now())
                if fault is not None:
                    raise fault.error()
            if path.startswith("/api/v2"):
                principal = self.state.tokens.authenticate(
                    request.headers.get("Authorization"), self.now()
                )
                client_id = principal.client_id
                request[PRINCIPAL_KEY] = principal
                decision = self.state.limiter.check(principal.client_id, self.now())
                extra_headers = decision.headers()
                if not decision.allowed:
                    raise decision.error()
            response = await handler(request)
        except EmulatorError as exc:
            response = json_response(exc.body(correlation_id), exc.status, exc.headers)
        except web.HTTPException as exc:
            response = json_response(
                {
                    "message": exc.reason,
                    "code": "not.found" if exc.status == 404 else "bad.request",
                    "status": exc.status,
                    "contextId": correlation_id,
                    "details": [],
                    "errors": [],
                },
                exc.status,
            )
        if not response.prepared:
            response.headers[_CORRELATION_HEADER] = correlation_id
            response.headers.update(extra_headers)
        self.requests.append(
            RequestRecord(self.now(), request.method, path, response.status, client_id)
        )
        return response


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller of an ``/api/v2`` request."""
    return request[PRINCIPAL_KEY]
