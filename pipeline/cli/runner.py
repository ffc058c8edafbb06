"""Running a command until it is told to stop, and the exit codes every command returns."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_WORKDIR",
    "EXIT_FAILURE",
    "EXIT_INVALID",
    "EXIT_OK",
    "add_duration",
    "add_workdir",
    "run_until_stopped",
    "wait_for_stop",
]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
"""Success; a runtime failure; invalid input or configuration."""
DEFAULT_WORKDIR = Path(".local")
"""Where ``local up`` and ``demo`` keep logs and registry data."""

T = TypeVar("T")


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


def run_until_stopped(
    body: Callable[[asyncio.Event], Coroutine[Any, Any, T]], duration: float | None
) -> T:
    """Run ``body(stop)`` on a new loop; ``stop`` is set by SIGINT, SIGTERM or ``duration``.

    Returns:
        What ``body`` returned.
    """

    async def run() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        return await body(stop)

    return asyncio.run(run())


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
