"""Shared values and helpers for the dashboard worker's core tests (latest values, offsets)."""

from __future__ import annotations

from pipeline.core.contract.records import MetricRecord
from pipeline.core.workers.latest import Batch, LatestValues
from tests.records import metric_record

__all__ = ["T0_MS", "TOPIC", "key", "record", "take"]

T0_MS = 1_700_000_040_000
TOPIC = "genesys.current"


def record(
    entity_id: str = "q1",
    event_time: int = T0_MS,
    value: float = 1.0,
    *,
    ingest_time: int | None = None,
    metric: str = "oWaiting",
) -> MetricRecord:
    """A queue observation whose event id follows its content."""
    ingest = event_time if ingest_time is None else ingest_time
    return metric_record(
        event_id=f"{entity_id}-{metric}-{event_time}-{ingest}-{value}",
        source_topic=f"v2.analytics.queues.{entity_id}.observations",
        entity_id=entity_id,
        metric=metric,
        count=int(value),
        value=value,
        event_time=event_time,
        ingest_time=ingest,
        correlation_id=None,
    )


def key(entity_id: str = "q1") -> str:
    """The current key of :func:`record`."""
    return f"{entity_id}|oWaiting||voice"


def take(values: LatestValues, max_items: int = 500) -> Batch:
    """A batch that must exist."""
    batch = values.take_batch(max_items)
    assert batch is not None
    return batch
