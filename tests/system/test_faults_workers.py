"""The fault matrix, consumer-worker rows: poison values, the schema registry and the dashboard
failing, and a worker killed mid-batch, each with its accounting through Kafka.

Every row ends with every record accounted for: decoded and handled (pushed to the dashboard
or measured), in the DLQ, or still uncommitted; nothing valid dead-lettered, nothing
committed before it was done. The workers run in this process (their metrics and state are
read directly) except where the command line itself is the point (exit codes, SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from pipeline.core.contract.dead_letter import TRUNCATION_HEADERS
from pipeline.core.contract.wire import confluent_header
from pipeline.dashboard.wallboard import Wallboard
from pipeline.local.process import free_port
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardWorker
from pipeline.services.freshness_worker import FreshnessWorker
from tests.conftest import seconds
from tests.polling import until
from tests.records import metric_record
from tests.tcp_proxy import TcpProxy
from tests.workers import (
    KEYS,
    METRIC_PARTITIONS,
    SECRET,
    FakeDashboard,
    Stack,
    proxied_broker,
    running,
)

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
Worker = DashboardWorker | FreshnessWorker


# ---------------------------------------------------------------------------- helpers
@contextlib.asynccontextmanager
async def started(
    endpoints: Endpoints, *, registry_proxy: bool = False
) -> AsyncIterator[tuple[Stack, FakeDashboard, TcpProxy | None]]:
    """A contract under a fresh prefix, a fake dashboard, and maybe a proxy to the registry."""
    proxy = None
    if registry_proxy:
        url = urlsplit(endpoints.schema_registry_url)
        proxy = TcpProxy(url.port or 80, target_host=url.hostname or "127.0.0.1")
        await proxy.start()
    stack = Stack(endpoints, None if proxy is None else f"http://127.0.0.1:{proxy.listen_port}")
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    try:
        yield stack, dashboard, proxy
    finally:
        await dashboard.down()
        await stack.aclose()
        if proxy is not None:
            await proxy.aclose()


def new_worker(
    kind: str, stack: Stack, dashboard: FakeDashboard, group: str, session_ms: int
) -> Worker:
    if kind == "dashboard":
        return DashboardWorker(stack.dashboard_config(dashboard, group, session_ms))
    return FreshnessWorker(stack.freshness_config(group, session_ms, f"fw-{group}"))


def sample(worker: Worker, name: str, **labels: str) -> float:
    """A metric of the worker now (0 when never set)."""
    return worker.metrics.registry.get_sample_value(name, labels) or 0.0


def consumed_values(worker: Worker) -> float:
    """Metric records the worker decoded and handled."""
    if isinstance(worker, DashboardWorker):
        errors = sample(worker, "genesys_pipeline_dashboard_decode_errors_total", topic="metrics")
        return worker.metrics.records_in - errors
    return sample(worker, "genesys_pipeline_freshness_records_total", topic="metrics")


async def committed(stack: Stack, group: str) -> int:
    return await asyncio.to_thread(stack.committed, group)


async def until_committed(stack: Stack, group: str, count: int, message: str) -> None:
    async def done() -> bool:
        return await committed(stack, group) == count

    await until(done, seconds(30), message=message, poll_s=0.2)


# ---------------------------------------------------------------------------- poison values
@pytest.mark.parametrize("kind", ["dashboard", "freshness"])
async def test_fault_poison_values_on_the_metrics_topic(
    kind: str,
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    """Fault: poison values on .metrics (6-byte truncated, unknown schema id, unresolvable
    schema, 1 MB garbage) / System: each dead-lettered (the 1 MB one cut to fit, original
    length in headers), counted, committed past / Check: exactly 4 dead letters, every valid
    record handled, committed offsets = all records."""
    async with started(endpoints) as (stack, dashboard, _):
        poison = stack.poison_values("metric")
        poison["near_limit"] = confluent_header(stack.ids[stack.topic("metrics")]) + (
            b"\xff" * 999_950
        )
        await stack.publish_rounds(range(1))
        await stack.publish([stack.raw("metrics", value) for value in poison.values()])
        await stack.publish_rounds(range(1, 2))
        group = unique_name(kind)
        worker = new_worker(kind, stack, dashboard, group, group_timeouts["session.timeout.ms"])
        async with running(worker):
            await until_committed(stack, group, 2 * KEYS + 4, "every record committed")
            assert consumed_values(worker) == 2 * KEYS
            assert (
                sample(worker, f"genesys_pipeline_{kind}_decode_errors_total", topic="metrics") == 4
            )
            assert sample(worker, f"genesys_pipeline_{kind}_dead_letters_truncated_total") == 1
            if kind == "dashboard":
                await until(lambda: dashboard.holds_round(1), seconds(10), message="round 1")
        dead = await stack.dead_letters()
    assert len(dead) == 4
    assert {value["stage"] for _, _, value, _ in dead} == {f"{kind}-decode"}
    for *_, headers in dead:  # a Kafka record's dead letter: Connect's headers apply
        assert headers["__connect.errors.topic"] == stack.topic("metrics").encode()
        assert headers["__connect.errors.offset"].isdigit()
        assert headers["__connect.errors.stage"] == b"VALUE_CONVERTER"
        assert headers["pipeline.errors.stage"] == f"{kind}-decode".encode()
        assert "pipeline.errors.genesys.topic" not in headers
    reasons = " | ".join(value["reason"] for _, _, value, _ in dead)
    assert "schema id 987654 is not in the registry" in reasons
    assert "does not resolve to this build's schema" in reasons
    [cut] = [(value, headers) for _, _, value, headers in dead if TRUNCATION_HEADERS[0] in headers]
    assert cut[1][TRUNCATION_HEADERS[0]] == str(len(poison["near_limit"])).encode()
    assert poison["near_limit"].startswith(cut[0]["raw"])
    assert "raw truncated" in cut[0]["reason"]
    whole = {value["raw"] for _, _, value, headers in dead if TRUNCATION_HEADERS[0] not in headers}
    assert whole == {poison["truncated"], poison["unknown_id"], poison["unresolvable"]}


@pytest.mark.parametrize("kind", ["dashboard", "freshness"])
async def test_fault_poison_values_on_the_audit_topic(
    kind: str,
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    """Fault: poison values on .audit (truncated, unknown schema id, unresolvable schema),
    which is re-read at every start / System: each dead-lettered and skipped; start-up not
    blocked / Check: worker ready, exactly 3 dead letters, the valid audit records before and
    after them applied."""
    from pipeline.core.audit import AuditEvent, AuditKind
    from pipeline.core.contract.records import audit_record

    async with started(endpoints) as (stack, dashboard, _):
        assert stack.outbox is not None
        event = AuditEvent(AuditKind.SOCKET_CONNECTED, time.time(), "ch-1", {"socket_id": 1})
        first = stack.outbox.audit(audit_record(event, "producer-a"))
        last = stack.outbox.audit(audit_record(event, "producer-b"))
        poison = stack.poison_values("audit")
        await stack.publish([first, *(stack.raw("audit", v) for v in poison.values()), last])
        worker = new_worker(
            kind, stack, dashboard, unique_name(kind), group_timeouts["session.timeout.ms"]
        )

        def applied() -> float:
            if isinstance(worker, DashboardWorker):
                return worker.staleness.producers()
            return sample(worker, "genesys_pipeline_freshness_records_total", topic="audit")

        async with running(worker):
            await until(lambda: worker.readiness() == [], seconds(20), message="ready")
            await until(lambda: applied() == 2, seconds(20), message="both audit records read")
            assert (
                sample(worker, f"genesys_pipeline_{kind}_decode_errors_total", topic="audit") == 3
            )
        dead = await stack.dead_letters()
    assert sorted(value["raw"] for _, _, value, _ in dead) == sorted(poison.values())
    assert {value["stage"] for _, _, value, _ in dead} == {f"{kind}-decode"}


# ---------------------------------------------------------------------------- schema registry
@pytest.mark.parametrize("kind", ["dashboard", "freshness"])
async def test_fault_registry_down_at_worker_start(
    kind: str,
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    """Fault: schema registry unreachable at worker start / System: the worker stays up
    (/healthz 200, /readyz 503 with the reason) and asks again with backoff; no crash loop /
    Check: retries while down, then every record handled and committed, no dead letter."""
    async with started(endpoints, registry_proxy=True) as (stack, dashboard, proxy):
        assert proxy is not None
        await stack.publish_rounds(range(2))
        proxy.cut()
        group = unique_name(kind)
        worker = new_worker(kind, stack, dashboard, group, group_timeouts["session.timeout.ms"])
        async with running(worker):
            await until(
                lambda: sample(worker, f"genesys_pipeline_{kind}_registry_retries_total") >= 3,
                seconds(20),
                message="the registry asked again, with backoff",
            )
            assert worker.ops is not None
            async with httpx.AsyncClient(base_url=worker.ops.url) as ops:
                assert (await ops.get("/healthz")).status_code == 200
                ready = await ops.get("/readyz")
            assert ready.status_code == 503
            assert "waiting for the schema registry" in ready.text
            proxy.restore()
            await until_committed(stack, group, 2 * KEYS, "every record committed")
            assert consumed_values(worker) == 2 * KEYS
            assert worker.readiness() == []
        assert await stack.dead_letters(idle_s=0.5) == []


@pytest.mark.parametrize("kind", ["dashboard", "freshness"])
async def test_fault_registry_down_mid_run(
    kind: str,
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
) -> None:
    """Fault: schema registry unreachable mid-run, when records of an uncached schema id
    arrive / System: those records are rewound and the topic paused (group membership kept),
    registry asked again with backoff, fetching resumes / Check: while down nothing handled,
    committed or dead-lettered, partitions kept; after, all handled once and committed."""
    async with started(endpoints, registry_proxy=True) as (stack, dashboard, proxy):
        assert proxy is not None
        group = unique_name(kind)
        worker = new_worker(kind, stack, dashboard, group, group_timeouts["session.timeout.ms"])
        everything = {(stack.topic("metrics"), p) for p in range(METRIC_PARTITIONS)}

        def assignment() -> set[tuple[str, int]]:
            kafka = worker._kafka
            return set() if kafka is None else kafka.metrics.assignment()

        async with running(worker):
            await until(lambda: assignment() == everything, seconds(20), message="assigned")
            proxy.cut()
            await stack.publish_rounds(range(3))  # the first records it sees: a new schema id
            await until(
                lambda: sample(worker, f"genesys_pipeline_{kind}_registry_retries_total") >= 3,
                seconds(20),
                message="the registry asked again while down",
            )
            assert sample(worker, f"genesys_pipeline_{kind}_registry_waiting", topic="metrics") == 1
            assert consumed_values(worker) == 0
            assert await committed(stack, group) == 0
            assert assignment() == everything  # still a member, holding its partitions
            proxy.restore()
            await until_committed(stack, group, 3 * KEYS, "every record committed")
            assert consumed_values(worker) == 3 * KEYS
            assert sample(worker, f"genesys_pipeline_{kind}_registry_waiting", topic="metrics") == 0
            if kind == "dashboard":
                await until(lambda: dashboard.holds_round(2), seconds(10), message="round 2")
        assert await stack.dead_letters(idle_s=0.5) == []


async def test_fault_registry_hung(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    """Fault: schema registry hung (accepts, never answers) when records of a new schema id
    arrive / System: each request times out (SCHEMA_REGISTRY_TIMEOUT_S) in a thread, the event
    loop never waits, the topic pauses as for a registry that is down / Check: /healthz within
    0.5 s throughout, nothing handled, committed or dead-lettered while hung; then all pushed
    and committed."""
    async with started(endpoints, registry_proxy=True) as (stack, dashboard, proxy):
        assert proxy is not None
        group = unique_name("hung")
        worker = new_worker(
            "dashboard", stack, dashboard, group, group_timeouts["session.timeout.ms"]
        )
        async with running(worker):
            await until(lambda: worker.readiness() == [], seconds(20), message="ready")
            proxy.hang()
            await stack.publish_rounds(range(2))
            assert worker.ops is not None
            slowest = 0.0
            async with httpx.AsyncClient(base_url=worker.ops.url, timeout=5.0) as ops:
                while sample(worker, "genesys_pipeline_dashboard_registry_retries_total") < 2:
                    asked = time.monotonic()
                    assert (await ops.get("/healthz")).status_code == 200
                    slowest = max(slowest, time.monotonic() - asked)
                    await asyncio.sleep(0.05)  # pacing the probes, not waiting for anything
            assert slowest < 0.5
            assert proxy.hung_connections >= 2
            assert consumed_values(worker) == 0
            assert await committed(stack, group) == 0
            proxy.restore()
            await until_committed(stack, group, 2 * KEYS, "every record committed")
            await until(lambda: dashboard.holds_round(1), seconds(10), message="round 1 shown")
        assert await stack.dead_letters(idle_s=0.5) == []


# ---------------------------------------------------------------------------- dashboard
async def dashboard_outage(
    mode: str, endpoints: Endpoints, session_ms: int, group: str
) -> tuple[DashboardWorker, FakeDashboard, int]:
    """Rounds 0-1 pushed, then the dashboard in ``mode`` while rounds 2-31 arrive, then back.

    Returns the worker, the dashboard and the largest offset bookkeeping seen in the outage.
    """
    async with started(endpoints) as (stack, dashboard, _):
        worker = DashboardWorker(stack.dashboard_config(dashboard, group, session_ms))
        largest = 0
        async with running(worker):
            await stack.publish_rounds(range(2))
            await until(lambda: dashboard.holds_round(1), seconds(20), message="round 1 shown")
            await until_committed(stack, group, 2 * KEYS, "rounds 0-1 committed")
            if mode == "down":
                await dashboard.down()
            dashboard.mode = mode
            for first in range(2, 32, 10):  # 3,000 records while it is out
                await stack.publish_rounds(range(first, first + 10))
                await until(
                    lambda: sample(worker, "genesys_pipeline_dashboard_fetch_paused") == 1,
                    seconds(20),
                    message="fetching paused while the circuit is open",
                )
                largest = max(largest, worker.values.offsets.entries())
                assert len(worker.values) <= KEYS
                assert await committed(stack, group) == 2 * KEYS  # nothing more was pushed
            if mode == "down":
                await dashboard.up()
            dashboard.mode = "ok"
            await until(lambda: dashboard.holds_round(31), seconds(30), message="round 31")
            await until_committed(stack, group, 32 * KEYS, "every record committed")
            assert sample(worker, "genesys_pipeline_dashboard_fetch_paused") == 0
        return worker, dashboard, largest


async def test_fault_dashboard_down_then_back(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    """Fault: dashboard down while 3,000 records arrive, then back / System: circuit opens,
    fetching pauses (group kept), one value and a few offset entries per key / Check: while
    down, commits stop at the acknowledged records and bookkeeping stays within 4 entries per
    key; after, every key at its latest value, no regression, all committed."""
    worker, dashboard, largest = await dashboard_outage(
        "down", endpoints, group_timeouts["session.timeout.ms"], unique_name("down")
    )
    assert largest <= METRIC_PARTITIONS + 4 * KEYS
    assert dashboard.regressions == []
    assert worker.breaker.state == "closed"
    assert dead_letter_count(worker) == 0


async def test_fault_dashboard_slow(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    """Fault: dashboard slow (answers after DASHBOARD_TIMEOUT_S) while 3,000 records arrive /
    System: timeouts count as failures, re-sends keep the idempotency key, circuit opens and
    fetching pauses / Check: commits stop at acknowledged records, bookkeeping bounded; then
    every key at its latest value, no regression, all committed."""
    worker, dashboard, largest = await dashboard_outage(
        "slow", endpoints, group_timeouts["session.timeout.ms"], unique_name("slow")
    )
    assert dashboard.answers["slow"] >= 1
    assert largest <= METRIC_PARTITIONS + 4 * KEYS
    assert dashboard.regressions == []
    assert dead_letter_count(worker) == 0


def dead_letter_count(worker: DashboardWorker) -> float:
    return sum(
        sample(worker, "genesys_pipeline_dashboard_dead_letters_total", stage=stage)
        for stage in ("dashboard", "dashboard-decode")
    )


async def test_fault_dashboard_413(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    """Fault: 413: 5,000 values (2 MB of JSON) for the reference wallboard (1 MiB limit), plus
    one value of 2.4 MB of JSON / System: batches cut by bytes (DASHBOARD_MAX_BATCH_BYTES) so
    the first push fits; the oversized value alone gets 413, is dead-lettered (cut to fit)
    and committed past / Check: exactly one 413, 5,000 values shown, one truncated dead
    letter (HTTP 413), all committed."""
    async with started(endpoints) as (stack, _, _):
        assert stack.outbox is not None
        board = Wallboard("127.0.0.1", 0, SecretStr(SECRET))
        url = await board.start()
        group = unique_name("wall")
        cfg = stack.dashboard_config(
            f"{url}/api/push", group, group_timeouts["session.timeout.ms"],
            max_batch=5000, timeout_s=10.0,
        )  # fmt: skip
        worker = DashboardWorker(cfg)
        keys = 5000
        # 200 kB in Kafka, 2.4 MB of JSON: 6 bytes ("\u0001") per character, key and value.
        huge = metric_record(entity_id="huge", qualifier="\x01" * 200_000)
        try:
            await stack.publish_rounds(range(1), keys=keys)
            await stack.publish([stack.outbox.metric(huge)])
            async with running(worker):
                await until_committed(stack, group, keys + 1, "every record committed")
                totals = board.state()["totals"]
                assert totals["values_held"] == keys
                assert totals["too_large"] == 1
                assert worker.rejected == 1
                assert (
                    2
                    <= sample(worker, "genesys_pipeline_dashboard_pushes_total", outcome="ok")
                    <= 10
                )
        finally:
            await board.aclose()
        dead = await stack.dead_letters()
    [(_, _, value, headers)] = dead
    assert (value["stage"], value["reason"][:8]) == ("dashboard", "HTTP 413")
    original = int(headers[TRUNCATION_HEADERS[0]])
    assert original > 1024 * 1024
    assert len(value["raw"]) < original
    assert value["raw"].startswith(b'{"batch_id":')


# ---------------------------------------------------------------------------- the command line
@contextlib.asynccontextmanager
async def worker_process(
    stack: Stack, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``pipeline worker dashboard`` as a child process (killed if still running at the end)."""
    with log.open("ab") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline", "worker", "dashboard", str(SPEC),
            env={**os.environ, **env}, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def received(env: dict[str, str]) -> float:
    """``genesys_pipeline_dashboard_values_received_total`` of the child, from its ops
    endpoint (-1: not up)."""
    url = f"http://127.0.0.1:{env['PIPELINE_OPS_PORT']}/metrics"
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            text = (await client.get(url)).text
    except httpx.HTTPError:
        return -1.0
    for line in text.splitlines():
        if line.startswith("genesys_pipeline_dashboard_values_received_total "):
            return float(line.split()[1])
    return -1.0


