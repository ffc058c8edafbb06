"""After a gap (or at start), the current state from the REST API, shaped like topic frames.

The notification service keeps nothing while a client is disconnected (docs/genesys-api.md §5), and
it sends only *changes*, so after any gap the current values come from the analytics query API:

- queue observations (``POST /api/v2/analytics/queues/observations/query``, §7.1) stand in for
  the instant flavour of ``v2.analytics.queues.{id}.observations``;
- conversation aggregates for the current 30-minute interval grouped by queue and media type
  (§7.2) stand in for that topic's aggregate flavour;
- user aggregates for the current interval (§7.3) stand in for
  ``v2.analytics.users.{id}.aggregates``.

Each answer is turned into ``eventBody``-shaped dicts (``{"group": ..., "data": [{"interval",
"metrics"}]}``), so the producer maps backfill and live frames with the same code. Pure: the
shell sends the request bodies and hands back the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.core.genesys.events import BackfillEvent
from pipeline.core.genesys.metrics import INTERVAL_TOPIC_METRICS, QUEUE_OBSERVATION_METRICS

__all__ = [
    "AGGREGATE_METRICS",
    "SnapshotPlan",
    "aggregate_events",
    "current_interval",
    "observation_events",
    "plan_snapshot",
    "user_aggregate_events",
]

# The metrics the aggregate flavour of the queue topic carries (§6.2).
AGGREGATE_METRICS = INTERVAL_TOPIC_METRICS
USER_METRICS = ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")
# Entities per query body. Genesys documents no number; 100 keeps bodies small (UNVERIFIED).
BATCH = 100

_QUEUE_OBS = ("v2.analytics.queues.", ".observations")
_USER_AGG = ("v2.analytics.users.", ".aggregates")


@dataclass(frozen=True, slots=True)
class SnapshotPlan:
    """The REST bodies to send for one snapshot, by endpoint."""

    observation_queries: tuple[dict[str, Any], ...]
    aggregate_queries: tuple[dict[str, Any], ...]
    user_queries: tuple[dict[str, Any], ...]
    covered: tuple[str, ...] = ()
    """The topics the snapshot stands in for (queue observations, user aggregates)."""


def _entity(topic: str, affix: tuple[str, str]) -> str | None:
    prefix, suffix = affix
    if topic.startswith(prefix) and topic.endswith(suffix):
        entity = topic[len(prefix) : -len(suffix)]
        return entity if entity and "." not in entity else None
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def current_interval(now: float) -> str:
    """The 30-minute interval holding ``now``, as ``start/end`` (ISO-8601, UTC)."""
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(minute=moment.minute - moment.minute % 30, second=0, microsecond=0)
    return f"{_iso(start)}/{_iso(start + timedelta(minutes=30))}"


def _or_filter(dimension: str, ids: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "or",
        "predicates": [{"type": "dimension", "dimension": dimension, "value": i} for i in ids],
    }


def _batches(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def plan_snapshot(topics: Iterable[str], now: float) -> SnapshotPlan:
    """The queries that rebuild the state of ``topics`` (other topics have no snapshot)."""
    topic_list = list(topics)
    queues = sorted({q for t in topic_list if (q := _entity(t, _QUEUE_OBS))})
    users = sorted({u for t in topic_list if (u := _entity(t, _USER_AGG))})
    interval = current_interval(now)
    observations = tuple(
        {"filter": _or_filter("queueId", batch), "metrics": sorted(QUEUE_OBSERVATION_METRICS)}
        for batch in _batches(queues)
    )
    aggregates = tuple(
        {
            "interval": interval,
            "granularity": "PT30M",
            "groupBy": ["queueId", "mediaType"],
            "filter": _or_filter("queueId", batch),
            "metrics": list(AGGREGATE_METRICS),
        }
        for batch in _batches(queues)
    )
    user_queries = tuple(
        {
            "interval": interval,
            "granularity": "PT30M",
            "groupBy": ["userId"],
            "filter": _or_filter("userId", batch),
            "metrics": list(USER_METRICS),
        }
        for batch in _batches(users)
    )
    covered = tuple(t for t in topic_list if _entity(t, _QUEUE_OBS) or _entity(t, _USER_AGG))
    return SnapshotPlan(observations, aggregates, user_queries, covered)


def _results(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    results = answer.get("results")
    return [r for r in results if isinstance(r, Mapping)] if isinstance(results, list) else []


def observation_events(answer: Mapping[str, Any], now: float, reason: str) -> list[BackfillEvent]:
    """Queue observation answer → instant-flavour bodies of the queue topic."""
    instant = _iso(datetime.fromtimestamp(now, UTC))
    events = []
    for result in _results(answer):
        group = result.get("group")
        if not isinstance(group, Mapping) or "queueId" not in group:
            continue
        metrics = [
            {k: v for k, v in datum.items() if k in {"metric", "qualifier", "stats"}}
            for datum in result.get("data", [])
            if isinstance(datum, Mapping)
        ]
        body = {
            "group": dict(group),
            "data": [{"interval": f"{instant}/{instant}", "metrics": metrics}],
        }
        topic = f"{_QUEUE_OBS[0]}{group['queueId']}{_QUEUE_OBS[1]}"
        events.append(BackfillEvent(topic, body, now, reason))
    return events


def _interval_events(
    answer: Mapping[str, Any], affix: tuple[str, str], key: str, now: float, reason: str
) -> list[BackfillEvent]:
    events = []
    for result in _results(answer):
        group = result.get("group")
        if not isinstance(group, Mapping) or key not in group:
            continue
        data = [d for d in result.get("data", []) if isinstance(d, Mapping)]
        if not data:
            continue
        latest = max(data, key=lambda d: str(d.get("interval", "")))
        body = {
            "group": dict(group),
            "data": [
                {"interval": latest.get("interval"), "metrics": list(latest.get("metrics", []))}
            ],
        }
        events.append(BackfillEvent(f"{affix[0]}{group[key]}{affix[1]}", body, now, reason))
    return events


def aggregate_events(answer: Mapping[str, Any], now: float, reason: str) -> list[BackfillEvent]:
    """Conversation aggregates answer → aggregate-flavour bodies of the queue topic."""
    return _interval_events(answer, _QUEUE_OBS, "queueId", now, reason)


def user_aggregate_events(
    answer: Mapping[str, Any], now: float, reason: str
) -> list[BackfillEvent]:
    """User aggregates answer → bodies of ``v2.analytics.users.{id}.aggregates``."""
    return _interval_events(answer, _USER_AGG, "userId", now, reason)
