"""``pipeline demo``: the whole pipeline on the embedded default, with a live summary.

Starts, inside this process on 127.0.0.1, the Genesys emulator with a busy simulated contact
center, the producer streaming ``examples/subscription.yaml`` into the local broker and
registry the caller started, the freshness and dashboard workers, and the reference
wallboard the dashboard worker pushes to. Prints where to look and a summary line every few
seconds; on stop (Ctrl-C, SIGTERM or ``duration``) the caller prints a report and says whether
the pipeline was healthy. A part that fails, or a local broker or registry that dies, stops
the demo with that cause in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from pipeline.core.subscription.availability import AvailabilityReport
from pipeline.core.subscription.spec import load_spec
from pipeline.dashboard.wallboard import Wallboard
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig
from pipeline.emulator.server import Emulator
from pipeline.errors import InfrastructureError, PipelineError
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

__all__ = ["Demo", "DemoReport"]

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"

_INFRASTRUCTURE_CHECK_S = 0.5  # how often the local broker and registry are checked


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did: the producer's counts plus the workers' and wallboard's.

    Attributes:
        failure: the first part that failed, and why, on one line (None: none failed).
    """

    producer: ProducerStats
    pushes: int
    values_on_wallboard: int
    freshness_p95_s: float | None
    failure: str | None = None

    @property
    def problem(self) -> str | None:
        """What went wrong: a part failed, or records were never acknowledged (None: nothing)."""
        if self.failure is not None:
            return self.failure
        if self.producer.in_flight:
            return f"{self.producer.in_flight} records were never acknowledged"
        return None

    @property
    def flowed(self) -> bool:
        """Records reached Kafka and the wallboard."""
        return self.producer.delivered > 0 and self.pushes > 0

    @property
    def healthy(self) -> bool:
        """Records flowed, all were acknowledged, and no part failed."""
        return self.flowed and self.problem is None

    def to_dict(self) -> dict[str, object]:
        """The report as JSON-ready data (``pipeline demo --json``): verdict, then counts."""
        return {
            "healthy": self.healthy,
            "flowed": self.flowed,
            "problem": self.problem,
            "producer": asdict(self.producer),
            "pushes": self.pushes,
            "values_on_wallboard": self.values_on_wallboard,
            "freshness_p95_s": self.freshness_p95_s,
        }

    def line(self) -> str:
        """The report as one line: the verdict, then the counts."""
        if self.healthy:
            verdict = "demo healthy"
        elif self.problem is not None:
            verdict = f"demo NOT healthy ({self.problem})"
        else:
            verdict = "demo stopped before records reached Kafka and the wallboard"
        stats = self.producer
        p95 = "-" if self.freshness_p95_s is None else f"{self.freshness_p95_s:.2f}s"
        return (
            f"{verdict}: {stats.frames} Genesys events, {stats.delivered} records delivered, "
            f"{stats.in_flight} unacknowledged, {stats.dead_letters} dead letters, "
            f"{stats.gaps} gaps, {self.pushes} wallboard pushes "
            f"({self.values_on_wallboard} values), freshness p95 {p95}"
        )


