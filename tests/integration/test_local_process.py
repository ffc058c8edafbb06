"""Failures of local infrastructure are loud and carry the child's log."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from pipeline.errors import InfrastructureError
from pipeline.local.broker import LocalBroker
from pipeline.local.process import ManagedProcess


def test_child_that_dies_reports_exit_code_and_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "crasher",
        [sys.executable, "-c", "print('boom: cannot bind'); raise SystemExit(3)"],
        tmp_path / "crasher.log",
    )
    proc.start()
    with pytest.raises(InfrastructureError) as info:
        proc.wait_for_log("ready", timeout=10)
    assert "exited with code 3" in str(info.value)
    assert "boom: cannot bind" in info.value.log_tail


def test_child_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"],
        tmp_path / "sleeper.log",
    )
    proc.start()
    with pytest.raises(InfrastructureError, match="not ready after"):
        proc.wait_for_log("ready", timeout=0.5)
    assert proc.is_running()
    assert proc.stop(timeout=5) is not None
    assert not proc.is_running()


def test_environment_changes_reach_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DROP_ME", "x")
    proc = ManagedProcess(
        "env",
        [
            sys.executable,
            "-c",
            "import os; print(os.environ.get('PIPELINE_DROP_ME'), "
            "os.environ['PIPELINE_ADDED'], 'ready', flush=True)",
        ],
        tmp_path / "env.log",
        env={"PIPELINE_DROP_ME": None, "PIPELINE_ADDED": "yes"},
    )
    proc.start()
    proc.wait_for_log("ready", timeout=10)
    proc.stop()
    assert "None yes ready" in proc.log_text()


def test_broker_on_a_taken_port_fails_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalBroker(tmp_path, port=port, ready_timeout=5)
        with pytest.raises(InfrastructureError) as info:
            broker.start()
    assert not broker.is_running()
    assert info.value.log_tail  # the broker's own words about the failure
