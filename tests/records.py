"""Record factories shared by tests: a plausible MetricRecord with any field changed."""

from __future__ import annotations

import dataclasses

from pipeline.core.contract.records import MetricRecord

QUEUE_ID = "8f7e2c1a-0000-4000-8000-000000000001"
QUEUE_TOPIC = f"v2.analytics.queues.{QUEUE_ID}.observations"


def metric_record(**changes: object) -> MetricRecord:
    """An instant ``oWaiting`` observation of one queue (voice, count 3), with ``changes``."""
    base = MetricRecord(
        event_id="e1",
        source_topic=QUEUE_TOPIC,
        entity_type="queue",
        entity_id=QUEUE_ID,
        metric="oWaiting",
        qualifier=None,
        media_type="voice",
        interval_start=None,
        interval_end=None,
        count=3,
        sum=None,
        min=None,
        max=None,
        ratio=None,
        numerator=None,
        denominator=None,
        target=None,
        count_negative=None,
        count_positive=None,
        current=None,
        p95=None,
        p99=None,
        calculated_metric_value=None,
        value=3.0,
        unit="count",
        derived=False,
        event_time=1_700_000_000_000,
        ingest_time=1_700_000_000_100,
        backfill=False,
        producer_instance="producer-0",
        correlation_id="c-1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
