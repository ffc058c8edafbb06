"""The probes: readiness is the service's own start-up, liveness its loops and tasks."""

from __future__ import annotations

import time

import httpx
from prometheus_client import CollectorRegistry, Counter

from pipeline.services.ops import OpsServer
from tests.conftest import seconds
from tests.polling import until


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


async def test_healthz_reports_a_dead_essential_task_and_readyz_stays_independent() -> None:
    problems: list[str] = []
    server = OpsServer(CollectorRegistry(), list, "127.0.0.1", 0, liveness=lambda: list(problems))
    url = await server.start()
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
            problems.append("the Kafka publisher stopped: boom")
            dead = await http.get("/healthz")
            assert dead.status_code == 503
            assert dead.json()["reasons"] == ["the Kafka publisher stopped: boom"]
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await server.aclose()


async def test_healthz_is_unhealthy_after_the_event_loop_was_blocked() -> None:
    registry = CollectorRegistry()
    server = OpsServer(registry, list, "127.0.0.1", 0, max_loop_lag_s=0.3)
    url = await server.start()
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
            time.sleep(1.2)  # noqa: ASYNC251 - the point: a blocked loop (> one heartbeat)

            async def blocked() -> bool:
                answer = await http.get("/healthz")
                return answer.status_code == 503 and "blocked" in answer.json()["reasons"][0]

            await until(blocked, seconds(5), message="/healthz reports the blocked loop")
            lag = registry.get_sample_value("genesys_pipeline_event_loop_lag_seconds")
            assert lag is not None
            assert lag >= 0.6

            async def healthy() -> bool:
                return (await http.get("/healthz")).status_code == 200

            # The next heartbeat on time: alive again.
            await until(healthy, seconds(5), message="/healthz is 200 again")
    finally:
        await server.aclose()
