"""The fault matrix, producer side: one test per fault, each ending with exact accounting
through Kafka (tests/producer_rig.py): every intact frame the emulator logged is a record in
Kafka or inside an audited gap that was backfilled, every broken frame a dead letter, and a
record written twice is the same record (event id).

Time is scaled: the session's timers (tests/producer_rig.FAST) are 50-100× shorter than in
production, the emulator runs its contact center at 60× and sends heartbeats every 0.5 s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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
from pipeline.local.stack import Endpoints
from tests.conftest import seconds
from tests.polling import until
from tests.producer_rig import start_rig

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
