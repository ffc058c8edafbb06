"""The emulator's injectable clock: a manual clock moves only when told, and drives the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.emulator.clock import Clock, ManualClock, SystemClock
from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.server import Emulator

EPOCH = datetime(2026, 5, 4, 9, 0, 0, 250_000, tzinfo=UTC)


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(EPOCH.timestamp())
    assert (clock.monotonic(), clock.time()) == (0.0, EPOCH.timestamp())
    clock.advance(1.5)
    clock.advance(0.5)
    assert (clock.monotonic(), clock.time()) == (2.0, EPOCH.timestamp() + 2.0)


def test_manual_clock_never_goes_back() -> None:
    with pytest.raises(ValueError, match="forward"):
        ManualClock().advance(-1.0)


def test_system_clock_is_monotonic() -> None:
    clock: Clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert clock.time() > EPOCH.timestamp()


def test_emulator_time_and_simulation_follow_the_clock() -> None:
    clock = ManualClock(EPOCH.timestamp())
    emulator = Emulator(EmulatorConfig(queues=2, agents=4, speed=60.0), clock=clock)
    assert emulator.started_at == EPOCH.replace(microsecond=0)
    assert emulator.now() == 0.0
    clock.advance(2.0)
    assert emulator.now() == 2.0
    assert emulator.center.now() == emulator.started_at  # moves only when caught up
    emulator.catch_up()
    assert emulator.center.now() == emulator.started_at + timedelta(minutes=2)


async def test_step_ends_channels_that_expired_on_the_clock() -> None:
    clock = ManualClock(EPOCH.timestamp())
    # The channel's own 24 h, not its token's 86399 s: keep it from ending with the token.
    config = EmulatorConfig(queues=2, agents=4, channels_die_with_token=False)
    emulator = Emulator(config, clock=clock)
    state = emulator.state
    grant = state.tokens.issue("emulator-client", "emulator-secret", "client_credentials", 0.0)
    who = state.tokens.authenticate(f"Bearer {grant.access_token}", 0.0)
    channel, _ = state.channels.create_channel(who.client_id, who.token_id, 0.0, "ws://x")
    assert channel.expires == "2026-05-05T09:00:00.000Z"
    clock.advance(24 * 3600 - 1)
    await emulator.step()
    assert state.channels.channel_exists(channel.id, emulator.now())
    clock.advance(1)
    await emulator.step()
    assert not state.channels.channel_exists(channel.id, emulator.now())
    assert state.sweep(emulator.now()) == []  # the step already ended and reported it
