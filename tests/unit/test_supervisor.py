"""The shard's supervisor with stand-in streams (no sockets): a crash is restarted and
counted, a final failure ends everything with its cause, stopping is bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.session import SessionState
from pipeline.core.http_policy import Backoff
from pipeline.errors import ChannelFailedError
from pipeline.genesys.supervisor import run_streams
from tests.polling import until

NO_WAIT = Backoff(base_s=0.0, cap_s=0.0)


class Session:
    def __init__(self) -> None:
        self.state = SessionState.IDLE
        self.failure: str | None = None
        self.failure_kind: AuditKind | None = None


class Stream:
    """Runs each script step in turn: "crash", "fail:<kind>", "gave up", or runs until stopped."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.session = Session()
        self.runs = self.resets = 0
        self._stop = asyncio.Event()
        self.ignore_stop = False
        self.delay = 0.0

    async def run(self) -> None:
        self.runs += 1
        await asyncio.sleep(self.delay)
        step = self.script.pop(0) if self.script else "run"
        if step == "crash":
            raise RuntimeError("boom")
        if step.startswith("fail:"):
            kind = AuditKind(step.removeprefix("fail:"))
            self.session.state, self.session.failure_kind = SessionState.FAILED, kind
            self.session.failure = f"{kind}: status 403, missing permission"
            return
        await (asyncio.Event() if self.ignore_stop else self._stop).wait()
        self.session.state = SessionState.STOPPED

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        self.resets += 1
        self.session = Session()


async def test_a_crashed_stream_is_restarted_and_counted() -> None:
    stream, healthy = Stream("crash", "crash"), Stream()
    restarts: list[tuple[Any, str, float]] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_streams(
            [stream, healthy],  # type: ignore[list-item]
            stop,
            on_restart=lambda s, reason, delay: restarts.append((s, reason, delay)),
            backoff=NO_WAIT,
        )
    )
    await until(lambda: stream.runs == 3, 5, message="two restarts")
    assert not task.done()
    assert [(s, r) for s, r, _ in restarts] == [(stream, "crashed: RuntimeError('boom')")] * 2
    assert stream.resets == 2
    stop.set()
    await asyncio.wait_for(task, 5)
    assert healthy.runs == 1


async def test_a_stream_that_failed_for_good_ends_them_all_with_its_cause() -> None:
    failing, healthy = Stream("fail:subscribe.rejected"), Stream()
    failing.delay = 0.05  # the healthy one runs by then
    with pytest.raises(ChannelFailedError, match="channel 1 of 2 failed for good: subscribe"):
        await asyncio.wait_for(run_streams([failing, healthy], backoff=NO_WAIT), 5)  # type: ignore[list-item]
    assert healthy.session.state is SessionState.STOPPED


async def test_a_stream_that_gave_up_creating_channels_is_restarted() -> None:
    stream = Stream("fail:channel.recreate_exhausted")
    restarts: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_streams(
            [stream],  # type: ignore[list-item]
            stop,
            on_restart=lambda s, reason, delay: restarts.append(reason),
            backoff=NO_WAIT,
        )
    )
    await until(lambda: stream.runs == 2, 5, message="one restart")
    stop.set()
    await asyncio.wait_for(task, 5)
    assert restarts == ["failed: channel.recreate_exhausted: status 403, missing permission"]


async def test_a_stream_that_does_not_stop_is_cancelled_after_the_grace_period() -> None:
    stuck = Stream()
    stuck.ignore_stop = True  # e.g. blocked on a sink that never returns
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(run_streams([stuck], stop, grace_s=0.1), 5)  # type: ignore[list-item]
    assert stuck.runs == 1
