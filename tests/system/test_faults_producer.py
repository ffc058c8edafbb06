"""The fault matrix, producer side: one test per fault, each ending with exact accounting
through Kafka (tests/producer_rig.py): every intact frame the emulator logged is a record in
Kafka or inside an audited gap that was backfilled, every broken frame a dead letter, and a
record written twice is the same record (event id).

Time is scaled: the session's timers (tests/producer_rig.FAST) are 50-100× shorter than in
production, the emulator runs its contact center at 60× and sends heartbeats every 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from pipeline.core.http_policy import Backoff
from pipeline.emulator.clock import ManualClock
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.state.faults import (
    DropSocket,
    EvictChannel,
    ExpireChannel,
    ExpireToken,
    MalformedFrames,
    OversizedFrames,
    RevokeToken,
    SendSocketClosing,
    StallSocket,
    TruncatedFrames,
)
from pipeline.emulator.thread import EmulatorThread
from pipeline.errors import ChannelFailedError
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services import producer as producer_module
from tests.conftest import seconds
from tests.polling import until
from tests.producer_process import expected_observations, kill_and_restart
from tests.producer_rig import (
    EMULATOR,
    PARTITIONS,
    proxied_broker,
    read_topics,
    spec_file,
    start_rig,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

Factory = Callable[..., EmulatorThread]


async def test_fault_websocket_drop(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the WebSocket drops without a close frame. / System: gap from the last frame,
    HEAD, new socket, gap backfill. / Check: every frame in Kafka or in the backfilled gap."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    rig.emulator.inject(DropSocket(rig.channel_id))
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    assert tally.gaps == 1
    assert [d["reason"] for d in outcome.audits("gap.closed")] == ["socket.dropped"]


async def test_fault_socket_closing(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: Genesys sends socket_closing, then closes after 1 s. / System: a new socket on
    the same URI opens before the old one closes (make before break). / Check: every frame in
    Kafka (a kick racing the handshake is a backfilled gap instead)."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    first = rig.stream.session.socket_id
    rig.emulator.inject(SendSocketClosing(rig.channel_id, close_after=1.0))
    await until(
        lambda: rig.is_live() and rig.stream.session.socket_id != first,
        seconds(15),
        message="a new socket streams",
    )
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    replaced = len(outcome.audits("socket.replaced"))
    assert (replaced, tally.gaps) in {(1, 0), (0, 1)}
    assert outcome.audits("socket.closing")


async def test_fault_heartbeat_stall(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the socket turns into a black hole (no frames, heartbeats or pongs). / System:
    watchdog ping, timeout, reconnect, gap backfill. / Check: the frames sent into the black
    hole are inside the backfilled heartbeat.timeout gap."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    rig.emulator.inject(StallSocket(rig.channel_id))
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    assert tally.in_gaps > 0
    assert outcome.audits("heartbeat.timeout")
    assert [d["reason"] for d in outcome.audits("gap.closed")] == ["heartbeat.timeout"]


@pytest.mark.parametrize("fault", [EvictChannel, ExpireChannel])
async def test_fault_channel_eviction_and_expiry(
    fault: type[EvictChannel | ExpireChannel],
    emulator_factory: Factory,
    endpoints: Endpoints,
    tmp_path: Path,
) -> None:
    """Fault: the channel is evicted (no_longer_subscribed) or expires. / System: a new
    channel, subscribed again, gap backfill. / Check: every frame of the old and new channel
    in Kafka or in the backfilled gap; two channel.created audits."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    first = rig.channel_id
    rig.emulator.inject(fault(first))  # type: ignore[arg-type]
    await until(
        lambda: rig.is_live() and rig.stream.session.channel_id != first,
        seconds(20),
        message="a new channel streams",
    )
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    assert tally.gaps == 1
    assert len(outcome.audits("channel.created")) == 2


