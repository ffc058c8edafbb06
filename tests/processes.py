"""``pipeline`` commands as real processes: output collected as it comes, signals to the
process or to its whole group, and the process tree read from ``/proc``.

A command runs in a session of its own by default, like a terminal's foreground process
group: ``interrupt(SIGINT, group=True)`` is then exactly what Ctrl-C does (and never reaches
pytest). Output is read by two threads into lists, so a test polls for a line
(:meth:`PipelineProcess.wait_for`) instead of blocking on a pipe.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest

from tests.polling import until_sync

__all__ = ["PipelineProcess", "descendants", "is_alive", "pipeline_env"]

_BROUGHT = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")


def pipeline_env(**changes: str) -> dict[str, str]:
    """This environment without the bring-your-own Kafka variables, plus ``changes``."""
    env = {k: v for k, v in os.environ.items() if k not in _BROUGHT}
    env.update(changes)
    return env


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'.
    return text.rsplit(")", 1)[1].split()


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...), from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                parents.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class PipelineProcess:
    """``python -m pipeline ARGS`` as a context manager; killed (group and all) on exit.

    Args:
        args: the command line after ``pipeline``.
        env: the environment (default: :func:`pipeline_env`).
        own_session: start it in a new session (its own process group), like a terminal does.
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        own_session: bool = True,
    ) -> None:
        self.args = [str(a) for a in args]
        self.env = dict(env if env is not None else pipeline_env())
        self.own_session = own_session
        self.out: list[str] = []
        self.err: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self.signalled_at: float | None = None

    def __enter__(self) -> PipelineProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            start_new_session=self.own_session,
        )
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            reader = threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc()
        if proc.poll() is None:
            left = descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                if self.own_session:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    @property
    def pid(self) -> int:
        """The command's pid."""
        return self._proc().pid

    @property
    def stdout(self) -> str:
        """Everything written to stdout so far."""
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return "".join(self.err)

    def wait_for(
        self, pattern: str | Callable[[str], bool], timeout_s: float, *, stream: str = "out"
    ) -> str:
        """Poll until a line of ``stream`` matches; returns the first matching line.

        Args:
            pattern: a regular expression searched in each line, or a predicate.
            timeout_s: how long to wait (pass ``seconds(n)``).
            stream: ``out`` or ``err``.

        Raises:
            pytest.fail.Exception: no such line in time, or the process ended first (with
                the output so far).
        """
        lines = self.out if stream == "out" else self.err
        matches = (
            pattern if callable(pattern) else (lambda line: re.search(pattern, line) is not None)
        )
        found: list[str] = []

        def seen() -> bool:
            found.extend(line for line in list(lines) if matches(line))
            if not found and self._proc().poll() is not None:
                pytest.fail(f"pipeline {' '.join(self.args)} ended early\n{self.output()}")
            return bool(found)

        until_sync(seen, timeout_s, message=f"std{stream} of pipeline {' '.join(self.args)}")
        return found[0]

    def interrupt(self, signum: signal.Signals, *, group: bool) -> None:
        """Send ``signum`` to the process, or to its whole process group (like a terminal)."""
        self.signalled_at = time.monotonic()
        if group:
            os.killpg(os.getpgid(self.pid), signum)
        else:
            os.kill(self.pid, signum)

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit; returns the exit code.

        Raises:
            pytest.fail.Exception: still running after ``timeout_s`` (with its output).
        """
        proc = self._proc()
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout_s:.0f} s\n{self.output()}")
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def seconds_since_signal(self) -> float:
        """Seconds from the last :meth:`interrupt` to now."""
        assert self.signalled_at is not None, "no signal was sent"
        return time.monotonic() - self.signalled_at

    def output(self, lines: int = 60) -> str:
        """The end of stdout and stderr, for failure messages."""
        out = "".join(self.out[-lines:])
        err = "".join(self.err[-lines:])
        return f"--- stdout (end) ---\n{out}--- stderr (end) ---\n{err}"

    def _proc(self) -> subprocess.Popen[str]:
        assert self.proc is not None, "not started"
        return self.proc


def _collect(stream: IO[str] | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in stream:
        lines.append(line)
