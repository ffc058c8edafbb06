"""``pipeline local up`` and ``pipeline demo``: the embedded broker, registry and demo.

Both run their broker and registry as child processes in sessions of their own (a terminal's
Ctrl-C reaches only this process, see :mod:`pipeline.local.process`) and stop them last,
after everything that uses them has flushed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline.cli.runner import (
    EXIT_FAILURE,
    add_command,
    add_duration,
    add_workdir,
    report_stop,
    shutdown_for,
)
from pipeline.cli.shutdown import Shutdown, ShutdownTimeoutError
from pipeline.errors import InfrastructureError

__all__ = ["add_parsers", "demo_exit_code", "run_demo", "run_local_up"]

_CHECK_S = 0.5  # how often `local up` checks its children while it waits


def run_local_up(args: argparse.Namespace) -> int:
    """``pipeline local up``: start the broker and registry, print their addresses, wait.

    Raises:
        InfrastructureError: the broker or the registry did not start, or died while up.
    """
    from pipeline.local.stack import LocalStack

    stack = LocalStack(args.workdir)
    with shutdown_for(args) as shutdown:
        shutdown.last_words = lambda: "local up forced to exit: broker and registry killed"
        with stack as endpoints:
            for line in endpoints.as_env_lines():
                print(line, flush=True)
            while not shutdown.wait(_CHECK_S):
                failure = stack.failure()
                if failure is not None:
                    report_stop("local up", shutdown, None, failure)
                    raise InfrastructureError(f"local {failure}")
        code = shutdown.exit_code(healthy=True)
        report_stop("local up", shutdown, code, "broker and registry stopped")
        return code


def run_demo(args: argparse.Namespace) -> int:
    """``pipeline demo [--json]``: local broker + registry, emulator, producer, workers, wallboard.

    Prints the report last (with ``--json``: the report is stdout's only output, one JSON
    document, and the progress lines go to stderr); see :func:`demo_exit_code` for the exit
    code.
    """
    from pipeline.local.smoke import run_smoke
    from pipeline.local.stack import LocalStack
    from pipeline.services.demo import Demo

    out = sys.stderr if args.json else sys.stdout
    stack = LocalStack(args.workdir)
    with shutdown_for(args) as shutdown, stack as endpoints:
        for line in endpoints.as_env_lines():
            print(line, file=out, flush=True)
        smoke = run_smoke(endpoints)
        print(
            f"local broker and registry ok: {smoke.consumed} Avro records round-tripped",
            file=out,
            flush=True,
        )
        demo = Demo(endpoints, out, infrastructure=stack.failure)
        shutdown.last_words = lambda: f"{demo.report().line()} (forced exit)"
        timed_out = None
        try:
            shutdown.run(demo.run)
        except ShutdownTimeoutError as exc:  # the report still comes first, then the cause
            timed_out = str(exc)
        print(demo.report().line(), file=out, flush=True)
    report = demo.report()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2), flush=True)
    causes = [cause for cause in (report.problem, timed_out) if cause]
    if causes:
        print(f"error: {'; then '.join(causes)}", file=sys.stderr)
    return demo_exit_code(bool(causes), report.flowed, shutdown)


def demo_exit_code(failed: bool, flowed: bool, shutdown: Shutdown) -> int:
    """The demo's exit code.

    Args:
        failed: a part failed, or records were never acknowledged.
        flowed: records reached Kafka and the wallboard.
        shutdown: what stopped the run.

    Returns:
        1 when something failed, or when ``--duration`` ended a run in which nothing flowed
        (the demo exists to show the flow); otherwise 0, or 130 after Ctrl-C — also when
        Ctrl-C came before anything flowed: stopping early is not a failure.
    """
    if failed or (not flowed and shutdown.signal is None):
        return EXIT_FAILURE
    return shutdown.exit_code(healthy=True)


def add_parsers(commands: Any) -> None:
    """Add ``local up`` and ``demo`` to the subcommands."""
    local = add_command(commands, "local", "local infrastructure for tests and the demo")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = add_command(
        local_commands,
        "up",
        "start a local Kafka broker and schema registry; print their addresses",
        long=True,
    )
    add_workdir(up)
    add_duration(up)
    up.set_defaults(handler=run_local_up)

    demo = add_command(commands, "demo", "run the demo on the embedded local stack", long=True)
    demo.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON document on stdout (progress goes to stderr)",
    )
    add_workdir(demo)
    add_duration(demo, "stop after SECONDS (default: until Ctrl-C)")
    demo.set_defaults(handler=run_demo)
