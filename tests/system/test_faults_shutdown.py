"""Fault matrix: signals, shutdown and exit codes of every long-running command.

Each command runs as a real process in a session of its own, as a terminal starts a
foreground job: ``os.killpg(pgid, SIGINT)`` is exactly what Ctrl-C does. Every test checks
the exit code, that the exit came within the shutdown deadline, the report or summary, and
that no process the command started is left (``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli import main
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.thread import EmulatorThread
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.registry import register_contract
from pipeline.local.process import free_port
from pipeline.local.stack import Endpoints
from pipeline.services.freshness_worker import FreshnessWorker
from tests.conftest import seconds
from tests.polling import until_sync
from tests.processes import PipelineProcess, descendants, is_alive, pipeline_env

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
DEADLINE_S = 20.0
"""The default ``PIPELINE_SHUTDOWN_TIMEOUT_S``: every command must be gone within it."""
SUMMARY = re.compile(r"demo healthy: .* (\d+) records delivered, 0 unacknowledged, .* (\d+) wall")

# (signal, sent to the whole group?, expected exit code of a healthy run)
STOPS = [
    pytest.param(signal.SIGINT, True, 130, id="ctrl-c-to-group"),
    pytest.param(signal.SIGTERM, False, 0, id="sigterm-to-process"),
]


def _records_flowed(line: str) -> bool:
    """A demo summary line with records delivered and wallboard pushes."""
    match = re.search(r"records\s+(\d+) .* wallboard pushes (\d+)", line)
    return match is not None and int(match.group(1)) > 0 and int(match.group(2)) > 0


def _stops_cleanly(
    command: PipelineProcess, signum: signal.Signals, group: bool, children: list[int]
) -> int:
    """Send the signal; returns the exit code after checking the deadline and the children."""
    command.interrupt(signum, group=group)
    code = command.wait(seconds(DEADLINE_S + 10))
    took = command.seconds_since_signal()
    assert took < DEADLINE_S, f"took {took:.1f} s to stop\n{command.output()}"
    until_sync(
        lambda: not any(is_alive(pid) for pid in children),
        seconds(5),
        message=f"processes {children} left behind",
    )
    return code


@contextlib.contextmanager
def _demo(tmp_path: Path, **env: str) -> Iterator[tuple[PipelineProcess, list[int]]]:
    """The demo, started like ``make demo`` in a terminal, once records reached the wallboard.

    Yields:
        The process and its children (broker, registry) while it runs.
    """
    args = ["demo", "--workdir", str(tmp_path)]
    with PipelineProcess(args, pipeline_env(**env)) as demo:
        demo.wait_for(_records_flowed, seconds(120))
        children = descendants(demo.pid)
        assert len(children) == 2, children  # the broker and the registry
        yield demo, children


def test_fault_ctrl_c_in_a_terminal_stops_the_demo(tmp_path: Path) -> None:
    """Fault: Ctrl-C in the terminal running `make demo` (SIGINT to the whole foreground process group, broker and registry included) / System: the broker and registry run in a session of their own and get no SIGINT; the demo stops its parts, flushes, prints its report, then stops its children / Check: exit 130 within the 20 s deadline, a healthy report with every record acknowledged, no process left."""  # noqa: E501
    with _demo(tmp_path) as (demo, children):
        code = _stops_cleanly(demo, signal.SIGINT, True, children)
        assert code == 130, demo.output()
        assert SUMMARY.search(demo.stdout), demo.output()
        available = re.search(r"metric data +(\d+) of (\d+) subscribed", demo.stdout)
        assert available is not None, demo.output()
        assert available[1] == available[2], demo.output()


def test_fault_sigterm_stops_the_demo(tmp_path: Path) -> None:
    """Fault: SIGTERM to the demo process (an orchestrator's stop) / System: the demo flushes, prints its report and stops its children / Check: exit 0 within the deadline, a healthy report, no process left."""  # noqa: E501
    with _demo(tmp_path) as (demo, children):
        assert _stops_cleanly(demo, signal.SIGTERM, False, children) == 0, demo.output()
        assert SUMMARY.search(demo.stdout), demo.output()


def test_fault_broker_dies_under_the_demo(tmp_path: Path) -> None:
    """Fault: the local broker is killed (SIGKILL) while the demo runs / System: the demo sees its child exit, stops every part at once (nothing left to flush to) and reports the cause / Check: exit 1 within a few seconds, the report and the last stderr line name the dead broker, no process left."""  # noqa: E501
    with _demo(tmp_path) as (demo, children):
        broker = next(p for p in children if "tansu" in Path(f"/proc/{p}/cmdline").read_text())
        demo.signalled_at = time.monotonic()
        os.kill(broker, signal.SIGKILL)
        assert demo.wait(seconds(DEADLINE_S)) == 1, demo.output()
        assert demo.seconds_since_signal() < 10, demo.output()
        assert "demo NOT healthy (local infrastructure failed: local broker exited" in demo.stdout
        assert "error: local infrastructure failed: local broker exited with code -9" in (
            demo.stderr
        )
        until_sync(lambda: not any(map(is_alive, children)), seconds(5), message="children left")


def test_fault_hung_shutdown_is_cut_at_the_deadline(tmp_path: Path) -> None:
    """Fault: the broker hangs (SIGSTOP) and then the demo is stopped (SIGTERM), so flushes and commits never finish / System: after 3/4 of PIPELINE_SHUTDOWN_TIMEOUT_S the tasks still pending are logged with where they wait and cancelled; the children are stopped, SIGKILL if need be / Check: exit 1 within the deadline (set to 6 s), the report printed, pending work logged, no process left."""  # noqa: E501
    with _demo(tmp_path, PIPELINE_SHUTDOWN_TIMEOUT_S="6") as (demo, children):
        broker = next(p for p in children if "tansu" in Path(f"/proc/{p}/cmdline").read_text())
        os.kill(broker, signal.SIGSTOP)
        demo.interrupt(signal.SIGTERM, group=False)
        assert demo.wait(seconds(20)) == 1, demo.output()
        assert demo.seconds_since_signal() < 6 + 1.5, demo.output()
        assert re.search(
            r"shutdown did not finish within \d s|shutdown deadline of 6 s", demo.stderr
        )
        assert "waiting at" in demo.stderr  # where each pending task of ours waited
        assert "demo " in demo.stdout.strip().splitlines()[-1]  # the report, forced or not
        until_sync(lambda: not any(map(is_alive, children)), seconds(5), message="children left")


def test_fault_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    """Fault: Ctrl-C, then Ctrl-C again while the shutdown waits for a hung broker / System: the second SIGINT forces the exit at once: last words printed, the children's process groups SIGKILLed / Check: exit 130 within 2 s of the second Ctrl-C, no process left."""  # noqa: E501
    with _demo(tmp_path) as (demo, children):
        broker = next(p for p in children if "tansu" in Path(f"/proc/{p}/cmdline").read_text())
        os.kill(broker, signal.SIGSTOP)  # so the first Ctrl-C's shutdown cannot finish
        demo.interrupt(signal.SIGINT, group=True)
        demo.wait_for("stopping \\(SIGINT\\)", seconds(10), stream="err")
        demo.interrupt(signal.SIGINT, group=True)
        assert demo.wait(seconds(10)) == 130, demo.output()
        assert demo.seconds_since_signal() < 2, demo.output()
        assert "SIGINT during shutdown: exiting now" in demo.stderr
        assert "(forced exit)" in demo.stdout
        until_sync(lambda: not any(map(is_alive, children)), seconds(5), message="children left")


# ------------------------------------------------------------------ every other command
class _Services:
    """Starts each long-running command against the session's Kafka, an emulator and a
    wallboard, and waits until it is doing its work."""

    def __init__(
        self,
        endpoints: Endpoints,
        emulators: Callable[..., EmulatorThread],
        unique_name: Callable[[str], str],
        session_ms: int,
        tmp_path: Path,
    ) -> None:
        self.endpoints = endpoints
        self.emulators = emulators
        self.unique_name = unique_name
        self.session_ms = session_ms
        self.tmp_path = tmp_path
        self.prefix = unique_name("stop").replace("-", "")
        self.helpers: list[PipelineProcess] = []

    def env(self, **changes: str) -> dict[str, str]:
        return pipeline_env(
            KAFKA_BOOTSTRAP_SERVERS=self.endpoints.bootstrap_servers,
            SCHEMA_REGISTRY_URL=self.endpoints.schema_registry_url,
            PIPELINE_TOPIC_PREFIX=self.prefix,
            PIPELINE_OPS_HOST="127.0.0.1",
            PIPELINE_SESSION_TIMEOUT_MS=str(self.session_ms),
            **changes,
        )

    def genesys_env(self) -> dict[str, str]:
        emulator = self.emulators(speed=60.0)
        return {
            "GENESYS_API_URL": emulator.base_url,
            "GENESYS_CLIENT_ID": DEMO_CLIENT_ID,
            "GENESYS_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }

    def start(self, command: str) -> PipelineProcess:
        starter: Callable[[], PipelineProcess] = getattr(self, "_" + command.replace(" ", "_"))
        return starter()

    def _produce(self) -> PipelineProcess:
        port = free_port()
        env = self.env(PIPELINE_OPS_PORT=str(port), PIPELINE_AUTO_REGISTER="true")
        proc = PipelineProcess(["produce", EXAMPLE], {**env, **self.genesys_env()}).__enter__()
        _until_metric(proc, port, "pipeline_records_delivered_total", 1)
        return proc

    def _worker_freshness(self) -> PipelineProcess:
        port = self._kafka_ready()
        env = self.env(PIPELINE_OPS_PORT=str(port))
        proc = PipelineProcess(["worker", "freshness", EXAMPLE], env).__enter__()
        _until_ready(proc, port)
        return proc

    def _worker_dashboard(self) -> PipelineProcess:
        wallboard = self._wallboard()
        self.helpers.append(wallboard)
        url = wallboard.wait_for("DASHBOARD_URL=", seconds(20)).strip().split("=", 1)[1]
        port = self._kafka_ready()
        env = self.env(
            PIPELINE_OPS_PORT=str(port), DASHBOARD_URL=url, DASHBOARD_SECRET="stop-test-secret"
        )
        proc = PipelineProcess(["worker", "dashboard", EXAMPLE], env).__enter__()
        _until_ready(proc, port)
        return proc

    def _emulator(self) -> PipelineProcess:
        proc = PipelineProcess(["emulator", "--port", "0"]).__enter__()
        proc.wait_for("GENESYS_API_URL=", seconds(20))
        return proc

    def _wallboard(self) -> PipelineProcess:
        env = pipeline_env(DASHBOARD_SECRET="stop-test-secret")
        proc = PipelineProcess(["wallboard", "--port", "0"], env).__enter__()
        proc.wait_for("WALLBOARD_URL=", seconds(20))
        return proc

    def _local_up(self) -> PipelineProcess:
        args = ["local", "up", "--workdir", self.tmp_path / "local"]
        proc = PipelineProcess(args).__enter__()
        proc.wait_for("SCHEMA_REGISTRY_URL=", seconds(30))
        until_sync(lambda: len(descendants(proc.pid)) == 2, seconds(5), message="2 children")
        return proc

    def _watch(self) -> PipelineProcess:
        proc = PipelineProcess(["watch", EXAMPLE], pipeline_env(**self.genesys_env())).__enter__()
        proc.wait_for('"type":"topic"', seconds(30))
        return proc

    def _kafka_ready(self) -> int:
        url = self.endpoints.schema_registry_url
        register_contract(url, self.prefix)
        topics = [TopicSpec(f"{self.prefix}.metrics", 1), TopicSpec(f"{self.prefix}.audit", 1)]
        ensure_topics(self.endpoints.bootstrap_servers, topics)
        return free_port()

    def close(self) -> None:
        for helper in self.helpers:
            helper.__exit__(None, None, None)


def _until_ready(proc: PipelineProcess, port: int) -> None:
    def ready() -> bool:
        if proc.proc is not None and proc.proc.poll() is not None:
            pytest.fail(f"ended early\n{proc.output()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        return False

    until_sync(ready, seconds(60), message="the service is ready", poll_s=0.2)


def _until_metric(proc: PipelineProcess, port: int, name: str, at_least: float) -> None:
    def reached() -> bool:
        if proc.proc is not None and proc.proc.poll() is not None:
            pytest.fail(f"ended early\n{proc.output()}")
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
            return match is not None and float(match.group(1)) >= at_least
        return False

    until_sync(reached, seconds(60), message=f"{name} >= {at_least}", poll_s=0.2)


@pytest.fixture
def services(
    endpoints: Endpoints,
    emulator_factory: Callable[..., EmulatorThread],
    unique_name: Callable[[str], str],
    group_timeouts: dict[str, int],
    tmp_path: Path,
) -> Iterator[_Services]:
    started = _Services(
        endpoints, emulator_factory, unique_name, group_timeouts["session.timeout.ms"], tmp_path
    )
    yield started
    started.close()


COMMANDS = [
    "produce",
    "worker freshness",
    "worker dashboard",
    "emulator",
    "wallboard",
    "local up",
    "watch",
]


@pytest.mark.parametrize(("signum", "group", "expected"), STOPS)
@pytest.mark.parametrize("command", COMMANDS)
def test_fault_signals_stop_every_service(
    services: _Services, command: str, signum: signal.Signals, group: bool, expected: int
) -> None:
    """Fault: SIGINT to the process group (Ctrl-C) or SIGTERM to the process, for each of produce, worker freshness, worker dashboard, emulator, wallboard, local up and watch while it works / System: the command stops, flushes and logs a one-line summary of what it did / Check: exit 130 after SIGINT and 0 after SIGTERM within the deadline, the summary line, no process left."""  # noqa: E501
    proc = services.start(command)
    try:
        children = descendants(proc.pid)
        code = _stops_cleanly(proc, signum, group, children)
        assert code == expected, proc.output()
        summary = f"{command} stopped by {signum.name} after "
        assert summary in proc.stderr, proc.output()
        assert f"; exit {expected}" in proc.stderr
    finally:
        proc.__exit__(None, None, None)


def test_fault_taken_port_fails_in_one_line(
    services: _Services, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the ops port of a worker is already taken by another process / System: the worker cannot serve its probes: it stops at once / Check: exit 1 within seconds, the last stderr line names the address in use, no traceback."""  # noqa: E501
    with contextlib.closing(_listening()) as taken:
        port = taken.getsockname()[1]
        services._kafka_ready()
        env = services.env(PIPELINE_OPS_PORT=str(port))
        with PipelineProcess(["worker", "freshness", EXAMPLE], env) as proc:
            assert proc.wait(seconds(30)) == 1, proc.output()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: OSError: "), proc.output()
    assert "address already in use" in last
    assert "Traceback" not in proc.stderr


def _listening() -> Any:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_fault_dead_task_ends_the_worker_non_zero(
    services: _Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fault: one internal task of a running service dies of an unexpected error (the freshness worker's report loop raises) / System: the service stops its other tasks, leaves its groups and raises; the CLI logs the traceback and prints the cause / Check: `pipeline worker freshness` returns 1 within seconds, with no stop requested, and stderr ends with the cause on one line."""  # noqa: E501
    services._kafka_ready()
    for name, value in services.env(PIPELINE_OPS_PORT="0").items():
        monkeypatch.setenv(name, value)

    async def dies(self: FreshnessWorker, kafka: object) -> None:
        raise RuntimeError("report loop broke: canary-7731")

    monkeypatch.setattr(FreshnessWorker, "_tick_loop", dies)
    started = time.monotonic()
    assert main(["worker", "freshness", str(EXAMPLE)]) == 1
    assert time.monotonic() - started < seconds(DEADLINE_S)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: RuntimeError: report loop broke: canary-7731"
