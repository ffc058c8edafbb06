"""How a command stops: SIGINT, SIGTERM, ``--duration``, the shutdown deadline, a forced exit.

Theory of operation
-------------------
A terminal's Ctrl-C sends SIGINT to the whole foreground process group; ``kill``, Docker and
Kubernetes send SIGTERM to the process. Either one is a *stop request*; so is the end of
``--duration``. On the first request the command stops its work, flushes, prints its report
and exits. The shutdown deadline (``PIPELINE_SHUTDOWN_TIMEOUT_S``, 20 s by default) starts
with the request, and a hang during shutdown is impossible:

- Signals are caught at C level and written to a socket (``signal.set_wakeup_fd``) that a
  watcher thread reads, so a request is seen even while the main thread is stuck in a
  blocking call (a Python-level handler would run only once that call returns).
- The async body (:meth:`Shutdown.run`) has three quarters of the deadline to return after
  the request. Past that *soft* deadline every task still pending is logged with the line it
  waits on, the body is cancelled, and :class:`ShutdownTimeoutError` is raised: the command
  prints its report and exits 1.
- At the full deadline (the loop itself is stuck, or cancelling did not help), or on a second
  signal, the watcher thread forces the exit: it logs what the main thread is doing, prints
  the command's last words (:attr:`Shutdown.last_words`), SIGKILLs the process groups of our
  child processes (:func:`pipeline.local.process.kill_children`) and calls ``os._exit``:
  1 past the deadline, 128 + the signal's number after a second signal (130 for Ctrl-C,
  143 for SIGTERM), as shells report a process killed by that signal.

Exit codes after a stop request are :meth:`Shutdown.exit_code`'s: a healthy run exits 0
after SIGTERM or ``--duration`` (SIGTERM is how an orchestrator stops a service: a clean
stop is a success), and 130 after SIGINT (a user's interrupt, reported as shells do); an
unhealthy run exits 1 either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, Final, TypeVar

from pipeline.errors import PipelineError
from pipeline.local.process import kill_children

__all__ = [
    "EXIT_INTERRUPTED",
    "SOFT_SHARE",
    "Shutdown",
    "ShutdownTimeoutError",
    "pending_tasks",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_INTERRUPTED: Final = 128 + signal.SIGINT
"""130: stopped by Ctrl-C, as shells report it."""
SOFT_SHARE: Final = 0.75
"""The share of the deadline the async body gets before it is cancelled."""
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
_WATCHED: Final = frozenset(int(s) for s in _SIGNALS)
_CLOSE: Final = b"\x00"  # not a signal number: the watcher thread ends
_NUDGE: Final = b"\xff"  # not a signal number: the watcher recomputes its timeout


class ShutdownTimeoutError(PipelineError):
    """The command did not finish within its shutdown deadline (pending work was cancelled)."""


class Shutdown:
    """Stop requests and the shutdown deadline of one command (see the module docstring).

    Use it as a context manager around everything the command does, including starting and
    stopping child processes, so the deadline covers all of it::

        with Shutdown(20.0, args.duration) as shutdown, LocalStack(workdir) as endpoints:
            result = shutdown.run(body)          # body(stop: asyncio.Event)
        return shutdown.exit_code(healthy)

    Signal handling needs the main thread: elsewhere (tests calling ``main`` from a thread)
    only ``duration`` and the deadline apply.

    Args:
        timeout_s: the shutdown deadline, in seconds after the first stop request.
        duration_s: ask to stop after this many seconds (None: only on a signal).

    Attributes:
        last_words: returns what to print on a forced exit (the command's report as it
            stands); called from the watcher thread, so it must only read.
    """

    def __init__(self, timeout_s: float, duration_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.duration_s = duration_s
        self.last_words: Callable[[], str] | None = None
        self.signal: signal.Signals | None = None
        self.reason: str | None = None
        self.requested = threading.Event()
        self._requested_at: float | None = None
        self._entered = time.monotonic()
        self._work_started: float | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Shutdown:
        self._entered = time.monotonic()
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._sockets = (reader, writer)
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, _ignore) for s in _SIGNALS}
            self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="shutdown-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sockets is None:
            return
        reader, writer = self._sockets
        if self._previous:
            signal.set_wakeup_fd(self._previous_fd)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous = {}
        with contextlib.suppress(OSError):
            writer.send(_CLOSE)
        if self._thread is not None:
            self._thread.join()
        reader.close()
        writer.close()
        self._sockets = None

    # ------------------------------------------------------------------ the command's side
    def request(self, reason: str) -> None:
        """Ask the command to stop (what a signal or the end of ``duration`` does).

        Args:
            reason: ``SIGINT``, ``SIGTERM``, ``duration``, or why the command stops itself.
        """
        with self._lock:
            if self.requested.is_set():
                return
            self.reason = reason
            self._requested_at = time.monotonic()
            self.requested.set()
            loop, stop = self._loop, self._stop
        log.info("stopping (%s); shutdown deadline %g s", reason, self.timeout_s)
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop just closed: nothing to stop
                loop.call_soon_threadsafe(stop.set)
        self._nudge()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until a stop is requested, at most ``timeout_s``; True once requested.

        The ``duration`` clock starts with the first call of this or :meth:`run`.
        """
        self._begin()
        return self.requested.wait(timeout_s)

    def run(self, body: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
        """Run ``body(stop)`` on a new event loop; ``stop`` is set by the first stop request.

        A body that sets ``stop`` itself (one of its parts failed) gets the same deadline
        to finish as after a signal.

        Returns:
            What ``body`` returned.

        Raises:
            ShutdownTimeoutError: after a stop request, ``body`` did not return within the
                soft deadline; it was cancelled, and what was pending has been logged.
        """
        self._begin()
        return asyncio.run(self._supervise(body))

    def exit_code(self, healthy: bool) -> int:
        """The exit code of a run that ended (see the module docstring).

        Args:
            healthy: the run itself went well (the command's own verdict).

        Returns:
            1 when not healthy; else 130 after SIGINT and 0 otherwise.
        """
        if not healthy:
            return 1
        return EXIT_INTERRUPTED if self.signal is signal.SIGINT else 0

    def describe_stop(self) -> str:
        """How the run ended, for summaries: ``by SIGINT after 12 s``, ``after --duration 30 s``."""
        ran = time.monotonic() - self._entered
        if self.signal is not None:
            return f"by {self.signal.name} after {ran:.0f} s"
        if self.reason == "duration":
            return f"after --duration {self.duration_s:g} s"
        return f"after {ran:.0f} s"

    # ------------------------------------------------------------------ the loop's side
    async def _supervise(self, body: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self.requested.is_set():
                stop.set()
        task = asyncio.create_task(body(stop), name="command")
        waiter = asyncio.create_task(stop.wait(), name="stop-request")
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                self.request("the command is stopping itself")  # no-op after a signal
                await self._finish(task)
            return task.result()
        finally:
            waiter.cancel()
            with self._lock:
                self._loop = self._stop = None

    async def _finish(self, task: asyncio.Task[T]) -> None:
        """Give ``task`` the rest of the soft deadline; past it, log, cancel and raise."""
        soft_s = self.timeout_s * SOFT_SHARE
        done, _ = await asyncio.wait({task}, timeout=self._remaining(soft_s))
        if done:
            return
        pending = pending_tasks()
        log.error(
            "shutdown did not finish within %g s; cancelling what is still pending:\n%s",
            soft_s,
            "\n".join(f"  {line}" for line in pending) or "  (no task)",
        )
        task.cancel()
        # Cancelling may itself hang (a task that swallows it): the watcher thread's hard
        # deadline ends the process then.
        await asyncio.wait({task}, timeout=self._remaining(self.timeout_s))
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()  # retrieved: the timeout is what this run failed with
        raise ShutdownTimeoutError(
            f"shutdown did not finish within {soft_s:g} s "
            f"(PIPELINE_SHUTDOWN_TIMEOUT_S={self.timeout_s:g}); what was still pending was "
            "cancelled (listed in the log)"
        )

    def _remaining(self, budget_s: float) -> float:
        started = self._requested_at if self._requested_at is not None else time.monotonic()
        return max(0.0, started + budget_s - time.monotonic())

    def _begin(self) -> None:
        with self._lock:
            if self._work_started is None:
                self._work_started = time.monotonic()
        self._nudge()

    # ------------------------------------------------------------------ the watcher thread
    def _nudge(self) -> None:
        """Make the watcher recompute its timeout (a request or the work's start moved it)."""
        if self._sockets is not None and threading.current_thread() is not self._thread:
            with contextlib.suppress(OSError):
                self._sockets[1].send(_NUDGE)

    def _watch(self) -> None:
        if self._sockets is None:
            return
        reader = self._sockets[0]
        while True:
            readable, _, _ = select.select([reader], [], [], self._next_timeout())
            if readable:
                try:
                    data = reader.recv(64)
                except BlockingIOError:
                    continue
                if not data or _CLOSE[0] in data:
                    return
                for signum in data:
                    if signum in _WATCHED:
                        self._on_signal(signal.Signals(signum))
            elif not self.requested.is_set():
                if self._duration_left() == 0.0:
                    self.request("duration")
            elif self._remaining(self.timeout_s) == 0.0:
                self._force(1, f"shutdown deadline of {self.timeout_s:g} s passed")

    def _next_timeout(self) -> float | None:
        if self.requested.is_set():
            return self._remaining(self.timeout_s)
        return self._duration_left()

    def _duration_left(self) -> float | None:
        with self._lock:
            started = self._work_started
        if self.duration_s is None or started is None:
            return None
        return max(0.0, started + self.duration_s - time.monotonic())

    def _on_signal(self, signum: signal.Signals) -> None:
        if self.requested.is_set():
            self._force(128 + signum, f"{signum.name} during shutdown: exiting now")
        self.signal = signum
        log.info("received %s", signum.name)
        self.request(signum.name)

    def _force(self, code: int, why: str) -> None:
        """Log, print the last words, kill our children, exit now (never returns)."""
        try:
            log.error("%s; forcing the exit (code %d)", why, code)
            if code == 1:
                _log_stuck(self._loop)
            if self.last_words is not None:
                with contextlib.suppress(Exception):
                    print(self.last_words(), flush=True)
            killed = kill_children()
            if killed:
                log.error("killed child processes %s", ", ".join(map(str, killed)))
            for handler in logging.getLogger().handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            os._exit(code)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the C-level one already wrote the signal to the socket."""


def pending_tasks(loop: asyncio.AbstractEventLoop | None = None) -> list[str]:
    """One line per task of ours still pending (its coroutine and where it waits), plus a
    count of the tasks of the standard library and installed packages (those are awaited by
    ours, or idle helpers).

    Args:
        loop: the loop to inspect (default: the running one); from another thread this reads
            a loop it does not own, which is only good enough for a diagnostic.

    Returns:
        E.g. ``DashboardWorker.run waiting at .../aiokafka/consumer/group_coordinator.py:412
        in commit_offsets``.
    """
    try:
        tasks = list(asyncio.all_tasks(loop))
    except RuntimeError:  # the set changed size while another thread iterated it
        return ["(the tasks changed while being listed)"]
    current = None if loop is not None else asyncio.current_task()
    ours, theirs = [], 0
    for task in tasks:
        if task is current or task.done():
            continue
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if frame is None or frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
            theirs += 1
            continue
        name = getattr(coro, "__qualname__", repr(coro))
        ours.append(f"{name} waiting at {_where(coro)}")
    ours.sort()
    if theirs:
        ours.append(f"and {theirs} more of the libraries' own (aiokafka, aiohttp, asyncio ...)")
    return ours


def _where(coro: object) -> str:
    """Where an await chain waits: its innermost frame outside asyncio itself."""
    where = "(no frame)"
    for _ in range(100):  # a chain is short; the bound only guards against a cycle
        if coro is None:
            break
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and not frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
            code = frame.f_code
            where = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _log_stuck(loop: asyncio.AbstractEventLoop | None) -> None:
    """What the process is doing: the main thread's stack and the loop's pending tasks."""
    main = threading.main_thread().ident
    frame = sys._current_frames().get(main) if main is not None else None
    if frame is not None:
        stack = "".join(traceback.format_stack(frame)[-8:])
        log.error("the main thread is at:\n%s", stack.rstrip())
    if loop is not None:
        lines = pending_tasks(loop)
        log.error("tasks still pending:\n%s", "\n".join(f"  {line}" for line in lines))
