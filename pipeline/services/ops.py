"""Operations endpoints for every service: ``/metrics``, ``/healthz``, ``/readyz``.

``/healthz`` answers 200 while the process serves requests (liveness). ``/readyz`` answers
200 only when the service says it is ready — for the producer: contract checked, topics there,
at least one channel live, Kafka acknowledging — and 503 with the reasons otherwise.
``/metrics`` is the Prometheus text format of the service's own registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["OpsServer", "Readiness"]

log = logging.getLogger(__name__)

Readiness = Callable[[], list[str]]
"""Returns the reasons the service is not ready (an empty list: ready)."""


class OpsServer:
    """A tiny aiohttp server for probes and metrics.

    Args:
        registry: the Prometheus registry to expose.
        readiness: the service's readiness check.
        host: interface to bind.
        port: port (0: any free port).
    """

    def __init__(
        self, registry: CollectorRegistry, readiness: Readiness, host: str, port: int
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen; returns the base URL."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{'127.0.0.1' if self._host in {'0.0.0.0', ''} else self._host}:{port}"  # noqa: S104
        log.info("ops endpoints on %s (/metrics, /healthz, /readyz)", self.url)
        return self.url

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = self._readiness()
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})
