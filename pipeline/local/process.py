"""Child processes for local infrastructure: start, wait until ready, capture logs, stop.

Who stops a child, and when:

- Each child runs in a session (and process group) of its own. A terminal's Ctrl-C sends
  SIGINT to its whole foreground process group; were the broker in that group, it would die
  at once, before the services had flushed to it, and they would wait for it forever. So
  only the parent decides when a child stops: after its services are done with it.
- Each child is tied to its parent with ``PR_SET_PDEATHSIG`` on Linux, so a parent killed
  with SIGKILL still leaves no broker or registry behind. The signal fires when the *thread*
  that spawned the child exits, so spawn from a long-lived thread (the main thread in
  practice).
- :meth:`ManagedProcess.stop` sends SIGTERM to the child's process group, then SIGKILL after
  a timeout; :func:`kill_children` SIGKILLs every live child at once, for a forced exit that
  has no time left for a polite stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.errors import InfrastructureError

__all__ = ["ManagedProcess", "free_port", "kill_children", "wait_for_port"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

# Every child started and not yet stopped, for kill_children(): a forced exit from any thread.
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def kill_children() -> list[int]:
    """SIGKILL the process group of every child still running; returns their pids.

    Safe from any thread and at any time (a forced exit calls it just before ``os._exit``);
    it does not wait for them: the kernel reaps them once this process is gone.
    """
    with _live_lock:
        procs = list(_live)
    killed = []
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own group: pgid == pid
            killed.append(proc.pid)
    return killed


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago (callers must cope with a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Return True as soon as ``host:port`` accepts a TCP connection, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class ManagedProcess:
    """A child process whose stdout and stderr go to a log file.

    Args:
        name: a short name for messages ("broker", "registry").
        argv: the command line.
        log_path: where the child's output is written (truncated on start).
        env: environment changes for the child; a None value removes the variable.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str | None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid, or None before start."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child. Raises InfrastructureError if it cannot be executed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        with self.log_path.open("wb") as out:
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,  # out of the terminal's group: see the module doc
                    preexec_fn=_die_with_parent,  # the child is exec'd at once
                )
            except OSError as exc:
                raise InfrastructureError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        with _live_lock:
            _live.add(self._proc)
        log.info("%s started (pid %d), log %s", self.name, self._proc.pid, self.log_path)

    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """The whole log so far (decoded leniently)."""
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until a log line matches ``pattern``.

        Raises:
            InfrastructureError: the child exited or the pattern did not appear in time;
                the message carries the log tail.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if not self.is_running():
                raise InfrastructureError(
                    f"{self.name} exited with code {self.returncode()} before it was ready",
                    self.log_tail(),
                )
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"{self.name} not ready after {timeout:.0f}s", self.log_tail()
                )
            time.sleep(0.05)

    def returncode(self) -> int | None:
        """The exit code, or None while running."""
        return None if self._proc is None else self._proc.poll()

    def failure(self) -> str | None:
        """Why the child is gone although nobody stopped it, or None while it runs.

        Returns:
            E.g. ``broker exited with code -9 (log: .local/broker.log)``; None before start,
            while running and after :meth:`stop`.
        """
        code = self.returncode()
        if code is None:
            return None
        return f"{self.name} exited with code {code} (log: {self.log_path})"

    def stop(self, timeout: float = 5.0, *, kill_is_fine: bool = False) -> int | None:
        """SIGTERM to the child's group, then SIGKILL after ``timeout``; returns the exit code.

        Args:
            timeout: seconds between SIGTERM and SIGKILL.
            kill_is_fine: the child loses nothing when killed (a SIGKILL is then logged at
                INFO, not as a warning).
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                level = logging.INFO if kill_is_fine else logging.WARNING
                log.log(level, "%s did not stop in %.0fs; killing it", self.name, timeout)
                self._signal_group(signal.SIGKILL)
                proc.wait(timeout)
        with _live_lock:
            _live.discard(proc)
        self._proc = None
        log.info("%s stopped (exit %s)", self.name, proc.returncode)
        return proc.returncode

    def _signal_group(self, signum: signal.Signals) -> None:
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
