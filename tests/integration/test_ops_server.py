"""The probes answer what the service says: 503 with reasons until ready."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from pipeline.services.ops import OpsServer


async def test_readyz_follows_the_service_and_metrics_expose_the_registry() -> None:
    registry = CollectorRegistry()
    Counter("demo_things_total", "things", registry=registry).inc(3)
    reasons = ["topics not created yet"]
    server = OpsServer(registry, lambda: list(reasons), "127.0.0.1", 0)
    url = await server.start()
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["reasons"] == ["topics not created yet"]
            reasons.clear()
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert "demo_things_total 3.0" in (await http.get("/metrics")).text
    finally:
        await server.aclose()
