"""The producer as a process, for the kill-and-restart row of the fault matrix: run
``pipeline produce``, SIGKILL it, start it again, and ask the emulator what its org says now."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from pipeline.core.contract.mapping import map_event
from pipeline.core.genesys.backfill import observation_events, plan_snapshot
from pipeline.emulator.clock import ManualClock
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.thread import EmulatorThread
from pipeline.genesys.client import genesys_client
from tests.conftest import seconds
from tests.polling import until

__all__ = ["expected_observations", "kill_and_restart"]


async def _connected(http: httpx.AsyncClient) -> int:
    state = (await http.get("/__emulator/state")).json()
    return sum(bool(c["socketConnected"]) for c in state["channels"])


async def _state_connected(http: httpx.AsyncClient) -> bool:
    return await _connected(http) > 0


async def _state_disconnected(http: httpx.AsyncClient) -> bool:
    return await _connected(http) == 0


async def _more_than(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() > n


async def _produce(spec: Path, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline", "produce", str(spec), env=env, stdout=out, stderr=out
        )


async def expected_observations(base_url: str, topics: list[str], now: float) -> dict[Any, Any]:
    """What a snapshot of the emulator's queue observations says now (its clock stands still)."""
    values: dict[Any, Any] = {}
    async with genesys_client(base_url, DEMO_CLIENT_ID, SecretStr(DEMO_CLIENT_SECRET)) as rest:
        for body in plan_snapshot(topics, now).observation_queries:
            for event in observation_events(await rest.queue_observations(body), now, "initial"):
                for r in map_event(event, ingest_ms=0, instance="test"):
                    values[(r.entity_id, r.metric, r.qualifier, r.media_type)] = (r.count, r.value)
    return values


async def kill_and_restart(
    thread: EmulatorThread,
    clock: ManualClock,
    spec: Path,
    env: dict[str, str],
    log: Path,
    runs: list[asyncio.subprocess.Process],
    initial_backfills: Callable[[], Awaitable[int]],
) -> float:
    """Run the producer, SIGKILL it, change the org, run it again, stop it; when it restarted."""
    async with httpx.AsyncClient(base_url=thread.base_url) as admin:
        runs.append(await _produce(spec, env, log))
        await until(lambda: _state_connected(admin), seconds(30), message="the first run streams")
        clock.advance(30)
        thread.step()  # every topic that changed sends a frame
        await until(
            lambda: _more_than(initial_backfills, 0),
            seconds(30),
            message="the first run's initial backfill",
            poll_s=0.3,
        )
        runs[0].kill()
        assert await runs[0].wait() == -signal.SIGKILL
        await until(
            lambda: _state_disconnected(admin), seconds(10), message="the emulator saw it go"
        )
        clock.advance(300)  # the org changes while nobody listens
        thread.step()
        restarted_at = time.time()
        runs.append(await _produce(spec, env, log))
        await until(
            lambda: _more_than(initial_backfills, 1),
            seconds(30),
            message="the restart's initial backfill",
            poll_s=0.3,
        )
        runs[1].send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(runs[1].wait(), seconds(30))
        assert code == 0, "the restarted producer did not stop cleanly (see producer.log)"
    return restarted_at
