"""The shipped monitoring against the running services: every metric the alert rules and the
Grafana dashboard query exists in a real scrape; upstream outages are degradation (a metric
and an audit record) while every service stays ready."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from pipeline.emulator.thread import EmulatorThread
from pipeline.local.stack import Endpoints
from tests.conftest import seconds
from tests.monitoring import (
    RunningPipeline,
    alert_expressions,
    dashboard_expressions,
    exposed_names,
    metric_names,
    running_pipeline,
)
from tests.polling import until_sync
from tests.producer_rig import EMULATOR, read_topics

pytestmark = pytest.mark.integration

SERVICES = ("producer", "freshness", "dashboard")


def _flowing(run: RunningPipeline) -> bool:
    delivered = run.sample("producer", "genesys_pipeline_records_delivered_total", {}) or 0
    pushed = run.sample("dashboard", "genesys_pipeline_dashboard_pushes_total", {"outcome": "ok"})
    read = run.sample("freshness", "genesys_pipeline_freshness_records_total", {"topic": "metrics"})
    return delivered > 0 and (pushed or 0) > 0 and (read or 0) > 0


def test_every_metric_the_alerts_and_the_dashboard_query_is_exposed(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    emulator = emulator_factory(**EMULATOR)
    with running_pipeline(emulator, endpoints, tmp_path) as run:
        until_sync(lambda: _flowing(run), seconds(60), message=f"records flow\n{run.output()}")
        exposed = set().union(*(exposed_names(run.scrape(s)) for s in SERVICES))
    queries = {**alert_expressions(), **dashboard_expressions()}
    missing = {
        where: sorted(metric_names(query) - exposed)
        for where, query in queries.items()
        if metric_names(query) - exposed
    }
    assert not missing, missing
    used = set().union(*(metric_names(q) for q in queries.values()))
    assert len(used) >= 25, sorted(used)  # the check looked at real queries
    assert {"process_resident_memory_bytes", "genesys_pipeline_build_info"} <= exposed


def _degraded_audits(run: RunningPipeline, endpoints: Endpoints) -> list[dict[str, object]]:
    topic = f"{run.prefix}.audit"
    read = read_topics(endpoints, {topic: 1}, 0.3, 0.5)[topic]
    return [
        {"kind": value["kind"], **orjson.loads(value["details_json"])}
        for _, _, value in read
        if value["kind"] in {"service.degraded", "service.recovered"}
    ]


def test_services_stay_ready_while_genesys_and_the_dashboard_are_down(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    emulator = emulator_factory(**EMULATOR)
    with running_pipeline(emulator, endpoints, tmp_path) as run:
        until_sync(lambda: _flowing(run), seconds(60), message=f"records flow\n{run.output()}")
        assert run.sample("producer", "genesys_pipeline_degraded", {"reason": "genesys"}) == 0

        # The dashboard goes away: the circuit opens, the worker is degraded, still ready.
        wallboard = run.processes["wallboard"]
        wallboard.interrupt(signal.SIGKILL, group=True)
        wallboard.wait(seconds(10))
        until_sync(
            lambda: (
                run.sample("dashboard", "genesys_pipeline_degraded", {"reason": "dashboard"}) == 1
            ),
            seconds(60),
            message=f"the dashboard worker reports the dashboard down\n{run.output()}",
        )
        circuit = "genesys_pipeline_dashboard_circuit_state"
        assert run.sample("dashboard", circuit, {circuit: "closed"}) == 0
        assert run.probe("dashboard", "/readyz") == 200
        assert run.probe("dashboard", "/healthz") == 200

        # Genesys goes away: channels stop being live, the producer is degraded, still ready.
        emulator.stop()
        until_sync(
            lambda: run.sample("producer", "genesys_pipeline_degraded", {"reason": "genesys"}) == 1,
            seconds(60),
            message=f"the producer reports Genesys down\n{run.output()}",
        )
        state = "genesys_pipeline_channel_state"
        assert run.sample("producer", state, {"channel": "0", state: "live"}) == 0
        for service in SERVICES:
            assert run.probe(service, "/readyz") == 200, service
            assert run.probe(service, "/healthz") == 200, service

        until_sync(
            lambda: (
                {(a["kind"], a["reason"]) for a in _degraded_audits(run, endpoints)}
                >= {("service.degraded", "dashboard"), ("service.degraded", "genesys")}
            ),
            seconds(30),
            message="both degradations audited",
        )
