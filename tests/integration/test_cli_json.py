"""``--json`` as a script uses it: ``validate``, ``schemas check`` and the demo's report, each
one JSON document on stdout, with the command's exit code."""

from __future__ import annotations

import json
import re
import signal
import socket
import uuid
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.kafka.schemas import subject_for, topic_names
from pipeline.local.stack import Endpoints
from tests.conftest import seconds
from tests.processes import PipelineProcess, pipeline_env

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"


def test_validate_json_describes_a_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(EXAMPLE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert doc["file"] == str(EXAMPLE)
    assert doc["spec"]["subscriptions"][0]["name"] == "support-queues"
    assert any("not resolved yet" in note for note in doc["notes"])


def test_validate_json_lists_the_problems_of_an_invalid_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscriptions:\n  - name: q\n    queues: [{id: q1}]\n    metrics: [oWating]\n")
    assert main(["validate", "--json", str(bad)]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["valid"] is False
    assert any(
        p.startswith("subscriptions[0].metrics[0]:") and "oWaiting" in p for p in doc["problems"]
    )


def test_schemas_check_json_reports_each_subject_and_the_exit_code(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", endpoints.schema_registry_url)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    subjects = [subject_for(t) for t in topic_names(prefix).values()]

    assert main(["schemas", "check", "--json", "--prefix", prefix]) == 1
    missing = json.loads(capsys.readouterr().out)
    assert missing["ok"] is False
    assert [s["subject"] for s in missing["subjects"]] == subjects
    assert all(s["problems"] and s["ok"] is False for s in missing["subjects"])

    assert main(["schemas", "register", "--prefix", prefix]) == 0
    capsys.readouterr()
    assert main(["schemas", "check", "--json", "--prefix", prefix]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok["ok"] is True
    assert ok["error"] is None
    assert all(s["ok"] and s["schema_id"] for s in ok["subjects"])


def test_schemas_check_json_says_when_the_registry_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", dead)
    assert main(["schemas", "check", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert "unreachable" in doc["error"]


def _records_flowed(line: str) -> bool:
    match = re.search(r"records\s+(\d+) .* wallboard pushes (\d+)", line)
    return match is not None and int(match.group(1)) > 0 and int(match.group(2)) > 0


def test_demo_json_prints_only_its_report_on_stdout(tmp_path: Path) -> None:
    args = ["demo", "--json", "--workdir", str(tmp_path)]
    with PipelineProcess(args, pipeline_env()) as demo:
        demo.wait_for(_records_flowed, seconds(120), stream="err")  # progress: stderr
        demo.interrupt(signal.SIGTERM, group=False)
        assert demo.wait(seconds(40)) == 0, demo.output()
        report = json.loads(demo.stdout)  # nothing but the report
    assert report["healthy"] is True, report
    assert report["problem"] is None
    assert report["producer"]["delivered"] > 0
    assert report["producer"]["in_flight"] == 0
    assert report["pushes"] > 0
