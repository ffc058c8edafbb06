"""The parser with every subcommand, and :func:`main`: parse, log, run, map errors to exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from pipeline import __version__
from pipeline.cli import admin, local, servers, services, spec
from pipeline.cli.runner import EXIT_CODES_HELP, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_INVALID
from pipeline.errors import ConfigError, PipelineError, SubscriptionError
from pipeline.logs import configure_logging

__all__ = ["build_parser", "describe_error", "main"]

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Genesys Cloud real-time analytics → Kafka.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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

    0 success, 1 a runtime failure, 2 invalid input or configuration, 130 stopped by Ctrl-C
    (see ``pipeline --help``). A failure ends with its cause on one line, the last line on
    stderr; an error we did not expect (a bug: not ours, not the operating system's) logs its
    traceback first.
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
    except ConfigError as exc:  # one line per problem (the Kafka settings may have several)
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {' '.join(line.split())}", file=sys.stderr)
        return EXIT_INVALID
    except ValidationError as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_INVALID
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # a short command (validate, plan, schemas) interrupted
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # the machine's answer (a port in use, a file missing): no bug
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # the outermost shell: every failure gets its one line
        log.error("unexpected error", exc_info=exc)
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def describe_error(exc: BaseException) -> str:
    """One line for an error: its message, or its type when the message is empty.

    A settings error lists each bad variable: ``PIPELINE_SHUTDOWN_TIMEOUT_S: Input should be
    greater than 0``. Other errors we did not raise on purpose are prefixed with their type
    (``OSError: [Errno 98] address already in use``).
    """
    if isinstance(exc, ValidationError):
        prefix = str(exc.title)
        problems = [f"{_variable(prefix, error['loc'])}: {error['msg']}" for error in exc.errors()]
        return "; ".join(problems)
    text = " ".join(str(exc).split())
    if isinstance(exc, PipelineError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _variable(model: str, loc: tuple[int | str, ...]) -> str:
    from pipeline.settings_reference import SETTINGS

    prefixes = {cls.__name__: str(cls.model_config.get("env_prefix", "")) for _, cls in SETTINGS}
    name = "__".join(str(part) for part in loc)
    return f"{prefixes.get(model, '')}{name}".upper() if model in prefixes else name
