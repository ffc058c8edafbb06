"""Operations endpoints for every service: ``/metrics``, ``/healthz``, ``/readyz``.

The probes answer two different questions, so that an upstream outage never stalls a rollout
or restarts a healthy process:

- ``/healthz`` (liveness): are this process's loops alive? 503 when the event loop was
  blocked longer than ``max_loop_lag_s`` at its last heartbeat, or when the service reports
  an essential task dead (e.g. the producer's Kafka poll loop). A loop stuck for good does
  not answer at all: the probe's own timeout catches that.
- ``/readyz`` (readiness): did this process finish its own start-up — configuration valid,
  schema contract checked, topics ensured, consumers started — and is it free of a
  configuration error (e.g. the dashboard answering 401/403/404)? 503 with the reasons
  otherwise. Upstream outages after start-up (Genesys down, Kafka unreachable, the dashboard
  down) are *degradation*, not unreadiness: ``genesys_pipeline_degraded{reason}`` and a
  ``service.degraded`` audit record (see :mod:`pipeline.telemetry`).
- ``/metrics``: the Prometheus text format of the service's own registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from pipeline.telemetry import metric_name

__all__ = ["HEARTBEAT_S", "Check", "OpsServer", "Readiness"]

log = logging.getLogger(__name__)

Check = Callable[[], list[str]]
"""Returns what is wrong (an empty list: nothing)."""
Readiness = Check
"""Returns the reasons the service is not ready (an empty list: ready)."""

HEARTBEAT_S: Final = 0.5
"""How often the event loop's heartbeat ticks (its lag is measured on each tick)."""


class OpsServer:
    """A tiny aiohttp server for probes and metrics, on the service's event loop.

    Args:
        registry: the Prometheus registry to expose.
        readiness: the service's readiness check (its own start-up and configuration only).
        host: interface to bind.
        port: port (0: any free port).
        liveness: the service's essential-task check (none: only the event loop counts).
        max_loop_lag_s: a heartbeat later than this makes ``/healthz`` answer 503.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Readiness,
        host: str,
        port: int,
        liveness: Check | None = None,
        max_loop_lag_s: float = 5.0,
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._liveness = liveness or list
        self._host = host
        self._port = port
        self._max_lag_s = max_loop_lag_s
        self._lag = Gauge(
            metric_name("event_loop_lag_seconds"),
            "How late the event loop's last heartbeat ran",
            registry=registry,
        )
        self._last_lag = 0.0
        self._runner: web.AppRunner | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen and start the heartbeat; returns the base URL."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._heartbeat = asyncio.create_task(self._beat())
        port = self._runner.addresses[0][1]
        self.url = f"http://{'127.0.0.1' if self._host in {'0.0.0.0', ''} else self._host}:{port}"  # noqa: S104
        log.info("ops endpoints on %s (/metrics, /healthz, /readyz)", self.url)
        return self.url

    async def aclose(self) -> None:
        """Stop listening."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def health(self) -> list[str]:
        """Why the process is not alive (empty: alive): a late heartbeat, a dead task."""
        problems = list(self._liveness())
        if self._heartbeat is None or self._heartbeat.done():
            problems.append("the event loop heartbeat is not running")
        if self._last_lag > self._max_lag_s:
            problems.append(f"the event loop was blocked for {self._last_lag:.1f} s")
        return problems

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(HEARTBEAT_S)
            self._last_lag = max(0.0, loop.time() - started - HEARTBEAT_S)
            self._lag.set(self._last_lag)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        problems = self.health()
        if problems:
            return web.json_response({"status": "unhealthy", "reasons": problems}, status=503)
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = self._readiness()
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})
