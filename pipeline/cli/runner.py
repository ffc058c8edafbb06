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
    "add_duration",
    "add_workdir",
    "long_running",
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


def long_running(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a long-running command's help the exit codes and the stop behaviour."""
    parser.epilog = EXIT_CODES_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


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
