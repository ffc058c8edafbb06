"""The parser with every subcommand, and :func:`main`: parse, log, run, map errors to exits."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from pipeline import __version__
from pipeline.cli import admin, local, servers, services, spec
from pipeline.cli.redaction import configured_secrets
from pipeline.cli.runner import EXIT_CODES_HELP, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_INVALID
from pipeline.core.redaction import Redactor
from pipeline.errors import ConfigError, PipelineError, SubscriptionError
from pipeline.logs import LOG_FORMATS, LOG_LEVELS, configure_logging, select_logging

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
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"{', '.join(LOG_LEVELS)} (any case; default: $PIPELINE_LOG_LEVEL, else INFO)",
    )
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=LOG_FORMATS,
        help="json or text (default: $PIPELINE_LOG_FORMAT, else text; the image sets json)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (local, servers, spec, services, admin):
        group.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0 success, 1 a runtime failure, 2 invalid input or configuration, 130 stopped by Ctrl-C
    (see ``pipeline --help``). A failure ends with its cause on one line, the last line on
    stderr; an error we did not expect (a bug: not ours, not the operating system's) logs its
    traceback first. Every configured secret (each ``SecretStr`` of the settings models) and
    every URL credential is masked in the log and in these lines.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        choice = select_logging(args.log_level, args.log_format, os.environ)
    except ValueError as exc:
        parser.error(str(exc))  # one usage line and the problem; exit 2
    secrets = configured_secrets()
    configure_logging(choice.level, json_format=choice.json_format, secrets=secrets)
    redactor = Redactor(secrets)

    def say(line: str) -> None:
        print(redactor.redact(line), file=sys.stderr)

    handler: Handler = args.handler
    try:
        return handler(args)
    except SubscriptionError as exc:
        for problem in exc.problems:
            say(problem)
        count = len(exc.problems)
        say(f"{count} problem{'s' if count != 1 else ''}; nothing was started")
        return EXIT_INVALID
    except ConfigError as exc:  # one line per problem (the Kafka settings may have several)
        for line in str(exc).splitlines() or [type(exc).__name__]:
            say(f"error: {' '.join(line.split())}")
        return EXIT_INVALID
    except ValidationError as exc:
        say(f"error: {describe_error(exc)}")
        return EXIT_INVALID
    except PipelineError as exc:
        say(f"error: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:  # a short command (validate, plan, schemas) interrupted
        say("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # the machine's answer (a port in use, a file missing): no bug
        say(f"error: {describe_error(exc)}")
        return EXIT_FAILURE
    except Exception as exc:  # the outermost shell: every failure gets its one line
        log.error("unexpected error", exc_info=exc)
        say(f"error: {describe_error(exc)}")
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
