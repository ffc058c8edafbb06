"""What every long-running command shares: the exit codes, how it stops, its summary line,
and the shared flags."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from pipeline.cli.shutdown import EXIT_INTERRUPTED, Shutdown

__all__ = [
    "DEFAULT_WORKDIR",
    "EXIT_CODES_HELP",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "SHORT_EXIT_CODES_HELP",
    "add_command",
    "add_duration",
    "add_workdir",
    "report_stop",
    "run_service",
    "shutdown_for",
]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
"""Success; a runtime failure; invalid input or configuration."""
DEFAULT_WORKDIR = Path(".local")
"""Where ``local up`` and ``demo`` keep logs and registry data."""

EXIT_CODES_HELP: Final = f"""\
exit codes:
  {EXIT_OK:<4} success; also a healthy run stopped by SIGTERM or --duration: SIGTERM is how
       Docker, Kubernetes and systemd stop a service, so a clean stop is a success
  {EXIT_FAILURE:<4} failure: the run was unhealthy or a part of it failed (the cause is the
       last line on stderr), or shutdown took longer than PIPELINE_SHUTDOWN_TIMEOUT_S
       (default 20 s; what was still pending is logged)
  {EXIT_INVALID:<4} invalid usage or configuration; nothing was started
  {EXIT_INTERRUPTED:<4} stopped by Ctrl-C (SIGINT) and the run was healthy: shells report an
       interrupt this way, so a script can tell it from a finished run
Ctrl-C or SIGTERM, to the process or to its whole process group, stops the command: it
flushes, prints its report (demo) or a one-line summary, and exits within the shutdown
deadline; its child processes (the local broker and registry) stop last and never outlive
it. A second Ctrl-C exits at once with {EXIT_INTERRUPTED} (a second SIGTERM: 143), children
killed."""


SHORT_EXIT_CODES_HELP: Final = f"""\
exit codes:
  {EXIT_OK:<4} success
  {EXIT_FAILURE:<4} failure: the command could not do its work (a registry that does not answer,
       a contract problem); the cause is on stderr, or in the JSON with --json
  {EXIT_INVALID:<4} invalid usage, configuration or input (a subscription file's problems, one per
       line); nothing was changed
  {EXIT_INTERRUPTED:<4} interrupted by Ctrl-C (SIGINT)"""


def add_command(
    commands: Any, name: str, summary: str, *, long: bool = False
) -> argparse.ArgumentParser:
    """Add a subcommand with its one-line summary (its ``help`` and ``description``) and its
    exit codes in the help's epilog.

    Args:
        commands: the subparsers action (``parser.add_subparsers()``).
        name: the command's name.
        summary: what it does, one line.
        long: a long-running command (services, servers): its epilog also says how it stops.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        epilog=EXIT_CODES_HELP if long else SHORT_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def shutdown_for(args: argparse.Namespace) -> Shutdown:
    """A :class:`Shutdown` with ``PIPELINE_SHUTDOWN_TIMEOUT_S`` and the command's ``--duration``.

    Raises:
        pydantic.ValidationError: the timeout is not a positive number (reported as a
            configuration error).
    """
    from pipeline.settings import ShutdownSettings

    return Shutdown(ShutdownSettings().shutdown_timeout_s, getattr(args, "duration", None))


def report_stop(command: str, shutdown: Shutdown, code: int | None, details: str) -> None:
    """Log the one-line summary of a run that ended: what stopped it, what it did, the code.

    Args:
        command: e.g. ``produce`` or ``worker dashboard``.
        shutdown: the run's stop requests.
        code: the exit code about to be returned; None when it failed with an error (whose
            line follows).
        details: what the run did, e.g. ``120 frames, 480 records delivered``.
    """
    ending = "failed" if code is None else f"exit {code}"
    level = logging.INFO if code in (EXIT_OK, EXIT_INTERRUPTED) else logging.ERROR
    log.log(level, "%s stopped %s: %s; %s", command, shutdown.describe_stop(), details, ending)


def run_service(
    command: str,
    args: argparse.Namespace,
    body: Callable[[asyncio.Event], Coroutine[Any, Any, object]],
    details: Callable[[], str],
    healthy: Callable[[], bool] = lambda: True,
) -> int:
    """Run a service until it is told to stop, then log its summary; returns the exit code.

    Args:
        command: the command's name in the summary.
        args: the parsed command line (``--duration``).
        body: the service, ``body(stop)``.
        details: what the service did so far, one line (also printed on a forced exit).
        healthy: the service's verdict once it returned (e.g. nothing left unacknowledged).

    Raises:
        Exception: whatever the service raised (mapped to an exit code by ``main``).
    """
    with shutdown_for(args) as shutdown:
        shutdown.last_words = lambda: f"{command} forced to exit: {details()}"
        try:
            shutdown.run(body)
        except BaseException:
            report_stop(command, shutdown, None, details())
            raise
        code = shutdown.exit_code(healthy())
        report_stop(command, shutdown, code, details())
        return code


def add_workdir(parser: argparse.ArgumentParser) -> None:
    """Add ``--workdir`` (default ``.local``)."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="logs and registry data go here (default: .local)",
    )


def add_duration(parser: argparse.ArgumentParser, help_text: str = "stop after SECONDS") -> None:
    """Add ``--duration SECONDS`` (default: until SIGINT or SIGTERM)."""
    parser.add_argument("--duration", type=float, default=None, help=help_text)
