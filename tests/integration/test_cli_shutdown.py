"""``pipeline.cli.shutdown.Shutdown`` in this process: real signals, real threads, short
deadlines. The same behaviour, seen from outside through real commands, is the fault matrix
in ``tests/system/test_faults_shutdown.py``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.cli.shutdown import Shutdown, ShutdownTimeoutError, pending_tasks
from tests.conftest import seconds


async def _until_stopped(stop: asyncio.Event) -> str:
    await stop.wait()
    return "flushed"


def test_a_signal_sets_stop_and_the_body_finishes() -> None:
    async def body(stop: asyncio.Event) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        return await _until_stopped(stop)

    with Shutdown(timeout_s=5) as shutdown:
        assert shutdown.run(body) == "flushed"
    assert shutdown.signal is signal.SIGTERM
    assert shutdown.exit_code(healthy=True) == 0
    assert shutdown.exit_code(healthy=False) == 1
    assert shutdown.describe_stop().startswith("by SIGTERM after ")


def test_sigint_makes_a_healthy_run_exit_130() -> None:
    with Shutdown(timeout_s=5) as shutdown:
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the handler is ours
        assert shutdown.wait(seconds(5))
    assert shutdown.exit_code(healthy=True) == 130
    assert shutdown.reason == "SIGINT"


def test_the_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    assert before is signal.default_int_handler
    with Shutdown(timeout_s=5):
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_duration_counts_from_the_start_of_the_work() -> None:
    with Shutdown(timeout_s=5, duration_s=0.2) as shutdown:
        assert not shutdown.requested.wait(0.3)  # no clock runs before the work starts
        started = time.monotonic()
        assert shutdown.run(_until_stopped) == "flushed"
    assert 0.15 < time.monotonic() - started < seconds(3)
    assert shutdown.reason == "duration"
    assert shutdown.signal is None
    assert shutdown.exit_code(healthy=True) == 0
    assert shutdown.describe_stop() == "after --duration 0.2 s"


def test_a_body_that_does_not_stop_is_cancelled_at_the_soft_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = []

    async def stubborn(stop: asyncio.Event) -> None:
        await stop.wait()
        try:
            await asyncio.Event().wait()  # a flush that never ends
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with Shutdown(timeout_s=0.8, duration_s=0.1) as shutdown:
        started = time.monotonic()
        with pytest.raises(ShutdownTimeoutError, match=r"did not finish within 0.6 s"):
            shutdown.run(stubborn)
    assert cancelled == [True]
    took = time.monotonic() - started
    assert 0.1 + 0.6 <= took < seconds(3)  # the soft deadline: 3/4 of 0.8 s after the stop
    assert "stubborn waiting at" in caplog.text  # where it waited
    assert "test_cli_shutdown.py" in caplog.text


def test_a_body_that_sets_stop_itself_gets_the_deadline_too() -> None:
    async def failing(stop: asyncio.Event) -> None:
        stop.set()  # a part failed: the body stops the others ...
        await asyncio.Event().wait()  # ... and one of them hangs

    with Shutdown(timeout_s=0.4) as shutdown, pytest.raises(ShutdownTimeoutError):
        shutdown.run(failing)
    assert shutdown.reason == "the command is stopping itself"


def test_pending_tasks_names_ours_and_counts_the_rest() -> None:
    async def parked() -> None:
        await asyncio.Event().wait()

    async def main() -> list[str]:
        ours = asyncio.create_task(parked())
        theirs = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        try:
            return pending_tasks()
        finally:
            ours.cancel()
            theirs.cancel()

    lines = asyncio.run(main())
    assert len(lines) == 2, lines  # main() is the current task: not listed
    assert lines[1] == "and 1 more of the libraries' own (aiokafka, aiohttp, asyncio ...)"
    assert lines[0].startswith("test_pending_tasks_names_ours_and_counts_the_rest.<locals>.")
    assert "parked waiting at " in lines[0]
    assert "test_cli_shutdown.py" in lines[0]


_STUCK = textwrap.dedent(
    """
    import logging, sys, time
    from pipeline.cli.shutdown import Shutdown
    logging.basicConfig(level=logging.INFO)
    with Shutdown(timeout_s=float(sys.argv[1])) as shutdown:
        shutdown.last_words = lambda: "last words: 3 records delivered"
        print("ready", flush=True)
        time.sleep(60)  # the main thread stuck in a blocking call
    """
)


@pytest.mark.parametrize(
    ("signals", "code", "said"),
    [
        ([signal.SIGTERM], 1, "shutdown deadline of 0.5 s passed; forcing the exit (code 1)"),
        ([signal.SIGINT, signal.SIGINT], 130, "SIGINT during shutdown: exiting now"),
    ],
)
def test_a_stuck_main_thread_is_forced_out(
    tmp_path: Path, signals: list[signal.Signals], code: int, said: str
) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK)
    timeout = "0.5" if code == 1 else "30"
    with subprocess.Popen(
        [sys.executable, str(script), timeout],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        first, *more = signals
        proc.send_signal(first)
        seen = ""
        while "stopping (" not in seen:  # two signals sent at once may arrive as one
            line = proc.stderr.readline()
            assert line, "ended before it said it was stopping"
            seen += line
        for signum in more:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=seconds(10))
        err = seen + err
    assert proc.returncode == code, err
    assert time.monotonic() - started < seconds(3)
    assert said in err
    assert "last words: 3 records delivered" in out
    if code == 1:
        assert "the main thread is at:" in err
        assert "time.sleep(60)  # the main thread stuck" in err
