"""How a metric record is identified: its event id, and the series key the workers use.

Event id: hex of BLAKE2b with a 16-byte digest over ``H + T``, two JSON arrays back to back
(self-delimiting, so unambiguous), with ``H = orjson.dumps([source_topic, entity_id,
media_type, interval_start, interval_end, id_time])`` and ``T = orjson.dumps([metric,
qualifier, count, sum, min, max, ratio, numerator, denominator, target, value])``; when any of
the stats schema version 2 added is set, ``T`` gets one more element, ``[count_negative,
count_positive, current, p95, p99, calculated_metric_value]`` (so data without them keeps its
version-1 ids). ``id_time`` is ``event_time`` for instant data (observations, states,
membership) and null for aggregates. So the same frame mapped twice gives
the same ids; a backfilled aggregate with the same interval and stats gives the live frame's
ids (``backfill``, ``ingest_time``, ``correlation_id`` and an aggregate's ``event_time`` are
left out on purpose); different values give different ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from pipeline.core.contract.records import MetricRecord

__all__ = ["current_key", "id_hasher"]

_dumps = orjson.dumps
_blake2b = hashlib.blake2b


def current_key(record: MetricRecord) -> str:
    """The series of ``record`` for the workers (latest value, staleness): one per state too.

    Not the changelog table's row key (that is ``core.contract.table.table_key``, where a
    state is a value): the dashboard and the freshness worker follow every series seen.

    Returns:
        ``entity_id|metric|qualifier|media_type``, with empty strings for nulls.
    """
    qualifier, media = record.qualifier, record.media_type
    return f"{record.entity_id}|{record.metric}|{qualifier or ''}|{media or ''}"


def id_hasher(
    topic: str,
    entity_id: str,
    media: str | None,
    start: int | None,
    end: int | None,
    id_time: int | None,
) -> Any:
    """A BLAKE2b hasher over ``H``, the head of the event-id recipe (module docstring).

    The mapping copies it once per record and feeds it that record's ``T``.

    Returns:
        A ``hashlib.blake2b`` object (16-byte digest) that has seen ``H``.
    """
    return _blake2b(_dumps((topic, entity_id, media, start, end, id_time)), digest_size=16)
