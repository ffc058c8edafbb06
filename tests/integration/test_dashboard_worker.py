"""The dashboard worker against a real broker, registry and a fake dashboard (aiohttp,
:class:`tests.workers.FakeDashboard`): outages, throttling, slowness, a refused batch, a crash,
staleness, a 413 and a wrong secret."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson
import pytest

from pipeline.errors import DashboardConfigError
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardWorker
from tests.conftest import seconds
from tests.polling import until
from tests.tcp_proxy import TcpProxy
from tests.workers import (
    KEYS,
    FakeDashboard,
    Stack,
    committed,
    dead_letters,
    event_time,
    key_of,
    metric,
    pushes_met,
    running,
)

pytestmark = pytest.mark.integration


async def test_latest_values_survive_outages_and_a_400_goes_to_the_dlq(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    session_ms = group_timeouts["session.timeout.ms"]
    worker = DashboardWorker(stack.dashboard_config(dashboard, unique_name("dash"), session_ms))
    try:
        async with running(worker):
            # 2,000 records: 4 rounds (one update per key each) under each condition.
            phases = ["ok", "down", "500", "429", "slow"]
            for i, mode in enumerate(phases):
                if mode == "down":
                    await dashboard.down()
                elif not dashboard.is_up:
                    await dashboard.up()
                dashboard.mode = mode
                hits, records = pushes_met(worker, dashboard, mode), 4 * KEYS * (i + 1)
                await stack.publish_rounds(range(4 * i, 4 * i + 4))
                # While the circuit is open (down, 500, slow) the worker stops fetching; under
                # 429 it re-sends its batch after each Retry-After before it fetches more.
                wanted = records if mode == "ok" else 0
                await until(
                    lambda mode=mode, hits=hits, wanted=wanted: (
                        worker.metrics.records_in >= wanted
                        and pushes_met(worker, dashboard, mode) > hits
                    ),
                    seconds(30),
                    message=f"the records of phase {mode!r} consumed and pushed into it",
                )
            dashboard.mode = "ok"
            await until(lambda: dashboard.holds_round(19), seconds(30), message="round 19 shown")
            assert worker.metrics.records_in == 2000
            assert set(dashboard.answers) == {"ok", "500", "429", "slow"}  # each one was hit
            assert worker.breaker.state == "closed"
            assert dashboard.regressions == []
            assert dashboard.bad_signatures == 0
            assert dashboard.pushes < 200  # HTTP pushes, for 2,000 records
            assert worker.metrics.values_out <= 1000  # coalesced: ≥ 2 records per value
            assert worker.metrics.records_in >= 2 * worker.metrics.values_out

            # A 400: the batches go to the DLQ, with an audit record, and the worker goes on.
            dashboard.mode = "400"
            await stack.publish_rounds(range(20, 21))
            # 100 keys / 40 per batch
            await until(lambda: worker.rejected >= 3, seconds(20), message="3 batches rejected")
            dashboard.mode = "ok"
            await stack.publish_rounds(range(21, 22))
            await until(lambda: dashboard.holds_round(21), seconds(20), message="round 21 shown")
            assert worker.readiness() == []
        dead = await stack.read("dlq", "dead_letter", 3)
        audits = await stack.read(
            "audit",
            "audit",
            3,
            done=lambda out: sum(a["kind"] == "dashboard.rejected" for a in out) >= 3,
        )
    finally:
        await dashboard.down()
        await stack.aclose()
    assert {d["stage"] for d in dead} == {"dashboard"}
    assert {d["reason"] for d in dead} == {"HTTP 400"}
    rejected = [v for d in dead for v in orjson.loads(d["raw"])["values"]]
    assert sorted(v["key"] for v in rejected) == sorted(key_of(k) for k in range(KEYS))
    assert {v["event_time"] for v in rejected} == {event_time(20, k) for k in range(KEYS)}
    # The outages were degradation, audited as such: degraded, then recovered, each time.
    assert {a["kind"] for a in audits} == {
        "dashboard.rejected", "service.degraded", "service.recovered",
    }  # fmt: skip
    changes = [a for a in audits if a["kind"].startswith("service.")]
    assert [a["kind"] for a in changes[:2]] == ["service.degraded", "service.recovered"]
    assert {orjson.loads(a["details_json"])["reason"] for a in changes} == {"dashboard"}
    assert dashboard.regressions == []


async def test_a_killed_worker_is_resumed_from_the_last_acknowledged_values(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    group = unique_name("dash")
    session_ms = group_timeouts["session.timeout.ms"]
    try:
        first = DashboardWorker(stack.dashboard_config(dashboard, group, session_ms))
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        await stack.publish_rounds(range(5))
        await until(lambda: dashboard.holds_round(4), seconds(30), message="round 4 shown")
        metrics_topic = stack.topic("metrics")

        async def acknowledged_is_committed() -> bool:
            offsets = await asyncio.to_thread(committed, stack.endpoints, group, metrics_topic)
            return offsets == 5 * KEYS

        await until(
            acknowledged_is_committed,
            seconds(10),
            message="the offsets of the acknowledged rounds 0-4 committed",
            poll_s=0.1,
        )
        dashboard.mode = "500"
        await stack.publish_rounds(range(5, 10))
        await until(
            lambda: first.metrics.records_in == 1000 and dashboard.answers.get("500", 0) >= 1,
            seconds(30),
            message="rounds 5-9 consumed and a push of them refused",
        )
        task.cancel()  # a crash: no last push, no commit
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not dashboard.holds_round(9)

        dashboard.mode = "ok"
        applied_before = len(dashboard.applied)
        second = DashboardWorker(stack.dashboard_config(dashboard, group, session_ms))
        async with running(second):
            await until(lambda: dashboard.holds_round(9), seconds(30), message="round 9 shown")
        assert second.metrics.records_in == 500  # only the unacknowledged half is re-read
        resent = dashboard.applied[applied_before:]
        assert resent
        assert all(t >= event_time(5, 0) for _, t in resent)
        assert dashboard.regressions == []
        assert dashboard.bad_signatures == 0
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_values_of_a_silent_producer_are_pushed_as_stale_then_fresh_again(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    worker = DashboardWorker(
        stack.dashboard_config(
            dashboard, unique_name("stale"), group_timeouts["session.timeout.ms"]
        )
    )
    try:
        # Round 0 was ingested long ago (BASE_MS) and the producer has said nothing since.
        await stack.publish_rounds(range(1))
        async with running(worker):
            await until(
                lambda: len(dashboard.store) == KEYS, seconds(30), message="every key shown"
            )
            await until(
                lambda: all(v["stale"] for v in dashboard.store.values()),
                seconds(30),
                message="every key shown as stale",
            )
            # The producer speaks again: one fresh record makes its keys fresh again.
            assert stack.outbox is not None
            now_ms = int(time.time() * 1000)
            fresh = dataclasses.replace(metric(1, 0), event_time=now_ms, ingest_time=now_ms)
            await stack.publisher.publish_many([stack.outbox.metric(fresh)])
            assert await stack.publisher.flush() == 0
            await until(
                lambda: not any(v["stale"] for v in dashboard.store.values()),
                seconds(30),
                message="every key shown as fresh again",
            )
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_a_413_splits_batches_until_they_pass_and_nothing_is_dead_lettered(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    dashboard.max_values = 15  # the worker starts with batches of 40
    await stack.start()
    await dashboard.up()
    worker = DashboardWorker(
        stack.dashboard_config(
            dashboard, unique_name("split"), group_timeouts["session.timeout.ms"]
        )
    )
    try:
        async with running(worker):
            await stack.publish_rounds(range(2))
            await until(lambda: dashboard.holds_round(1), seconds(30), message="round 1 shown")
            assert dashboard.too_large >= 1
            assert worker.batch_limit <= 15
            assert worker.rejected == 0
            assert not dead_letters(worker)
            assert dashboard.regressions == []
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_a_wrong_secret_stops_the_worker_loudly_without_dead_letters_or_commits(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    dashboard = FakeDashboard()
    await stack.start()
    await dashboard.up()
    group, session_ms = unique_name("wrong"), group_timeouts["session.timeout.ms"]
    worker = DashboardWorker(stack.dashboard_config(dashboard, group, session_ms, "canary-wrong"))
    try:
        await stack.publish_rounds(range(1))
        task = asyncio.create_task(worker.run(asyncio.Event()))
        with pytest.raises(DashboardConfigError) as info:
            await asyncio.wait_for(task, seconds(60))
        assert "401" in str(info.value)
        assert "canary-wrong" not in str(info.value)
        assert any("401" in reason for reason in worker.readiness())  # marked not ready
        assert dashboard.bad_signatures == 1  # one push, no retries
        assert worker.rejected == 0
        assert not dead_letters(worker)

        fixed = DashboardWorker(stack.dashboard_config(dashboard, group, session_ms))
        async with running(fixed):
            await until(lambda: dashboard.holds_round(0), seconds(30), message="round 0 shown")
        assert fixed.metrics.records_in == KEYS  # nothing was committed: all read again
    finally:
        await dashboard.down()
        await stack.aclose()


async def test_a_worker_waiting_for_a_hung_registry_at_start_stops_when_told(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    url = urlsplit(endpoints.schema_registry_url)
    proxy = TcpProxy(url.port or 80, target_host=url.hostname or "127.0.0.1")
    await proxy.start()
    stack = Stack(endpoints, f"http://127.0.0.1:{proxy.listen_port}")
    dashboard = FakeDashboard()
    await stack.start()
    try:
        proxy.hang()
        config = stack.dashboard_config(dashboard, unique_name("g"), 2000)
        slow = dataclasses.replace(config, registry=stack.registry(timeout_s=30.0))
        worker = DashboardWorker(slow)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await until(lambda: proxy.hung_connections >= 1, seconds(10), message="registry asked")
        assert worker.readiness() == ["schema contract not checked yet"]
        stop.set()
        await asyncio.wait_for(task, seconds(2))  # not after the 30 s request timeout
    finally:
        proxy.restore()  # the abandoned request ends now
        await stack.aclose()
        await proxy.aclose()
