"""``pipeline demo``: the whole pipeline on the embedded default, with a live summary.

Starts, inside this process on 127.0.0.1, the Genesys emulator with a busy simulated contact
center, the producer streaming ``examples/subscription.yaml`` into the local broker and
registry the caller started, the freshness and dashboard workers, and the reference
wallboard the dashboard worker pushes to. Prints where to look and a summary line every few
seconds; on stop (Ctrl-C, SIGTERM or ``duration``) the caller prints a report and says whether
the pipeline was healthy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from pipeline.core.subscription.spec import load_spec
from pipeline.dashboard.wallboard import Wallboard
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig
from pipeline.emulator.server import Emulator
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
from pipeline.services.freshness_worker import FreshnessConfig, FreshnessWorker
from pipeline.services.producer import ProducerConfig, ProducerService, ProducerStats
from pipeline.settings import (
    DashboardSettings,
    GenesysSettings,
    KafkaSettings,
    ProducerSettings,
    RegistrySettings,
    WorkerSettings,
)

__all__ = ["DemoReport", "run_demo"]

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did: the producer's counts plus the workers' and wallboard's."""

    producer: ProducerStats
    pushes: int
    values_on_wallboard: int
    freshness_p95_s: float | None

    @property
    def healthy(self) -> bool:
        """Records flowed, all were acknowledged, and the wallboard received pushes."""
        stats = self.producer
        return stats.delivered > 0 and stats.in_flight == 0 and self.pushes > 0


class _Demo:
    """The running parts, for summaries."""

    def __init__(
        self, producer: ProducerService, freshness: FreshnessWorker, wallboard: Wallboard
    ) -> None:
        self.producer, self.freshness, self.wallboard = producer, freshness, wallboard

    def report(self) -> DemoReport:
        totals = self.wallboard.state()["totals"]
        p95 = [
            r.p95_seconds
            for r in self.freshness.latest_reports
            if r.stage == "end_to_end" and r.p95_seconds is not None
        ]
        return DemoReport(
            self.producer.stats(),
            totals["pushes"],
            totals["values_held"],
            max(p95) if p95 else None,
        )


async def run_demo(
    endpoints: Endpoints,
    stop: asyncio.Event,
    out: TextIO,
    spec_path: Path = EXAMPLE,
    summary_every_s: float = 5.0,
) -> DemoReport:
    """Run emulator, producer, workers and wallboard until ``stop``; returns the report."""
    prefix = "genesys"
    # A busy contact center: 20 queues, 200 agents, six conversations a minute per queue/media,
    # with an hour of history so the wallboard starts mid-interval. Simulating it (about 1 s)
    # overlaps registering the schemas.
    config = EmulatorConfig(port=0, arrival_rate=6.0, history="PT1H")
    built = asyncio.create_task(asyncio.to_thread(Emulator, config))
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
    async with await built as emulator:
        names = {q.id: q.name for q in emulator.center.queues}
        wallboard = Wallboard("127.0.0.1", 0, SecretStr(_SECRET), queue_names=names)
        await wallboard.start()
        producer = ProducerService(_config(endpoints, emulator.base_url, spec_path, prefix))
        tasks = [asyncio.create_task(producer.run(stop))]
        try:
            await _wait_until_ready(producer)
            freshness, dashboard = _workers(endpoints, prefix, wallboard.url)
            tasks += [asyncio.create_task(w.run(stop)) for w in (freshness, dashboard)]
            demo = _Demo(producer, freshness, wallboard)
            _print_where(out, endpoints, emulator.base_url, producer, prefix, wallboard.url)
            while not all(t.done() for t in tasks):
                done, _ = await asyncio.wait(tasks, timeout=summary_every_s)
                if any(t.done() and t.exception() for t in done):
                    stop.set()  # one part failed: stop the others, then raise
                _print_summary(out, demo.report())
            await asyncio.gather(*tasks)
            return demo.report()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await wallboard.aclose()


def _config(endpoints: Endpoints, api_url: str, spec_path: Path, prefix: str) -> ProducerConfig:
    return ProducerConfig(
        load_spec(spec_path),
        GenesysSettings(
            client_id=DEMO_CLIENT_ID, client_secret=SecretStr(DEMO_CLIENT_SECRET), api_url=api_url
        ),
        KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers),
        RegistrySettings(url=endpoints.schema_registry_url),
        ProducerSettings(topic_prefix=prefix, partitions=3, ops_port=0, ops_host="127.0.0.1"),
    )


_SECRET = "demo-dashboard-secret"  # noqa: S105 - the in-process demo's wallboard only


def _workers(
    endpoints: Endpoints, prefix: str, wallboard_url: str
) -> tuple[FreshnessWorker, DashboardWorker]:
    kafka = KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers)
    registry = RegistrySettings(url=endpoints.schema_registry_url)
    # The local broker joins groups after half the session timeout: keep it short.
    worker = WorkerSettings(
        topic_prefix=prefix, session_timeout_ms=2000, ops_port=0, ops_host="127.0.0.1"
    )
    freshness = FreshnessWorker(FreshnessConfig(kafka, registry, worker, report_interval_s=5.0))
    push = DashboardSettings(
        url=f"{wallboard_url}/api/push", secret=SecretStr(_SECRET), push_interval_s=1.0
    )
    return freshness, DashboardWorker(DashboardConfig(kafka, registry, worker, push))


async def _wait_until_ready(service: ProducerService) -> None:
    """Until the producer created its topics (the workers read them) and serves ops."""
    while not _started(service):  # noqa: ASYNC110 - the service sets no event for this
        await asyncio.sleep(0.05)


def _started(service: ProducerService) -> bool:
    serving = service.ops is not None and bool(service.ops.url)
    topics = not any("not created" in reason for reason in service.readiness())
    return serving and topics and service.stats().channels > 0


def _print_where(
    out: TextIO,
    endpoints: Endpoints,
    api_url: str,
    service: ProducerService,
    prefix: str,
    wallboard_url: str,
) -> None:
    ops = service.ops.url if service.ops else ""
    out.write(
        f"wallboard          {wallboard_url}   <- open this in a browser\n"
        f"Genesys emulator   {api_url}  (admin: {api_url}/__emulator/state)\n"
        f"producer metrics   {ops}/metrics   readiness: {ops}/readyz\n"
        f"Kafka topics       {prefix}.metrics {prefix}.current {prefix}.audit {prefix}.dlq "
        f"{prefix}.freshness\n"
        f"tail the records   kcat -b {endpoints.bootstrap_servers} -t {prefix}.metrics "
        f"-s value=avro -r {endpoints.schema_registry_url} -C\n"
    )
    out.flush()


def _print_summary(out: TextIO, report: DemoReport) -> None:
    stats = report.producer
    p95 = "-" if report.freshness_p95_s is None else f"{report.freshness_p95_s:.2f}s"
    out.write(
        f"frames {stats.frames:>6}   records {stats.delivered:>7}   in flight {stats.in_flight:>4}"
        f"   DLQ {stats.dead_letters}   gaps {stats.gaps}   channels live "
        f"{stats.channels_live}/{stats.channels}   freshness p95 {p95}   "
        f"wallboard pushes {report.pushes}\n"
    )
    out.flush()
