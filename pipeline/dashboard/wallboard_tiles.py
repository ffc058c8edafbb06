"""What the wallboard shows, pure: push bodies checked, held values turned into queue tiles.

One tile per queue (values of ``entity_type`` ``queue``), served by ``GET /api/state``:

- ``waiting``: ``oWaiting`` summed over media types;
- ``longest_wait_ms``: the largest ``oLongestWaiting`` over media types;
- ``agents_on_queue``: ``oOnQueueUsers`` summed over its qualifiers (routing statuses)
  except ``OFF_QUEUE``: agents on queue whatever they are doing (idle, interacting, …);
- ``service_level_percent``, ``asa_ms``, ``aht_ms``, ``abandon_rate_percent``: the KPIs
  ``serviceLevelPercent``, ``averageSpeedOfAnswerMs``, ``averageHandleTimeMs``,
  ``abandonRatePercent``; with several media types, the one with the newest ``event_time``;
- ``freshness``: ``stale`` when any value of the tile is flagged stale, or when its newest
  ``event_time`` is older than :data:`STALE_AFTER_S` by the wallboard's clock; else ``fresh``;
- ``age_s``: seconds since the tile's newest ``event_time`` (wallboard clock).

Missing metrics are ``null`` (never taken as zero). The server adds each tile's ``history``
(:class:`~pipeline.dashboard.wallboard.Wallboard`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["STALE_AFTER_S", "BadBody", "parse_push", "queue_tiles"]

STALE_AFTER_S = 60.0
"""A tile whose newest value is older than this (seconds) is stale."""

_REQUIRED: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "entity_type": (str,),
    "entity_id": (str,),
    "metric": (str,),
    "event_time": (int,),
}
_OPTIONAL_STR = ("qualifier", "media_type", "unit")


class BadBody(ValueError):
    """A push body the wallboard refuses (400), with the reason."""


def _check_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadBody("each value must be an object")
    for name, types in _REQUIRED.items():
        item = value.get(name)
        if not isinstance(item, types) or isinstance(item, bool):
            raise BadBody(f"value field {name!r} is missing or of the wrong type")
    for name in _OPTIONAL_STR:
        if value.get(name) is not None and not isinstance(value[name], str):
            raise BadBody(f"value field {name!r} must be a string or null")
    number = value.get("value")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number)
    ):
        raise BadBody("value field 'value' must be a finite number or null")
    if not isinstance(value.get("stale", False), bool):
        raise BadBody("value field 'stale' must be a boolean")
    return value


def parse_push(body: bytes) -> tuple[str | None, list[dict[str, Any]]]:
    """Check a push body (as ``Batch.body`` makes it) and return its parts.

    Returns:
        The body's ``idempotency_key`` (None when absent) and its values.

    Raises:
        BadBody: not JSON, no ``values`` list, or a value with a missing or ill-typed field.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBody("body is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("values"), list):
        raise BadBody("body must be an object with a 'values' list")
    key = document.get("idempotency_key")
    return (key if isinstance(key, str) else None), [_check_value(v) for v in document["values"]]


def _newest(values: list[dict[str, Any]]) -> float | None:
    if not values:
        return None
    best = max(values, key=lambda v: v["event_time"])
    number = best.get("value")
    return None if number is None else float(number)


def _short(queue_id: str) -> str:
    return queue_id.split("-", 1)[0][:8] or queue_id


def queue_tiles(
    values: Mapping[str, Mapping[str, Any]],
    now: float,
    queue_names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The tiles (without history) computed from the values held.

    Args:
        values: the held values, by key (as pushed).
        now: the wallboard's clock, epoch seconds.
        queue_names: display names by queue id (else the id's short form).

    Returns:
        One tile per queue, ordered by display name (see the module docstring for fields).
    """
    by_queue: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for value in values.values():
        if value["entity_type"] == "queue":
            metrics = by_queue.setdefault(value["entity_id"], {})
            metrics.setdefault(value["metric"], []).append(dict(value))
    names = queue_names or {}
    tiles = []
    for queue_id, metrics in by_queue.items():
        all_values = [v for vs in metrics.values() for v in vs]
        newest_ms = max(v["event_time"] for v in all_values)
        age_s = max(0.0, now - newest_ms / 1000)
        any_stale = any(v.get("stale") for v in all_values)
        waiting = metrics.get("oWaiting")
        longest = [v["value"] for v in metrics.get("oLongestWaiting", []) if v["value"] is not None]
        on_queue = [
            v["value"]
            for v in metrics.get("oOnQueueUsers", [])
            if v.get("qualifier") != "OFF_QUEUE" and v["value"] is not None
        ]
        tiles.append(
            {
                "queue_id": queue_id,
                "name": names.get(queue_id, _short(queue_id)),
                "waiting": (sum(v["value"] or 0 for v in waiting) if waiting is not None else None),
                "longest_wait_ms": max(longest) if longest else None,
                "agents_on_queue": sum(on_queue) if on_queue else None,
                "service_level_percent": _newest(metrics.get("serviceLevelPercent", [])),
                "asa_ms": _newest(metrics.get("averageSpeedOfAnswerMs", [])),
                "aht_ms": _newest(metrics.get("averageHandleTimeMs", [])),
                "abandon_rate_percent": _newest(metrics.get("abandonRatePercent", [])),
                "freshness": "stale" if any_stale or age_s > STALE_AFTER_S else "fresh",
                "any_value_stale": any_stale,
                "newest_event_time": newest_ms,
                "age_s": round(age_s, 3),
                "values": len(all_values),
            }
        )
    tiles.sort(key=lambda t: (t["name"], t["queue_id"]))
    return tiles