class Demo:
    """The emulator, producer, both workers and the wallboard, supervised on one loop.

    Every part runs as a task; a part that fails or ends before ``stop`` stops them all, and
    its cause becomes the report's ``failure``: nothing is swallowed. :meth:`report` may be
    called at any time (a forced exit prints it from another thread).

    Args:
        endpoints: the local broker and registry the caller started.
        out: where the addresses and the periodic summary go.
        spec_path: the subscription file the producer streams.
        summary_every_s: seconds between summary lines.
        infrastructure: returns why the local broker or registry died (None while they run);
            checked every half second, so a dead child ends the demo instead of hanging it.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        out: TextIO,
        *,
        spec_path: Path = EXAMPLE,
        summary_every_s: float = 5.0,
        infrastructure: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.endpoints = endpoints
        self.out = out
        self.spec_path = spec_path
        self.summary_every_s = summary_every_s
        self.infrastructure = infrastructure
        self.failure: str | None = None
        self._recorded: set[str] = set()
        self.producer: ProducerService | None = None
        self.freshness: FreshnessWorker | None = None
        self.wallboard: Wallboard | None = None

    def report(self) -> DemoReport:
        """What the demo did so far (all zeros before it started)."""
        stats = ProducerStats(0, 0, 0, 0, 0, 0, 0)
        if self.producer is not None:
            stats = self.producer.stats()
        pushes = values = 0
        if self.wallboard is not None:
            totals = self.wallboard.state()["totals"]
            pushes, values = totals["pushes"], totals["values_held"]
        p95 = [
            r.p95_seconds
            for r in (self.freshness.latest_reports if self.freshness else ())
            if r.stage == "end_to_end" and r.p95_seconds is not None
        ]
        return DemoReport(stats, pushes, values, max(p95) if p95 else None, self.failure)

    async def run(self, stop: asyncio.Event) -> DemoReport:
        """Run every part until ``stop`` is set or one of them fails; returns the report."""
        prefix = "genesys"
        # A busy contact center: 20 queues, 200 agents, six conversations a minute per
        # queue/media, with an hour of history so the wallboard starts mid-interval.
        # Simulating it (about 1 s) overlaps registering the schemas.
        config = EmulatorConfig(port=0, arrival_rate=6.0, history="PT1H")
        built = asyncio.create_task(asyncio.to_thread(Emulator, config))
        await asyncio.to_thread(register_contract, self.endpoints.schema_registry_url, prefix)
        async with await built as emulator:
            names = {q.id: q.name for q in emulator.center.queues}
            # A well-known secret on 127.0.0.1: the demo is local development by definition.
            self.wallboard = wallboard = Wallboard(
                "127.0.0.1", 0, SecretStr(_SECRET), queue_names=names, insecure_dev_secret=True
            )
            await wallboard.start()
            producer = ProducerService(
                _config(self.endpoints, emulator.base_url, self.spec_path, prefix)
            )
            self.producer = producer
            parts = {
                "local infrastructure": asyncio.create_task(self._watch_infrastructure(stop)),
                "producer": asyncio.create_task(producer.run(stop)),
            }
            try:
                if await self._until_ready(producer, parts, stop):
                    freshness, dashboard = _workers(self.endpoints, prefix, wallboard.url)
                    self.freshness = freshness
                    parts["freshness worker"] = asyncio.create_task(freshness.run(stop))
                    parts["dashboard worker"] = asyncio.create_task(dashboard.run(stop))
                    _print_where(
                        self.out, self.endpoints, emulator.base_url, producer, prefix,
                        wallboard.url,
                    )  # fmt: skip
                    await self._supervise(parts, stop)
            finally:
                stop.set()
                await self._settle(parts)
                await wallboard.aclose()
        return self.report()

    async def _watch_infrastructure(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            failure = self.infrastructure()
            if failure is not None:
                raise InfrastructureError(f"local {failure}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _INFRASTRUCTURE_CHECK_S)

    async def _until_ready(
        self, producer: ProducerService, parts: dict[str, asyncio.Task[None]], stop: asyncio.Event
    ) -> bool:
        """Until the producer created its topics (the workers read them) and serves ops.

        Returns:
            False when ``stop`` came first or a part ended (see :meth:`_supervise`).
        """
        while not _started(producer):
            if stop.is_set() or self._check(parts, stop):
                return False
            await asyncio.sleep(0.05)  # the service sets no event for this
        return True

    async def _supervise(self, parts: dict[str, asyncio.Task[None]], stop: asyncio.Event) -> None:
        """Print a summary every ``summary_every_s`` until ``stop`` or a part ends."""
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set() and not self._check(parts, stop):
                await asyncio.wait(
                    [*parts.values(), stopper],
                    timeout=self.summary_every_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not stop.is_set():
                    _print_summary(self.out, self.report())
        finally:
            stopper.cancel()

    def _check(self, parts: dict[str, asyncio.Task[None]], stop: asyncio.Event) -> bool:
        """True (and ``stop`` set) when a part ended before it was asked to."""
        for name, task in parts.items():
            if task.done() and not stop.is_set():
                self._record(name, task, unexpected=True)
                stop.set()
                return True
        return False

    async def _settle(self, parts: dict[str, asyncio.Task[None]]) -> None:
        """Wait for every part to end (the CLI's shutdown deadline bounds this); keep failures.

        With the local broker or registry dead there is nothing left to flush to: the parts
        are cancelled at once instead of retrying against it until the deadline, and again
        every half second, since a ``finally`` that awaits (a last flush) absorbs a cancel.
        """
        pending = set(parts.values())
        while pending:
            if "local infrastructure" in self._recorded:
                for task in pending:
                    task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_INFRASTRUCTURE_CHECK_S)
        for name, task in parts.items():
            self._record(name, task, unexpected=False)

    def _record(self, name: str, task: asyncio.Task[None], *, unexpected: bool) -> None:
        if task.cancelled() or name in self._recorded:
            return
        exc = task.exception()
        if exc is None and not unexpected:
            return
        self._recorded.add(name)
        cause = f"{name} stopped on its own" if exc is None else f"{name} failed: {_one_line(exc)}"
        # Our own errors say it all in their message; anything else is a bug: keep its trace.
        trace = None if exc is None or isinstance(exc, PipelineError) else exc
        if self.failure is None:
            self.failure = cause
            log.error("%s; stopping the demo", cause, exc_info=trace)
        else:
            log.error("also: %s", cause, exc_info=trace)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n--- log ---", 1)[0].split())
    return text or type(exc).__name__


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
        f"Kafka topics       {prefix}.metrics {prefix}.current.v2 {prefix}.audit {prefix}.dlq "
        f"{prefix}.freshness\n"
        f"tail the records   kcat -b {endpoints.bootstrap_servers} -t {prefix}.metrics "
        f"-s value=avro -r {endpoints.schema_registry_url} -C\n"
        f"{_availability_line(service.availability)}\n"
    )
    out.flush()


def _availability_line(report: AvailabilityReport | None) -> str:
    """The start-up availability check in one line: which metrics answered data."""
    if report is None:
        return "metric data       not checked"
    entries = report.entries
    line = f"metric data       {len(entries) - len(report.missing)} of {len(entries)} subscribed"
    line += " metrics answered data at start-up"
    if report.missing:
        line += " (none: " + ", ".join(f"{e.subscription}/{e.metric}" for e in report.missing) + ")"
    return line


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
