"""The ``pipeline`` command line.

The only place that reads the environment, configures logging and maps errors to exit codes:
0 success, 1 a runtime failure, 2 invalid input or configuration.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from pipeline import __version__
from pipeline.errors import ConfigError, PipelineError
from pipeline.logs import configure_logging

__all__ = ["main"]

log = logging.getLogger("pipeline.cli")

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
DEFAULT_WORKDIR = Path(".local")

Handler = Callable[[argparse.Namespace], int]


def wait_for_stop(duration: float | None) -> str:
    """Block until SIGINT or SIGTERM arrives, or ``duration`` seconds pass.

    Returns:
        ``"signal"`` or ``"duration"``: why it returned.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return "signal" if stop.wait(duration) else "duration"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_local_up(args: argparse.Namespace) -> int:
    """``pipeline local up``: start the broker and registry, print their addresses, wait."""
    from pipeline.local.stack import LocalStack

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        wait_for_stop(args.duration)
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """``pipeline demo``: the local stack plus a round-trip through it, until stopped."""
    from pipeline.local.smoke import run_smoke
    from pipeline.local.stack import LocalStack

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        result = run_smoke(endpoints)
        print(
            f"round-trip ok: {result.produced} Avro records produced to {result.topic} and "
            f"{result.consumed} read back (schema id {result.schema_id}) in "
            f"{result.seconds:.2f}s",
            flush=True,
        )
        if args.duration != 0:
            print("local broker and registry are up; Ctrl-C to stop", flush=True)
            wait_for_stop(args.duration)
    print("stopped cleanly", flush=True)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Genesys Cloud real-time analytics → Kafka."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser("local", help="local infrastructure for tests and the demo")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_commands.add_parser(
        "up", help="start a local Kafka broker and schema registry; print their addresses"
    )
    _add_workdir(up)
    up.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    up.set_defaults(handler=run_local_up)

    demo = commands.add_parser("demo", help="run the demo on the embedded local stack")
    _add_workdir(demo)
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after SECONDS (0: stop right after the round-trip; default: until Ctrl-C)",
    )
    demo.set_defaults(handler=run_demo)
    return parser


def _add_workdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="logs and registry data go here (default: .local)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, json_format=args.log_format == "json")
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