@pytest.mark.parametrize("revoke", [False, True], ids=["expiry", "revocation"])
async def test_fault_token_expiry_and_revocation(
    revoke: bool, emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the token expires (401 on the next call) or is revoked (token_revoked on the
    socket). / System: a new token (and after a revocation a new channel), gap backfill. /
    Check: every frame in Kafka or in the backfilled gap; a second token.issued audited."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    emulator = rig.emulator.emulator
    assert emulator is not None
    for token_id in emulator.state.tokens.token_ids():
        rig.emulator.inject(RevokeToken(token_id) if revoke else ExpireToken(token_id))
    if not revoke:
        rig.emulator.inject(DropSocket(rig.channel_id))  # the next REST call meets the 401
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    outcome.account()
    assert len(outcome.audits("token.issued")) >= 2
    if revoke:
        assert outcome.audits("system.token_revoked")
        assert any(d["forced"] for d in outcome.audits("token.refreshed"))


async def test_fault_credentials_refused_mid_run(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the token is revoked and the login service then refuses the credentials (401).
    / System: the session fails for good (token.rejected), every channel stops and the
    service ends with ChannelFailedError naming the cause (exit 1), never exit 0. / Check:
    the cause on one line; every frame before the refusal in Kafka."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    emulator = rig.emulator.emulator
    assert emulator is not None
    emulator.state.faults.fail_requests(1000, 401, None, "/oauth")
    refused_at = time.time()
    for token_id in emulator.state.tokens.token_ids():
        rig.emulator.inject(RevokeToken(token_id))
    with pytest.raises(ChannelFailedError) as failed:
        await asyncio.wait_for(rig.task, seconds(20))
    assert "\n" not in str(failed.value)
    assert "failed for good: token.rejected: status 401" in str(failed.value)
    outcome = await rig.outcome(refused_at)
    outcome.account()
    assert [d["status"] for d in outcome.audits("token.rejected")] == [401]


async def test_fault_429_storm(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: 429 (Retry-After: 1) on the next 4 notification API calls while recovering.
    / System: each call waits Retry-After, every caller of the client pauses. / Check: every
    frame in Kafka or in the backfilled gap; exactly 4 failures with status 429 audited."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    faults = rig.emulator.emulator.state.faults  # type: ignore[union-attr]
    faults.fail_requests(4, 429, 1, "/api/v2/notifications")
    rig.emulator.inject(DropSocket(rig.channel_id))
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    outcome.account()
    assert faults.pending_request_faults() == 0
    statuses = [d.get("status") for v in ("channel.check.failed", "subscribe.failed",
                "channel.create.failed", "token.failed") for d in outcome.audits(v)]  # fmt: skip
    assert statuses.count(429) == 4


async def test_fault_5xx_for_a_minute(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: every Platform API call answers 503 until 12 were answered (~3 s: a minute and
    more at production backoff, whose cap is 30 s against 0.3 s here). / System: calls retried
    with full-jitter backoff, the backfill after the outage. / Check: every frame in Kafka or
    in the backfilled gap; the 503s audited, no session failure."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    faults = rig.emulator.emulator.state.faults  # type: ignore[union-attr]
    faults.fail_requests(100_000, 503, None, "/api/v2/")
    rig.emulator.inject(DropSocket(rig.channel_id))
    await until(
        lambda: sum(c.fault.status == 503 for c in faults.consumed) >= 12,
        seconds(20),
        message="12 calls answered 503",
    )
    faults.clear()
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    outcome.account()
    failed = outcome.audits("channel.check.failed") + outcome.audits("channel.create.failed")
    assert len([d for d in failed if d["status"] == 503]) >= 3
    assert not outcome.audits("subscribe.rejected")


async def test_fault_rest_garbage(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: 200 answers whose body is not JSON, 3 times on the channel API, after an
    eviction. / System: a malformed 2xx is a failure the session retries (no task dies, no
    session waits forever). / Check: every frame in Kafka or in the backfilled gap; 3
    failures with status 200 audited."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    faults = rig.emulator.emulator.state.faults  # type: ignore[union-attr]
    first = rig.channel_id
    faults.answer_garbage(3, "/api/v2/notifications/channels")
    rig.emulator.inject(EvictChannel(first))
    await until(
        lambda: rig.is_live() and rig.stream.session.channel_id != first,
        seconds(20),
        message="a new channel streams",
    )
    await rig.live_with_events()
    outcome = await rig.finish()
    outcome.account()
    assert faults.pending_request_faults() == 0
    statuses = [d["status"] for kind in ("channel.create.failed", "subscribe.failed")
                for d in outcome.audits(kind)]  # fmt: skip
    assert statuses.count(200) == 3


async def test_fault_oversized_and_malformed_frames(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: 2 frames that are not JSON, 1 cut in half, then 1 frame of 2 MiB (the limit is
    1 MiB). / System: dead letters with their bytes; the oversized one closes the socket
    (1009): dead letter without bytes, gap, reconnect, backfill. / Check: 4 dead letters, every
    other frame in Kafka or in the backfilled gap."""
    rig = await start_rig(emulator_factory, endpoints, tmp_path)
    rig.emulator.inject(MalformedFrames(rig.channel_id, 2))
    rig.emulator.inject(TruncatedFrames(rig.channel_id, 1))
    await until(lambda: rig.service.dead_letters == 3, seconds(15), message="three dead letters")
    rig.emulator.inject(OversizedFrames(rig.channel_id, 1, 2 * 1024 * 1024))
    await rig.one_more_gap()
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    assert tally.dead_letters == 4
    broken = {f.text.encode() for f in outcome.frames if not f.intact and f.text}
    with_bytes = [d for d in outcome.dlq if d["raw"]]
    assert {d["raw"] for d in with_bytes} <= broken
    assert len(with_bytes) == 3
    (too_big,) = [d for d in outcome.dlq if not d["raw"]]
    assert "frame over the 1048576-byte limit" in too_big["reason"]
    assert [d["code"] for d in outcome.audits("socket.disconnected")] == [1009]


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A broker of this test's own behind a TCP proxy; yields (bootstrap, proxy)."""
    async with proxied_broker(tmp_path / "broker") as broker:
        yield broker


async def test_fault_kafka_unreachable_longer_than_the_delivery_timeout(
    emulator_factory: Factory,
    endpoints: Endpoints,
    tmp_path: Path,
    private_broker: tuple[str, TcpProxy],
) -> None:
    """Fault: Kafka cut (TCP proxy) for several delivery timeouts (1.5 s each). / System:
    records kept and produced again, the buffer fills (300), the stream blocks; the blocked
    interval becomes a publish.stalled gap, backfilled once Kafka is back. / Check: no record
    lost (every frame in Kafka or in the backfilled gap), none duplicated beyond event ids."""
    bootstrap, proxy = private_broker
    rig = await start_rig(
        emulator_factory,
        replace(endpoints, bootstrap_servers=bootstrap),
        tmp_path,
        kafka={"delivery_timeout_ms": 1500},
        settings={"max_in_flight": 300, "publish_stall_s": 1.0},
    )
    failures = rig.service.metrics.delivery_failures._value
    proxy.cut()
    await until(
        lambda: failures.get() >= 2 * 300, seconds(30), message="two rounds of delivery timeouts"
    )
    assert rig.service.stats().in_flight >= 300  # bounded: the stream waits instead
    proxy.restore()
    stalls = rig.service.metrics.publish_stalls._value
    await until(lambda: stalls.get() >= 1, seconds(30), message="the stall recorded as a gap")
    await rig.live_with_events()
    outcome = await rig.finish()
    tally = outcome.account()
    assert "publish.stalled" in [d["reason"] for d in outcome.audits("gap.closed")]
    failed = outcome.audits("publish.failed")  # summarised: one per topic and minute
    assert failed
    assert all(d["retrying"] for d in failed)
    assert tally.in_kafka > 0


@pytest.fixture
def quick_registry_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry an unavailable registry within a second (production: up to 30 s apart)."""
    monkeypatch.setattr(producer_module, "REGISTRY_BACKOFF", Backoff(0.05, 0.3))


async def proxied_registry(endpoints: Endpoints) -> TcpProxy:
    proxy = TcpProxy(urlsplit(endpoints.schema_registry_url).port or 80)
    await proxy.start()
    return proxy


@pytest.mark.usefixtures("quick_registry_retries")
async def test_fault_registry_down_at_start_and_mid_run(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the schema registry refuses connections at start, and again once streaming.
    / System: start-up retries with backoff, alive (/healthz 200) but not ready (/readyz 503
    says why); ids are resolved once, so the outage mid-run changes nothing. / Check: every
    frame in Kafka or in a backfilled gap."""
    proxy = await proxied_registry(endpoints)
    proxy.cut()
    try:
        rig = await start_rig(
            emulator_factory,
            endpoints,
            tmp_path,
            registry={"url": f"http://127.0.0.1:{proxy.listen_port}"},
            wait_live=False,
        )
        waiting = "waiting for the schema registry"
        await until(
            lambda: any(waiting in r for r in rig.service.readiness()),
            seconds(10),
            message="not ready, waiting for the registry",
        )
        assert rig.service.ops is not None
        async with httpx.AsyncClient(base_url=rig.service.ops.url) as ops:
            assert (await ops.get("/healthz")).status_code == 200
            ready = await ops.get("/readyz")
        assert ready.status_code == 503
        assert "is unreachable" in ready.json()["reasons"][0]
        proxy.restore()
        await rig.live_with_events()
        proxy.cut()
        await rig.live_with_events(30)
        outcome = await rig.finish()
    finally:
        await proxy.aclose()
    outcome.account()
    assert outcome.audits("subscription.validated")


@pytest.mark.usefixtures("quick_registry_retries")
async def test_fault_registry_hung(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the schema registry accepts connections and never answers. / System: every
    registry call times out (0.5 s here, 10 s by default) and start-up retries; not ready
    meanwhile, never stuck. / Check: not ready with a timeout reason, then streaming once it
    answers, every frame in Kafka or in a backfilled gap."""
    proxy = await proxied_registry(endpoints)
    proxy.hang()
    try:
        rig = await start_rig(
            emulator_factory,
            endpoints,
            tmp_path,
            registry={"url": f"http://127.0.0.1:{proxy.listen_port}", "timeout_s": 0.5},
            wait_live=False,
        )
        await until(
            lambda: any("Timeout" in r for r in rig.service.readiness()),
            seconds(15),
            message="not ready: the registry timed out",
        )
        proxy.restore()
        await rig.live_with_events()
        outcome = await rig.finish()
    finally:
        await proxy.aclose()
    outcome.account()


async def test_fault_producer_killed_and_restarted(
    emulator_factory: Factory, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Fault: the producer process is SIGKILLed, the org changes while it is down, and it is
    started again. / System: nothing is kept locally; the new run makes a new channel and its
    initial backfill writes the current state. / Check: every frame sent is in Kafka, the
    restart's observation records equal the org's state, and the audit shows the restart."""
    clock = ManualClock()
    thread = emulator_factory(clock=clock, **{**EMULATOR, "keep_frame_text": True})
    assert thread.emulator is not None
    queues = thread.emulator.center.queues[:4]
    spec = spec_file(tmp_path, [q.name for q in queues])
    prefix = f"t{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
    env = {
        **os.environ,
        "GENESYS_API_URL": thread.base_url,
        "GENESYS_CLIENT_ID": DEMO_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": endpoints.schema_registry_url,
        "PIPELINE_TOPIC_PREFIX": prefix,
        "PIPELINE_PARTITIONS": str(PARTITIONS),
        "PIPELINE_OPS_PORT": "0",
        "PIPELINE_OPS_HOST": "127.0.0.1",
        "PIPELINE_HEARTBEAT_S": "0.5",
    }
    audit_topic = {f"{prefix}.audit": 1}

    async def initial_backfills() -> int:
        read = await asyncio.to_thread(read_topics, endpoints, audit_topic, 0.3, 1.0)
        kinds = [orjson.loads(v["details_json"]) for _, _, v in read[f"{prefix}.audit"]
                 if v["kind"] == "backfill.finished"]  # fmt: skip
        return sum(d["backfill"] == "initial" for d in kinds)

    runs: list[asyncio.subprocess.Process] = []
    try:
        restarted_at = await kill_and_restart(
            thread, clock, spec, env, tmp_path / "producer.log", runs, initial_backfills
        )
    finally:
        for run in runs:
            if run.returncode is None:
                run.kill()
                await run.wait()
    now = clock.time()
    topics = [f"v2.analytics.queues.{q.id}.observations" for q in queues]
    expected = await expected_observations(thread.base_url, topics, now)
    read = await asyncio.to_thread(
        read_topics, endpoints, {f"{prefix}.metrics": PARTITIONS, f"{prefix}.audit": 1}
    )
    metrics = [v for _, _, v in read[f"{prefix}.metrics"]]
    audit = sorted((v for _, _, v in read[f"{prefix}.audit"]), key=lambda v: v["at"])

    sent = [f for f in thread.emulator.frames.frames() if f.kind == "event"]
    delivered = {v["correlation_id"] for v in metrics}
    assert sent, "the first run got frames"
    assert [f for f in sent if f.correlation_id not in delivered] == []

    def restart_values(after: float) -> dict[Any, Any]:
        return {
            (v["entity_id"], v["metric"], v["qualifier"], v["media_type"]): (v["count"], v["value"])
            for v in metrics
            if v["backfill"] and v["ingest_time"].timestamp() >= after
            and (v["entity_id"], v["metric"], v["qualifier"], v["media_type"]) in expected
        }  # fmt: skip

    assert expected
    assert restart_values(restarted_at) == expected
    before = restart_values(0)
    first_run = {
        (v["entity_id"], v["metric"], v["qualifier"], v["media_type"]): (v["count"], v["value"])
        for v in metrics
        if v["backfill"] and v["ingest_time"].timestamp() < restarted_at
    }
    assert any(first_run.get(k) != v for k, v in expected.items()), "the org did not change"
    assert before
    kinds = [(v["kind"], v["at"].timestamp() >= restarted_at) for v in audit]
    restart = kinds.index(("subscription.validated", True))
    assert ("producer.heartbeat", False) in kinds[:restart]
    assert ("backfill.finished", True) in kinds[restart:]