@pytest.mark.parametrize("status", [401, 404])
async def test_fault_dashboard_refuses_every_push(
    status: int,
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Fault: 401 or 404 from the dashboard (wrong DASHBOARD_SECRET or DASHBOARD_URL) /
    System: `pipeline worker dashboard` stops at the first answer, not ready, no dead letter
    or commit, exit 2 with the cause on one line / Check: exit code 2, last stderr line names
    the status and the settings (never the secret), nothing committed, no dead letter."""
    async with started(endpoints) as (stack, dashboard, _):
        await stack.publish_rounds(range(1))
        group, secret = unique_name("refused"), "canary-wrong-secret"
        url = dashboard.url if status == 401 else dashboard.url.replace("/push", "/nope")
        env = stack.env(group, group_timeouts["session.timeout.ms"], url, secret)
        if status == 404:
            env["DASHBOARD_SECRET"] = SECRET
        log = tmp_path / "worker.log"
        async with worker_process(stack, env, log) as proc:
            code = await asyncio.wait_for(proc.wait(), seconds(60))
        text = log.read_text()
        last = text.strip().splitlines()[-1]
        assert code == 2, text
        assert last.startswith("error: dashboard push"), last
        assert str(status) in last
        assert "check DASHBOARD_URL and DASHBOARD_SECRET" in last
        assert secret not in text
        assert dashboard.bad_signatures == (1 if status == 401 else 0)
        assert dashboard.pushes == 0
        assert await committed(stack, group) == 0
        assert await stack.dead_letters(idle_s=0.5) == []


async def test_fault_worker_killed_mid_batch(
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Fault: `pipeline worker dashboard` SIGKILLed while its pushes fail, then restarted /
    System: only acknowledged values were committed, so the restart re-reads and pushes the
    rest / Check: after the kill, committed = acknowledged records; the restart reads exactly
    the unacknowledged ones; every key at its latest value, no regression, all committed."""
    async with started(endpoints) as (stack, dashboard, _):
        group = unique_name("killed")
        env = stack.env(group, group_timeouts["session.timeout.ms"], dashboard.url, SECRET)
        await stack.publish_rounds(range(5))
        async with worker_process(stack, env, tmp_path / "first.log") as first:
            await until(lambda: dashboard.holds_round(4), seconds(60), message="round 4 shown")
            await until_committed(stack, group, 5 * KEYS, "the acknowledged rounds committed")
            dashboard.mode = "500"
            await stack.publish_rounds(range(5, 10))

            async def holding_unacknowledged() -> bool:
                return await received(env) > 5 * KEYS and dashboard.answers.get("500", 0) >= 1

            await until(holding_unacknowledged, seconds(30), message="pushes of rounds 5-9 fail")
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
        assert await committed(stack, group) == 5 * KEYS  # nothing unacknowledged
        assert not dashboard.holds_round(9)

        dashboard.mode = "ok"
        env["PIPELINE_OPS_PORT"] = str(free_port())
        async with worker_process(stack, env, tmp_path / "second.log") as second:
            await until(lambda: dashboard.holds_round(9), seconds(60), message="round 9 shown")
            await until_committed(stack, group, 10 * KEYS, "every record committed")
            assert await received(env) == 5 * KEYS  # exactly the unacknowledged records
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), seconds(30)) == 0
        assert dashboard.regressions == []
        assert dashboard.bad_signatures == 0


# ---------------------------------------------------------------------------- Kafka
async def test_fault_kafka_unreachable_for_the_freshness_worker(
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Fault: Kafka unreachable for the freshness worker for 8 s (longer than its session) /
    System: fetches return nothing, commits and reports are put off and retried, no crash;
    the worker rejoins its group / Check: the worker keeps running; every record measured
    and committed after the outage."""
    async with (
        proxied_broker(endpoints, tmp_path) as (private, proxy),
        started(private) as (stack, dashboard, _),
    ):
        group = unique_name("fresh-cut")
        worker = new_worker(
            "freshness", stack, dashboard, group, group_timeouts["session.timeout.ms"]
        )
        async with running(worker) as task:
            await stack.publish_rounds(range(1))
            await until_committed(stack, group, KEYS, "round 0 committed")
            proxy.cut()
            pending = asyncio.create_task(stack.publish_rounds(range(1, 3)))
            await asyncio.sleep(seconds(8))  # the outage itself
            assert not task.done()
            proxy.restore()
            await pending
            await until_committed(stack, group, 3 * KEYS, "every record committed")
            assert consumed_values(worker) >= 3 * KEYS
            assert not task.done()
