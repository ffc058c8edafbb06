"""``pipeline watch``: run one shard's notification channels and print what they yield.

The Genesys half of the producer without Kafka: every topic event, backfill value, gap, dead
letter and audit fact as one JSON line on stdout. Useful to see what a subscription file
produces, and to check credentials and the plan against an org before deploying.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

import orjson
from pydantic import SecretStr

from pipeline.core.genesys.events import StreamEvent, event_to_json
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.genesys.client import genesys_client
from pipeline.genesys.supervisor import run_channels
from pipeline.services.planning import resolve_plan

__all__ = ["watch"]


async def watch(
    spec: SubscriptionSpec,
    api_base: str,
    client_id: str,
    client_secret: SecretStr,
    *,
    shard: int = 0,
    shards: int = 1,
    stop: asyncio.Event,
    out: TextIO = sys.stdout,
    settings: SessionSettings | None = None,
    on_event: Callable[[], object] | None = None,
) -> int:
    """Stream shard ``shard`` of ``shards`` until ``stop`` is set.

    Args:
        on_event: called after each event printed (a caller's live count).

    Returns:
        How many events were printed.
    """
    printed = 0

    async def sink(event: StreamEvent) -> None:
        nonlocal printed
        out.write(orjson.dumps(event_to_json(event)).decode() + "\n")
        out.flush()
        printed += 1
        if on_event is not None:
            on_event()

    async with genesys_client(api_base, client_id, client_secret) as rest:
        plan, _ = await resolve_plan(rest, spec, shards, client_per_shard=False)
        channels = [[t.topic for t in c.topics] for c in plan.shards[shard].channels]
        if channels:
            await run_channels(rest, channels, sink, settings=settings, stop=stop)
    return printed
