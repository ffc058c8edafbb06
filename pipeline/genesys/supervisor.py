"""A shard's channel streams, run together: what dies is restarted, what cannot heal ends all.

:func:`run_streams` runs each :class:`~pipeline.genesys.stream.ChannelStream` in a task of its
own and watches how it ends:

- **asked to stop** (the session is STOPPED): done;
- **crashed** (``run()`` raised: a bug, or something the shell did not expect): the stream gets
  a fresh session (a new channel, whose initial backfill covers the time it was down) after a
  full-jitter backoff, and the restart is reported through ``on_restart`` (metric and audit);
- **failed for good** (the session is FAILED after a refusal retrying cannot heal: refused
  credentials, a missing permission, too many topics): every stream stops and
  :class:`~pipeline.errors.ChannelFailedError` says which channel and why, on one line, so
  the service ends with a non-zero exit instead of carrying on without that channel's data;
- **gave up creating channels** (``channel.recreate_exhausted``: channels kept dying before
  going live, e.g. an eviction fight over the 20-channel limit) is not a configuration error:
  it is restarted like a crash, after the backoff.

A restarted stream leaves its old channel to expire on the Genesys side (up to 24 h, counted
against the 20-channel limit of the OAuth client until then).

Stopping is bounded: once ``stop`` is set (or a stream failed for good) every stream is asked
to stop, and those still running after ``grace_s`` (a sink blocked on a Kafka that never
answers) are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.session import SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.http_policy import Backoff
from pipeline.errors import ChannelFailedError
from pipeline.genesys.rest import GenesysRest
from pipeline.genesys.stream import ChannelStream, Sink

__all__ = ["RESTART_BACKOFF", "OnRestart", "run_channels", "run_streams"]

log = logging.getLogger(__name__)

OnRestart = Callable[[ChannelStream, str, float], None]
"""Told ``(stream, reason, retry_in_s)`` each time a stream is restarted."""

RESTART_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)
"""Delays between restarts of one stream; its count starts again after a healthy run."""

_RESTARTABLE = frozenset({AuditKind.CHANNEL_RECREATE_EXHAUSTED})


async def run_streams(
    streams: Sequence[ChannelStream],
    stop: asyncio.Event | None = None,
    *,
    on_restart: OnRestart | None = None,
    grace_s: float = 10.0,
    backoff: Backoff = RESTART_BACKOFF,
) -> None:
    """Run the streams until ``stop`` is set (or every one stopped), then stop them all.

    Args:
        streams: the shard's channel streams.
        stop: set to stop (default: run until the streams end by themselves).
        on_restart: told about every restart (the service counts and audits it).
        grace_s: how long stopped streams may take to finish before they are cancelled.
        backoff: delays between restarts of one stream.

    Raises:
        ChannelFailedError: a stream's session failed for good; the others were stopped.
    """
    stop = stop or asyncio.Event()
    halt = asyncio.Event()  # ours: set when everything must stop (the caller's stop, or a failure)
    failed: list[ChannelFailedError] = []

    def fail(error: ChannelFailedError) -> None:
        failed.append(error)
        halt.set()

    tasks = [
        asyncio.create_task(_supervise(i, s, len(streams), halt, fail, on_restart, backoff))
        for i, s in enumerate(streams)
    ]
    everything: asyncio.Future[list[None]] = asyncio.gather(*tasks)
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(halt.wait())}
    watched: set[asyncio.Future[Any]] = {*waiters, everything}
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        halt.set()  # no supervisor restarts a stream from here on
        await _stop_all(streams, tasks, grace_s)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await everything
    if failed:
        raise failed[0]


async def _stop_all(
    streams: Sequence[ChannelStream],
    tasks: Sequence[asyncio.Task[None]],
    grace_s: float,
) -> None:
    for stream in streams:
        stream.stop()
    _, late = await asyncio.wait(tasks, timeout=grace_s) if tasks else (set(), set())
    if late:
        log.warning("%d channel streams did not stop within %.0f s: cancelled", len(late), grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _supervise(
    index: int,
    stream: ChannelStream,
    count: int,
    stop: asyncio.Event,
    fail: Callable[[ChannelFailedError], None],
    on_restart: OnRestart | None,
    backoff: Backoff,
) -> None:
    """Run one stream, restarting it as the module docstring says."""
    attempt = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            await stream.run()
        except Exception as exc:  # a crashed stream is restarted, not lost
            reason = f"crashed: {exc!r}"[:300]
            log.error("channel stream %d of %d %s", index + 1, count, reason, exc_info=exc)
        else:
            session = stream.session
            if session.state is not SessionState.FAILED:
                return  # stopped on request
            if session.failure_kind not in _RESTARTABLE:
                fail(ChannelFailedError(index, count, session.failure or "failed"))
                return
            reason = f"failed: {session.failure}"
        if stop.is_set():
            return
        if time.monotonic() - started >= backoff.cap_s:
            attempt = 0  # it ran well for a while: this is not a crash loop
        delay = backoff.delay(attempt, None, random.random)
        attempt += 1
        log.warning("restarting channel stream %d of %d in %.1f s", index + 1, count, delay)
        if on_restart is not None:
            on_restart(stream, reason, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        stream.reset()


async def run_channels(
    rest: GenesysRest,
    channels: Sequence[Sequence[str]],
    sink: Sink,
    *,
    settings: SessionSettings | None = None,
    stop: asyncio.Event | None = None,
) -> list[ChannelStream]:
    """Run one stream per channel until ``stop`` is set (or every session ends).

    Returns:
        The streams (for their final session state).

    Raises:
        ChannelFailedError: a channel failed for good.
    """
    streams = [ChannelStream(rest, topics, sink, settings=settings) for topics in channels]
    await run_streams(streams, stop)
    return streams
