"""Run the emulator on its own event loop in a background thread.

For synchronous callers (the official SDK, pytest fixtures) and for tests whose own loop
must not share time with the server's::

    with EmulatorThread(EmulatorConfig(port=0)) as emulator:
        base_url = emulator.base_url
        emulator.inject(DropSocket(channel_id))

With a :class:`~pipeline.emulator.clock.ManualClock`, a test moves time and then steps::

    clock = ManualClock()
    with EmulatorThread(EmulatorConfig(port=0), clock=clock) as emulator:
        clock.advance(30)
        emulator.step()       # heartbeats due at 30 s are sent before this returns
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from pipeline.emulator.clock import Clock
from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.server import Emulator
from pipeline.emulator.state.faults import Fault

__all__ = ["EmulatorThread"]

T = TypeVar("T")


class EmulatorThread:
    """An :class:`Emulator` served from a daemon thread.

    Args:
        config: the emulator's settings (``port=0`` picks a free port).
        start_timeout: seconds to wait for it to listen.
        clock: the emulator's clock (default: the real time).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        start_timeout: float = 10.0,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or EmulatorConfig(port=0)
        self.clock = clock
        self.start_timeout = start_timeout
        self.emulator: Emulator | None = None
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="genesys-emulator"
        )

    def start(self) -> str:
        """Start serving; returns the base URL."""
        self._thread.start()
        self.emulator = self.call(self._create())
        self.base_url = self.emulator.base_url
        return self.base_url

    async def _create(self) -> Emulator:
        emulator = Emulator(self.config, clock=self.clock)
        await emulator.start()
        return emulator

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.start_timeout)

    def inject(self, fault: Fault) -> None:
        """Inject a fault (see ``state/faults.py``)."""
        self.call(self._running().inject(fault))

    def step(self) -> None:
        """Do one tick's work now, on the emulator's loop: the emulator's, then every socket's.

        For tests that advance a manual clock: when this returns, whatever the new time makes
        due (channel expiry, heartbeats, the close after ``socket_closing``) has been done.
        """
        emulator = self._running()

        async def step() -> None:
            await emulator.step()
            await emulator.step_sockets()

        self.call(step())

    def _running(self) -> Emulator:
        assert self.emulator is not None, "start() first"  # noqa: S101 - programming error
        return self.emulator

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self.emulator is not None:
            self.call(self.emulator.aclose())
            self.emulator = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.start_timeout)
        self._loop.close()

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
