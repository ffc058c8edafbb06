"""``pipeline watch``, ``pipeline produce`` and ``pipeline worker``: the long-running
services, each until SIGINT, SIGTERM or ``--duration`` (see :mod:`pipeline.cli.shutdown`),
ending with a one-line summary."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from pipeline.cli.runner import add_command, add_duration, run_service
from pipeline.errors import ConfigError

__all__ = ["add_parsers", "parse_shard", "run_produce", "run_watch", "run_worker"]

log = logging.getLogger(__name__)


def parse_shard(text: str) -> tuple[int, int]:
    """``i/N`` → (i, N), with 0 ≤ i < N.

    Raises:
        argparse.ArgumentTypeError: not ``i/N``, or i out of range.
    """
    index, _, count = text.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/N, e.g. 0/2, not {text!r}") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < N")
    return shard, shards


def run_watch(args: argparse.Namespace) -> int:
    """``pipeline watch FILE``: stream one shard's channels, one JSON line per event."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.services.watch import watch
    from pipeline.settings import GenesysSettings

    spec = load_spec(args.file)
    settings = GenesysSettings()
    settings.require_credentials()
    api_base = settings.api_base(spec.genesys.region, spec.genesys.api_url)
    shard, shards = args.shard
    printed: list[object] = []  # the events written to stdout (counted, not kept)

    async def body(stop: asyncio.Event) -> None:
        await watch(
            spec,
            api_base,
            settings.client_id,
            settings.client_secret,
            shard=shard,
            shards=shards,
            stop=stop,
            on_event=lambda: printed.append(None),
        )

    # The summary goes to the log (stderr): stdout is the JSON lines.
    return run_service("watch", args, body, lambda: f"{len(printed)} events printed")


def run_produce(args: argparse.Namespace) -> int:
    """``pipeline produce FILE [--shard i/N]``: the producer service, until SIGINT/SIGTERM."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.services.producer import ProducerConfig, ProducerService
    from pipeline.settings import (
        GenesysSettings,
        KafkaSettings,
        ProducerSettings,
        RegistrySettings,
    )

    spec = load_spec(args.file)
    genesys = GenesysSettings()
    genesys.require_credentials()
    genesys.api_base(spec.genesys.region, spec.genesys.api_url)  # refuse plain HTTP up front
    shard, shards = args.shard
    config = ProducerConfig(
        spec, genesys, KafkaSettings(), RegistrySettings(), ProducerSettings(), shard, shards
    )
    service = ProducerService(config)

    def details() -> str:
        s = service.stats()
        return (
            f"{s.frames} Genesys events, {s.delivered} records delivered, {s.in_flight} "
            f"unacknowledged, {s.dead_letters} dead letters, {s.gaps} gaps"
        )

    # Records left unacknowledged at the end are a failure: the run did not deliver them.
    return run_service(
        "produce", args, service.run, details, lambda: service.stats().in_flight == 0
    )


def run_worker(args: argparse.Namespace) -> int:
    """``pipeline worker freshness|dashboard FILE``: a consumer worker, until SIGINT/SIGTERM.

    Raises:
        ConfigError: the dashboard worker without ``DASHBOARD_SECRET``.
    """
    from pipeline.core.subscription.spec import load_spec
    from pipeline.settings import KafkaSettings, RegistrySettings, WorkerSettings

    load_spec(args.file)  # the same file as the producer's: refuse a broken one early
    kafka, registry, worker = KafkaSettings(), RegistrySettings(), WorkerSettings()
    if args.kind == "freshness":
        from pipeline.services.freshness_worker import FreshnessConfig, FreshnessWorker

        freshness = FreshnessWorker(FreshnessConfig(kafka, registry, worker))
        sample = freshness.metrics.registry.get_sample_value

        def checked() -> str:
            records = sample("genesys_pipeline_freshness_records_total", {"topic": "metrics"}) or 0
            audits = sample("genesys_pipeline_freshness_records_total", {"topic": "audit"}) or 0
            reports = sample("genesys_pipeline_freshness_reports_published_total") or 0
            return (
                f"{records:.0f} metric records and {audits:.0f} audit records read, "
                f"{reports:.0f} freshness reports published"
            )

        return run_service("worker freshness", args, freshness.run, checked)
    from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
    from pipeline.settings import DashboardSettings

    dashboard = DashboardSettings()
    if not dashboard.secret.get_secret_value():
        raise ConfigError("set DASHBOARD_SECRET: pushes are signed with HMAC-SHA256")
    pusher = DashboardWorker(DashboardConfig(kafka, registry, worker, dashboard))

    def pushed() -> str:
        m = pusher.metrics
        return (
            f"{m.records_in} values read, {m.values_out} pushed, {pusher.rejected} batches "
            f"rejected, {pusher.values.pending} keys not pushed yet"
        )

    return run_service("worker dashboard", args, pusher.run, pushed)


def add_parsers(commands: Any) -> None:
    """Add ``watch``, ``produce`` and ``worker`` to the subcommands."""
    watch = add_command(
        commands, "watch", "stream one shard's notifications as JSON lines (no Kafka)", long=True
    )
    _add_stream_args(watch)
    watch.set_defaults(handler=run_watch)
    produce = add_command(
        commands,
        "produce",
        "run the producer service: Genesys notifications → Avro records in Kafka",
        long=True,
    )
    _add_stream_args(produce)
    produce.set_defaults(handler=run_produce)
    worker = add_command(
        commands,
        "worker",
        "run a consumer worker: freshness checks or the dashboard sync",
        long=True,
    )
    worker.add_argument("kind", choices=["freshness", "dashboard"])
    worker.add_argument("file", type=Path, help="the subscription file (validated)")
    add_duration(worker)
    worker.set_defaults(handler=run_worker)


def _add_stream_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/N (default 0/1)")
    add_duration(parser)
