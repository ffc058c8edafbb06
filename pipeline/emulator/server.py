"""The Genesys Cloud emulator: login, Platform API and notification WebSocket on one base URL.

The official SDK sends the login to the same base when its host has no ``api.`` in it
(docs/genesys-api.md §2), so ``http://127.0.0.1:PORT`` serves ``/oauth/token``, ``/api/v2/**`` and
the channel sockets at ``ws://127.0.0.1:PORT/channels/{id}`` (the ``connectUri`` it hands out).
``/__emulator/**`` is the admin API for tests (a path the real service does not have).

:class:`Emulator` owns the parts and wires them; it decides nothing itself:

* ``clock``: the injectable :class:`~pipeline.emulator.clock.Clock` every part reads;
* ``state``: the org's pure protocol state (:class:`~pipeline.emulator.state.org.OrgState`);
* ``center``: the simulated contact center (``simulation/``), run at ``speed``; building it
  simulates ``--history`` of past first (``simulation/history.py``);
* ``sockets``: the live sockets (:class:`~pipeline.emulator.http.streaming.SocketHub`);
* ``frames`` and ``requests``: what was sent and answered, for tests;
* the aiohttp application: the :class:`~pipeline.emulator.http.gate.RequestGate` middleware
  in front of one route group per module under ``http/``.

A ticker task runs :meth:`Emulator.step` every ``tick_s``: the simulation catches up with the
clock and expired channels end. Each socket steps on its own timer (see ``http/sockets.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from aiohttp import web

from pipeline.emulator.analytics.request import QueryRules
from pipeline.emulator.clock import Clock, SystemClock
from pipeline.emulator.config import EmulatorConfig, history_seconds
from pipeline.emulator.http.admin import AdminApi
from pipeline.emulator.http.analytics import AnalyticsApi
from pipeline.emulator.http.answers import Api
from pipeline.emulator.http.directory import DirectoryApi
from pipeline.emulator.http.frames import FrameLog
from pipeline.emulator.http.gate import RequestGate, RequestRecord
from pipeline.emulator.http.login import LoginApi
from pipeline.emulator.http.notifications import NotificationsApi
from pipeline.emulator.http.streaming import ChannelSocketApi, SocketHub
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig
from pipeline.emulator.simulation.topics import bodies_for_topic
from pipeline.emulator.state.channels import ChannelSettings
from pipeline.emulator.state.faults import Fault
from pipeline.emulator.state.org import OrgSettings, OrgState
from pipeline.emulator.state.ratelimit import RateLimitSettings, parse_family_limits
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig

__all__ = ["Emulator"]

log = logging.getLogger(__name__)


class Emulator:
    """A running emulated Genesys Cloud org.

    Args:
        config: behaviour, size and seed; defaults to :class:`EmulatorConfig`'s.
        clock: where time comes from; a :class:`~pipeline.emulator.clock.ManualClock` lets a
            test move it by hand. Defaults to the real time.

    Use ``await start()`` (returns the base URL) and ``await aclose()``, or ``async with``.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = cfg = config or EmulatorConfig()
        self.clock = clock or SystemClock()
        self._origin = self.clock.monotonic()
        self.started_at = datetime.fromtimestamp(self.clock.time(), UTC).replace(microsecond=0)
        built = time.perf_counter()
        self.center = ContactCenter(_simulation_config(cfg), self.started_at)  # runs the history
        if self.center.history_ms:
            log.info(
                "emulator simulated %.1f h of history in %.1f s",
                self.center.history_ms / 3_600_000,
                time.perf_counter() - built,
            )
        client = OAuthClientConfig(ClientId(cfg.client_id), cfg.client_secret, cfg.token_lifetime_s)
        self.state = OrgState(
            [client],
            # Seeded for repeatable ids; emulator tokens guard nothing real.
            random.Random(cfg.seed),  # noqa: S311
            _org_settings(cfg, self.started_at),
            entity_exists=self.center.has_entity,
        )
        if cfg.restricted_queues > 0:  # the last N queues: a division the client cannot see
            hidden = [q.id for q in self.center.queues[-cfg.restricted_queues :]]
            self.state.channels.restrict_entities(client.client_id, hidden)
        self.sockets = SocketHub()
        self.frames = FrameLog(self.clock.time, keep_text=cfg.keep_frame_text)
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        """Emulator time: seconds since the emulator was created, on its clock."""
        return self.clock.monotonic() - self._origin

    def catch_up(self) -> None:
        """Bring the simulation up to the current (sped-up) time."""
        simulated = timedelta(seconds=self.now() * self.config.speed)
        self.center.advance(self.started_at + simulated)

    async def step(self) -> None:
        """Do one tick's work now: the simulation catches up, expired channels end.

        The ticker calls this every ``tick_s``; a test with a manual clock may call it (and
        :meth:`step_sockets`) right after advancing the clock instead of waiting for a tick.
        """
        self.catch_up()
        await self.sockets.end_channels(self.state.sweep(self.now()))

    async def step_sockets(self) -> None:
        """One writer step of every live socket now (heartbeats, fault actions, due frames)."""
        for session in self.sockets.sessions():
            await session.step()

    # ------------------------------------------------------------------ lifecycle

    @property
    def ws_base_url(self) -> str:
        """``ws://host:port``: the base of every ``connectUri``."""
        return self.base_url.replace("http://", "ws://", 1)

    async def start(self) -> str:
        """Listen on the configured host and port; returns the base URL."""
        app = web.Application(
            middlewares=[RequestGate(self.state, self.now, self.requests).middleware]
        )
        for api in self._apis():
            app.add_routes(api.routes())
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
        await self.sockets.close_all(1001, b"emulator stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def inject(self, fault: Fault) -> None:
        """Inject a fault (see ``state/faults.py``); state faults take effect at once.

        Raises:
            ValueError: a frame fault with a count below its minimum.
        """
        await self.sockets.end_channels(self.state.apply_fault(fault, self.now()))

    # ------------------------------------------------------------------ wiring

    def _apis(self) -> list[Api]:
        """Every route group, each built from the parts it needs."""
        return [
            LoginApi(self.state.tokens, self.now),
            NotificationsApi(self.state, self.sockets, self.now, lambda: self.ws_base_url),
            ChannelSocketApi(
                self.state,
                self.sockets,
                self.config,
                self.frames,
                functools.partial(bodies_for_topic, self.center),
                self.now,
            ),
            AnalyticsApi(self.center, self.catch_up, _query_rules(self.config)),
            DirectoryApi(self.center, self.config.listing_max_page_size),
            AdminApi(self.state, self.center, self.frames, self.requests, self.now, self.inject),
        ]

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            await self.step()


def _simulation_config(cfg: EmulatorConfig) -> SimulationConfig:
    return SimulationConfig(
        queues=cfg.queues,
        agents=cfg.agents,
        seed=cfg.seed,
        arrival_rate_per_queue_per_min=cfg.arrival_rate,
        history_s=history_seconds(cfg.history),
        history_budget_s=cfg.history_budget_s,
        omit_zero_qualifiers=cfg.omit_zero_qualifiers,
    )


def _query_rules(cfg: EmulatorConfig) -> QueryRules:
    return QueryRules(
        max_interval_days=cfg.query_max_interval_days,
        conversation_granularity_minutes=cfg.conversation_granularity_minutes,
        user_granularity_minutes=cfg.user_granularity_minutes,
    )


def _org_settings(cfg: EmulatorConfig, started_at: datetime) -> OrgSettings:
    return OrgSettings(
        channels=ChannelSettings(
            wall_epoch=started_at, dies_with_token_expiry=cfg.channels_die_with_token
        ),
        rate_limit=RateLimitSettings(
            limit=cfg.rate_limit,
            window_seconds=cfg.rate_window_s,
            scope="client" if cfg.rate_limit_scope == "client" else "token",
            families=parse_family_limits(cfg.family_rate_limits),
        ),
        bad_client_status=cfg.bad_credentials_status,
    )
