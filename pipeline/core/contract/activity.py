"""``v2.analytics.queues.{id}.activity`` bodies → flat metric records (pure).

The body is ``V2QueueObservationObservationCountNotification`` (docs/genesys-api.md §6.3)::

    {"results": [{"mediaType": "voice",
                  "data": [{"metric": "oWaiting", "count": 3},
                           {"metric": "oLongestWaiting", "count": 1,
                            "calculatedMetricValue": 1733220000000}]}]}

It maps one to one to flat records (§6.8): one per ``results[].data[]`` entry, entity = the
queue of the topic name (the body has no queue id), ``media_type`` = ``results[].mediaType``,
``metric`` ∈ oAlerting, oInteracting, oWaiting, oFlow, oLongestWaiting, oLongestInteracting,
``count`` and ``calculated_metric_value`` as sent, no qualifier, no interval, no other stats.
``value``/``unit``: the count for the counts, the age in ms for ``oLongest*``
(:func:`~pipeline.core.contract.body.age`: an epoch-ms ``calculatedMetricValue`` is a start
time, §6.8 BELIEF).

The body carries no time, so ``event_time`` is the ingest time, and the event id uses it as
the instant (``id_time``): two frames with the same counts a second apart are two facts, not a
duplicate. A metric missing from a frame is "unchanged", never zero (§6.8: whether Genesys
omits unchanged or zero entries is not known), so nothing is invented for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.core.contract.body import (
    LONGEST,
    BodyError,
    age,
    kinds,
    metric_kind,
    whole,
)
from pipeline.core.contract.identity import id_hasher
from pipeline.core.contract.records import METRIC_SCHEMA_VERSION, MetricRecord, new_metric_record

__all__ = ["map_activity"]

_dumps = orjson.dumps


def map_activity(
    body: dict[str, Any], topic: str, entity_type: str, entity_id: str, ingest_ms: int,
    backfill: bool, instance: str, correlation_id: str | None,
) -> list[MetricRecord]:  # fmt: skip
    """Map one queue activity body (module docstring).

    Args:
        body: the ``eventBody``.
        topic: the topic it came on (the record's ``source_topic``).
        entity_type: ``queue``.
        entity_id: the queue id from the topic name.
        ingest_ms: when the frame was received (epoch ms): the records' ``event_time`` too.
        backfill: whether the event was a backfill (the activity topic has none today).
        instance: the producer instance.
        correlation_id: the frame's ``metadata.CorrelationId``.

    Returns:
        One record per data entry, in body order.

    Raises:
        BodyError: a missing or ill-typed field, named in the reason.
    """
    results = body.get("results")
    if type(results) is not list:
        raise BodyError("eventBody.results is missing or not a list")
    out: list[MetricRecord] = []
    for i, group in enumerate(results):
        where = f"eventBody.results[{i}]"
        if type(group) is not dict:
            raise BodyError(f"{where} is not an object")
        media = group.get("mediaType")
        if media is not None and type(media) is not str:
            raise BodyError(f"{where}.mediaType is not a string")
        data = group.get("data")
        if type(data) is not list:
            raise BodyError(f"{where}.data is missing or not a list")
        head = id_hasher(topic, entity_id, media, None, None, ingest_ms)
        for j, entry in enumerate(data):
            at = f"{where}.data[{j}]"
            if type(entry) is not dict:
                raise BodyError(f"{at} is not an object")
            name = entry.get("metric")
            if type(name) is not str:
                raise BodyError(f"{at}.metric is missing or not a string")
            mkind = kinds.get(name)
            if mkind is None:
                mkind = metric_kind(name, at)
            count = whole(entry.get("count"), f"{at}.count")
            calculated = whole(entry.get("calculatedMetricValue"), f"{at}.calculatedMetricValue")
            if mkind == LONGEST:
                value, unit = age(calculated, ingest_ms), "ms"
            else:
                value, unit = (None if count is None else float(count)), "count"
            # The event-id recipe of core/contract/identity.py, with every absent stat null.
            tail: tuple[Any, ...] = (name, None, count, None, None, None, None, None, None, None,
                                     value)  # fmt: skip
            if calculated is not None:
                tail += ([None, None, None, None, None, calculated],)
            h = head.copy()
            h.update(_dumps(tail))
            out.append(new_metric_record(
                h.hexdigest(), topic, entity_type, entity_id, name, None, media, None, None,
                count, None, None, None, None, None, None, None, None, None, None, None, None,
                calculated, value, unit, False, ingest_ms, ingest_ms, backfill, instance,
                correlation_id, METRIC_SCHEMA_VERSION,
            ))  # fmt: skip
    return out
