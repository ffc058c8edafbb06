"""The parser with every subcommand, and :func:`main`: parse, log, run, map errors to exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pipeline import __version__
from pipeline.cli import admin, local, servers, services, spec
from pipeline.cli.runner import EXIT_FAILURE, EXIT_INVALID
from pipeline.errors import ConfigError, PipelineError, SubscriptionError
from pipeline.logs import configure_logging

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Genesys Cloud real-time analytics → Kafka."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (local, servers, spec, services, admin):
        group.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0 success, 1 a runtime failure, 2 invalid input or configuration. Each error is printed as
    one line (a subscription file's problems one line each) to stderr.
    """
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, json_format=args.log_format == "json")
    handler: Handler = args.handler
    try:
        return handler(args)
    except SubscriptionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''}; nothing was started", file=sys.stderr)
        return EXIT_INVALID
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
