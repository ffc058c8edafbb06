"""``pipeline watch``, ``pipeline produce`` and ``pipeline worker``: the long-running
services, each until SIGINT, SIGTERM or ``--duration``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from pipeline.cli.runner import EXIT_OK, add_duration, run_until_stopped
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

    async def body(stop: asyncio.Event) -> int:
        return await watch(
            spec,
            api_base,
            settings.client_id,
            settings.client_secret,
            shard=shard,
            shards=shards,
            stop=stop,
        )

    printed = run_until_stopped(body, args.duration)
    log.info("watch stopped after %d events", printed)
    return EXIT_OK


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
    shard, shards = args.shard
    config = ProducerConfig(
        spec, genesys, KafkaSettings(), RegistrySettings(), ProducerSettings(), shard, shards
    )

    run_until_stopped(ProducerService(config).run, args.duration)
    return EXIT_OK


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
        run_until_stopped(freshness.run, args.duration)
        return EXIT_OK
    from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
    from pipeline.settings import DashboardSettings

    dashboard = DashboardSettings()
    if not dashboard.secret.get_secret_value():
        raise ConfigError("set DASHBOARD_SECRET: pushes are signed with HMAC-SHA256")
    pusher = DashboardWorker(DashboardConfig(kafka, registry, worker, dashboard))
    run_until_stopped(pusher.run, args.duration)
    return EXIT_OK


def add_parsers(commands: Any) -> None:
    """Add ``watch``, ``produce`` and ``worker`` to the subcommands."""
    watch = commands.add_parser(
        "watch", help="stream one shard's notifications as JSON lines (no Kafka)"
    )
    _add_stream_args(watch)
    watch.set_defaults(handler=run_watch)
    produce = commands.add_parser(
        "produce", help="run the producer service: Genesys notifications → Avro records in Kafka"
    )
    _add_stream_args(produce)
    produce.set_defaults(handler=run_produce)
    worker = commands.add_parser(
        "worker", help="run a consumer worker: freshness checks or the dashboard sync"
    )
    worker.add_argument("kind", choices=["freshness", "dashboard"])
    worker.add_argument("file", type=Path, help="the subscription file (validated)")
    add_duration(worker)
    worker.set_defaults(handler=run_worker)


def _add_stream_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/N (default 0/1)")
    add_duration(parser)
