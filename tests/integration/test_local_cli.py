"""``pipeline local up``, ``pipeline emulator`` and the CLI's exit codes as a user meets them:
real processes, real signals, and no process left behind.

How every long-running command stops (Ctrl-C to the group, SIGTERM, a hung shutdown, the demo)
is the fault matrix in ``tests/system/test_faults_shutdown.py``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from pipeline.cli import main
from pipeline.kafka.registry import register_contract
from tests.conftest import seconds
from tests.polling import until_sync
from tests.processes import PipelineProcess, descendants, is_alive, pipeline_env

pytestmark = pytest.mark.integration


def _env_lines(proc: PipelineProcess) -> dict[str, str]:
    proc.wait_for("SCHEMA_REGISTRY_URL=", seconds(30))
    pairs = (line.strip().partition("=") for line in proc.out)
    return {name: value for name, _, value in pairs if name.isupper() and value}


def test_local_up_prints_addresses_serves_and_stops_its_children(tmp_path: Path) -> None:
    with PipelineProcess(["local", "up", "--workdir", tmp_path]) as proc:
        env = _env_lines(proc)
        until_sync(lambda: len(descendants(proc.pid)) == 2, seconds(5), message="2 children")
        children = descendants(proc.pid)
        metadata = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}).list_topics(
            timeout=seconds(10)
        )
        assert metadata.brokers
        assert httpx.get(f"{env['SCHEMA_REGISTRY_URL']}/subjects").json() == []
        proc.interrupt(signal.SIGTERM, group=False)
        assert proc.wait(seconds(20)) == 0
    until_sync(
        lambda: not any(is_alive(c) for c in children),
        seconds(5),
        message="orphan processes left behind",
    )
    assert "local up stopped by SIGTERM after" in proc.stderr


def test_local_up_fails_loudly_when_a_child_dies(tmp_path: Path) -> None:
    with PipelineProcess(["local", "up", "--workdir", tmp_path]) as proc:
        env = _env_lines(proc)
        until_sync(lambda: len(descendants(proc.pid)) == 2, seconds(5), message="2 children")
        registry = next(
            pid
            for pid in descendants(proc.pid)
            if "registry_server" in Path(f"/proc/{pid}/cmdline").read_text()
        )
        assert env["SCHEMA_REGISTRY_URL"]
        os.kill(registry, signal.SIGKILL)
        assert proc.wait(seconds(20)) == 1
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("error: local registry exited with code -9")
    )


def test_registry_keeps_schemas_across_restarts(tmp_path: Path) -> None:
    with PipelineProcess(["local", "up", "--workdir", tmp_path]) as first:
        register_contract(_env_lines(first)["SCHEMA_REGISTRY_URL"], "genesys")
        first.interrupt(signal.SIGTERM, group=False)
        assert first.wait(seconds(20)) == 0
    with PipelineProcess(["local", "up", "--workdir", tmp_path]) as second:
        url = _env_lines(second)["SCHEMA_REGISTRY_URL"]
        subjects = httpx.get(f"{url}/subjects").json()
        assert {"genesys.metrics-value", "genesys.audit-value"} <= set(subjects)
        second.interrupt(signal.SIGTERM, group=False)
        assert second.wait(seconds(20)) == 0


def test_emulator_command_serves_with_credentials_from_the_environment() -> None:
    env = pipeline_env(GENESYS_CLIENT_ID="ops-client", GENESYS_CLIENT_SECRET="s3cr3t-x")
    args = ["emulator", "--port", "0", "--queues", "3", "--agents", "12", "--speed", "30"]
    with PipelineProcess(args, env) as proc:
        line = proc.wait_for("GENESYS_API_URL=", seconds(20)).strip()
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
        proc.interrupt(signal.SIGTERM, group=False)
        assert proc.wait(seconds(10)) == 0
    assert "s3cr3t-x" not in proc.stderr


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "PIPELINE_SHUTDOWN_TIMEOUT_S",
            "0",
            "PIPELINE_SHUTDOWN_TIMEOUT_S: Input should be greater",
        ),
        ("PIPELINE_SHUTDOWN_TIMEOUT_S", "soon", "PIPELINE_SHUTDOWN_TIMEOUT_S: Input should be a"),
    ],
)
def test_a_bad_setting_is_a_usage_error_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("DASHBOARD_SECRET", "wallboard-cli-test-secret")
    assert main(["wallboard", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {line}")
    assert len(err) == 1
