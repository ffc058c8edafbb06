"""``pipeline validate`` and ``pipeline plan`` as a user runs them."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.thread import EmulatorThread
from tests.conftest import seconds
from tests.polling import until_sync
from tests.processes import PipelineProcess, pipeline_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "GENESYS_REGION", "GENESYS_API_URL"):
        monkeypatch.delenv(name, raising=False)


def _use(emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the commands at ``emulator`` with the demo client's credentials."""
    monkeypatch.setenv("GENESYS_API_URL", emulator.base_url)
    monkeypatch.setenv("GENESYS_CLIENT_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", DEMO_CLIENT_SECRET)


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "4 subscriptions" in out
    assert "serviceLevelPercent = oServiceLevel ratio × 100" in out
    assert out.rstrip().endswith(": valid")


def test_validate_reports_every_problem_with_its_path_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "subscriptions:\n"
        "  - name: q\n"
        "    queues: [{id: not-a-uuid}]\n"
        "    metrics: [oWating, skillGroup]\n"
        "    metrcs: []\n"
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith("subscriptions[0].metrics[0]:") and "did you mean oWaiting" in line
        for line in err
    ), err
    assert any(
        line.startswith("subscriptions[0].metrics[1]:") and "skillGroup" in line for line in err
    )
    assert any(line.startswith("subscriptions[0].metrcs:") for line in err)
    assert any(line.startswith("subscriptions[0].queues[0]") for line in err)
    assert err[-1].endswith("problems; nothing was started")


def test_plan_offline_lists_unresolved_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["online"] is False
    assert any("not resolved yet" in note for note in doc["notes"])


