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
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.core.contract.dead_letter import TRUNCATION_HEADERS
from pipeline.core.contract.wire import confluent_header
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardWorker
from pipeline.services.freshness_worker import FreshnessWorker
from tests.conftest import seconds
from tests.polling import until
from tests.tcp_proxy import TcpProxy
from tests.workers import (
    KEYS,
    FakeDashboard,
    Stack,
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
        return worker.metrics.records_in - sample(worker, "dashboard_decode_errors_total",
                                                   topic="metrics")  # fmt: skip
    return sample(worker, "freshness_records_total", topic="metrics")


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
    """Fault: undecodable values on <prefix>.metrics: a 6-byte truncated value, an unknown
    schema id, a schema that does not resolve, a 1 MB value near the record limit /
    System: each goes to the DLQ (the 1 MB one cut to fit, with its original length), is
    counted and committed past; the worker goes on / Check: exactly 4 dead letters, every
    valid record handled, committed offsets = every record."""
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
            assert sample(worker, f"{kind}_decode_errors_total", topic="metrics") == 4
            assert sample(worker, f"{kind}_dead_letters_truncated_total") == 1
            if kind == "dashboard":
                await until(lambda: dashboard.holds_round(1), seconds(10), message="round 1")
        dead = await stack.dead_letters()
    assert len(dead) == 4
    assert {value["stage"] for _, _, value, _ in dead} == {f"{kind}-decode"}
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
    """Fault: undecodable values on <prefix>.audit (read in full at every start, never
    committed): truncated, unknown schema id, unresolvable schema / System: each is
    dead-lettered and skipped; start-up is not blocked and the audit records after them are
    read / Check: the worker is ready, exactly 3 dead letters, both valid audit records
    (before and after the poison) were applied."""
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
            return sample(worker, "freshness_records_total", topic="audit")

        async with running(worker):
            await until(lambda: worker.readiness() == [], seconds(20), message="ready")
            await until(lambda: applied() == 2, seconds(20), message="both audit records read")
            assert sample(worker, f"{kind}_decode_errors_total", topic="audit") == 3
        dead = await stack.dead_letters()
    assert sorted(value["raw"] for _, _, value, _ in dead) == sorted(poison.values())
    assert {value["stage"] for _, _, value, _ in dead} == {f"{kind}-decode"}
