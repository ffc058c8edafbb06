"""``pipeline local up`` and ``pipeline demo`` as a user runs them: real processes, real
signals, and no process left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import seconds
from tests.polling import until_sync

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def _started(args: list[str], workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """Run ``pipeline ARGS --workdir WORKDIR``; kill it if the test leaves it running."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"}
    }
    with subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args, "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _read_env_lines(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    found: dict[str, str] = {}
    while len(found) < 2:
        line = proc.stdout.readline()
        assert line, f"process ended early; stderr:\n{proc.communicate()[1]}"
        name, _, value = line.strip().partition("=")
        if name in {"KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"}:
            found[name] = value
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_local_up_prints_addresses_serves_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    with _started(["local", "up"], tmp_path) as proc:
        env = _read_env_lines(proc)
        children = _children(proc.pid)
        assert len(children) == 2  # broker and registry
        metadata = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}).list_topics(
            timeout=seconds(10)
        )
        assert metadata.brokers
        assert httpx.get(f"{env['SCHEMA_REGISTRY_URL']}/subjects").json() == []
        proc.send_signal(stop_signal)
        assert proc.wait(seconds(20)) == 0
    until_sync(
        lambda: not any(_is_alive(c) for c in children),
        seconds(5),
        message="orphan processes left behind",
    )


def test_demo_runs_the_producer_and_exits_healthy(tmp_path: Path) -> None:
    with _started(["demo", "--duration", "12"], tmp_path) as proc:
        out, err = proc.communicate(timeout=seconds(120))
    assert proc.returncode == 0, err
    assert "100 Avro records round-tripped" in out
    assert "Genesys emulator   http://127.0.0.1:" in out
    assert "kcat -b 127.0.0.1:" in out
    assert "wallboard          http://127.0.0.1:" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("demo healthy: ")
    assert " 0 unacknowledged" in last
    delivered = int(last.split(" records delivered")[0].rsplit(" ", 1)[1])
    assert delivered > 0
    pushes = int(last.split(" wallboard pushes")[0].rsplit(" ", 1)[1])
    assert pushes > 0


def test_registry_keeps_schemas_across_restarts(tmp_path: Path) -> None:
    # 6 s: the demo's emulator starts with an hour of history, so the producer first backfills
    # a busy half-hour before the wallboard gets its first push (the demo's health check).
    with _started(["demo", "--duration", "6"], tmp_path) as demo:
        _, err = demo.communicate(timeout=seconds(120))
    assert demo.returncode == 0, err
    with _started(["local", "up"], tmp_path) as proc:
        url = _read_env_lines(proc)["SCHEMA_REGISTRY_URL"]
        subjects = httpx.get(f"{url}/subjects").json()
        assert {"pipeline.smoke-value", "genesys.metrics-value", "genesys.audit-value"} <= set(
            subjects
        )
        proc.terminate()
        assert proc.wait(seconds(20)) == 0


def test_emulator_command_serves_with_credentials_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "GENESYS_CLIENT_ID": "ops-client", "GENESYS_CLIENT_SECRET": "s3cr3t-x"}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "emulator",
            "--port",
            "0",
            "--queues",
            "3",
            "--agents",
            "12",
            "--speed",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("GENESYS_API_URL=http://127.0.0.1:")
            base = line.split("=", 1)[1]
            refused = httpx.post(
                f"{base}/oauth/token",
                auth=("emulator-client", "emulator-secret"),
                data={"grant_type": "client_credentials"},
            )
            assert refused.status_code == 401
            token = httpx.post(
                f"{base}/oauth/token",
                auth=("ops-client", "s3cr3t-x"),
                data={"grant_type": "client_credentials"},
            ).json()["access_token"]
            queues = httpx.get(
                f"{base}/api/v2/routing/queues", headers={"Authorization": f"Bearer {token}"}
            ).json()
            assert queues["total"] == 3
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(seconds(10)) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
    assert "s3cr3t-x" not in err
