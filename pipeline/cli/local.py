"""``pipeline local up`` and ``pipeline demo``: the embedded broker, registry and demo."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.cli.runner import (
    EXIT_FAILURE,
    EXIT_OK,
    add_duration,
    add_workdir,
    run_until_stopped,
    wait_for_stop,
)

__all__ = ["add_parsers", "run_demo", "run_local_up"]


def run_local_up(args: argparse.Namespace) -> int:
    """``pipeline local up``: start the broker and registry, print their addresses, wait."""
    from pipeline.local.stack import LocalStack

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        wait_for_stop(args.duration)
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """``pipeline demo``: local broker + registry, emulator and producer, until stopped.

    Exits 0 only when records flowed and every one was acknowledged.
    """
    from pipeline.local.smoke import run_smoke
    from pipeline.local.stack import LocalStack
    from pipeline.services.demo import run_demo

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        smoke = run_smoke(endpoints)
        print(
            f"local broker and registry ok: {smoke.consumed} Avro records round-tripped", flush=True
        )
        report = run_until_stopped(
            lambda stop: run_demo(endpoints, stop, sys.stdout), args.duration
        )
    stats = report.producer
    p95 = "-" if report.freshness_p95_s is None else f"{report.freshness_p95_s:.2f}s"
    print(
        f"demo {'healthy' if report.healthy else 'NOT healthy'}: {stats.frames} Genesys events, "
        f"{stats.delivered} records delivered, {stats.in_flight} unacknowledged, "
        f"{stats.dead_letters} dead letters, {stats.gaps} gaps, {report.pushes} wallboard "
        f"pushes ({report.values_on_wallboard} values), freshness p95 {p95}; stopped cleanly",
        flush=True,
    )
    return EXIT_OK if report.healthy else EXIT_FAILURE


def add_parsers(commands: Any) -> None:
    """Add ``local up`` and ``demo`` to the subcommands."""
    local = commands.add_parser("local", help="local infrastructure for tests and the demo")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_commands.add_parser(
        "up", help="start a local Kafka broker and schema registry; print their addresses"
    )
    add_workdir(up)
    add_duration(up)
    up.set_defaults(handler=run_local_up)

    demo = commands.add_parser("demo", help="run the demo on the embedded local stack")
    add_workdir(demo)
    add_duration(demo, "stop after SECONDS (default: until Ctrl-C)")
    demo.set_defaults(handler=run_demo)