def test_plan_online_resolves_names_against_the_org(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = emulator_factory()
    _use(emulator, monkeypatch)
    assert main(["plan", str(EXAMPLE), "--shards", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["online"] is True
    shards = doc["plan"]["shards"]
    assert len(shards) == 3
    topics = [t for s in shards for c in s["channels"] for t in c["topics"]]
    assert len(topics) == len(set(topics)) > 0
    assert all(len(c["topics"]) <= 1000 for s in shards for c in s["channels"])
    metrics = {m["metric"] for m in doc["availability"]["metrics"]}
    assert {"oWaiting", "tAgentRoutingStatus"} <= metrics


def test_plan_resolves_every_member_of_a_queue_of_250_over_several_pages(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One queue, 250 agents: every agent is a member, three pages of the members listing
    # (§8.1: no pageCount there, only nextUri).
    emulator = emulator_factory(queues=1, agents=250)
    _use(emulator, monkeypatch)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "subscriptions:\n"
        "  - name: agents\n"
        "    users: {members_of_queues: [{name: Support 01}]}\n"
        "    metrics: [tAgentRoutingStatus]\n"
        "    topics: [aggregates]\n"
    )
    assert main(["plan", str(spec), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    topics = [t for s in doc["plan"]["shards"] for c in s["channels"] for t in c["topics"]]
    assert len(topics) == len(set(topics)) == 250
    assert doc["permissions"]["checked"] == "at subscribe time"
    [needs] = doc["permissions"]["needs"]
    assert needs.startswith("v2.analytics.users.{id}.aggregates needs analytics:")
    assert emulator.emulator is not None
    pages = [r for r in emulator.emulator.requests if r.path.endswith("/members")]
    assert len(pages) == 3


def test_plan_text_says_permissions_are_checked_at_subscribe_time(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = emulator_factory()
    _use(emulator, monkeypatch)
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "topic permissions: checked by Genesys at subscribe time" in out
    assert "  v2.analytics.queues.{id}.observations needs analytics:" in out


def test_plan_reports_data_for_every_metric_the_simulated_centre_produces(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Right after start, like a real org: the look-back hour is in the emulator's history.
    emulator = emulator_factory(queues=4, agents=30, history="PT24H")
    assert emulator.emulator is not None
    center = emulator.emulator.center
    queue, code = center.queues[0], center.wrapup_codes[0]
    produced = ["nOffered", "tAnswered", "tAbandon", "tHandle", "tTalk", "tAcw", "tWait", "tAlert",
                "tAcd", "nConnected", "oServiceLevel", "oWaiting", "oOnQueueUsers"]  # fmt: skip
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "subscriptions:\n"
        f"  - name: q\n    queues: [{{name: {queue.name}}}]\n    metrics: [{', '.join(produced)}]\n"
        f"  - name: u\n    users: {{members_of_queues: [{{name: {queue.name}}}]}}\n"
        "    metrics: [tAgentRoutingStatus, tSystemPresence, tOrganizationPresence]\n"
        f"  - name: w\n    wrapup_codes: [{{name: {code.name}}}]\n    metrics: [tHandle]\n"
    )
    _use(emulator, monkeypatch)
    assert main(["plan", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["availability"]["metrics"]
    assert {(e["subscription"], e["metric"]) for e in report} == {
        *(("q", m) for m in produced),
        *(("u", m) for m in ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")),
        ("w", "tHandle"),
    }
    no_data = [(e["subscription"], e["metric"]) for e in report if not e["with_data"]]
    assert no_data == []
    users = next(e for e in report if e["metric"] == "tAgentRoutingStatus")
    assert users["without_data"] == []  # every member has time in status in the last hour


def test_plan_online_rejects_names_the_org_does_not_have(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = emulator_factory()
    _use(emulator, monkeypatch)
    spec = tmp_path / "s.yaml"
    spec.write_text("subscriptions:\n  - name: q\n    queues: [{name: Nowhere 99}]\n")
    assert main(["plan", str(spec)]) == 2
    assert "Nowhere 99" in capsys.readouterr().err


def test_plan_with_wrong_credentials_fails_cleanly(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = emulator_factory()
    monkeypatch.setenv("GENESYS_API_URL", emulator.base_url)
    monkeypatch.setenv("GENESYS_CLIENT_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "canary-wrong-secret")
    assert main(["plan", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "login refused (401 invalid_client)" in err
    assert "canary-wrong-secret" not in err


def test_watch_streams_json_lines_until_stopped(
    emulator_factory: Callable[..., EmulatorThread],
) -> None:
    emulator = emulator_factory(speed=60.0)
    env = pipeline_env(
        GENESYS_API_URL=emulator.base_url,
        GENESYS_CLIENT_ID=DEMO_CLIENT_ID,
        GENESYS_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )
    with PipelineProcess(["watch", str(EXAMPLE), "--shard", "1/2"], env) as watch:

        def kinds() -> set[str]:
            lines = [json.loads(line) for line in list(watch.out)]
            return {line.get("kind") or line["type"] for line in lines}

        wanted = {"channel.created", "channel.subscribed", "socket.connected", "backfill", "topic"}
        until_sync(lambda: wanted <= kinds(), seconds(60), message="every kind of line")
        watch.interrupt(signal.SIGINT, group=True)
        assert watch.wait(seconds(20)) == 130, watch.output()
    assert "session.stopped" in kinds()  # what the stop itself printed
    assert "watch stopped by SIGINT after" in watch.stderr


def test_watch_needs_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(EXAMPLE)]) == 2
    assert "GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET" in capsys.readouterr().err


def test_shard_argument_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["watch", str(EXAMPLE), "--shard", "2/2"])
    assert "need 0 <= i < N" in capsys.readouterr().err


def test_every_metric_of_the_example_has_data_on_the_demos_emulator(
    emulator_factory: Callable[..., EmulatorThread],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The demo's emulator (pipeline/services/demo.py): busy, with an hour of history.
    emulator = emulator_factory(arrival_rate=6.0, history="PT1H")
    _use(emulator, monkeypatch)
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["availability"]["metrics"]
    assert len(report) == 19
    assert [(e["subscription"], e["metric"]) for e in report if not e["with_data"]] == []
