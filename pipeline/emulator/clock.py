"""The emulator's clock, injectable: the real one, or one a test moves by hand.

Everything time-based in the emulator reads one :class:`Clock`: token and channel expiry,
rate-limit windows, heartbeat intervals, the ``socket_closing`` delay, the frame interval and
the simulation's progress. :class:`SystemClock` is the real time. :class:`ManualClock` stands
still until :meth:`ManualClock.advance` moves it, so a test can jump 24 hours in a line instead
of sleeping.

The shell's loops still wake every ``tick_s`` of *real* time (``asyncio.sleep``) and then read
the clock: with a manual clock, a jump takes effect within one tick.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where the emulator reads the time (the names and meanings of the ``time`` module)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def time(self) -> float:
        """Epoch seconds (wall time), for dates the emulator hands out."""
        ...


class SystemClock:
    """The real time: :func:`time.monotonic` and :func:`time.time`."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def time(self) -> float:
        """:func:`time.time`."""
        return time.time()


class ManualClock:
    """A clock that moves only when told to.

    Args:
        epoch: the wall time it starts at, in epoch seconds; defaults to the real time now, so
            dates the emulator hands out (channel ``expires``) look current.
    """

    def __init__(self, epoch: float | None = None) -> None:
        self._epoch = time.time() if epoch is None else epoch
        self._elapsed = 0.0

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._elapsed

    def time(self) -> float:
        """The starting epoch plus the seconds advanced so far."""
        return self._epoch + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, not by {seconds}")
        self._elapsed += seconds
