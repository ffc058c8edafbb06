"""Metric availability: the analytics queries that check a spec's metrics, and the report (pure).

Before streaming, the shell POSTs the queries :func:`availability_query_bodies` builds and
hands the JSON answers to :func:`availability_report`, which says which metric returned
data for which entity. Bodies follow ``docs/genesys-api.md`` §7 exactly:

- queue observation metrics (``o*`` of §7.1) → ``POST /api/v2/analytics/queues/observations/query``
  with ``filter`` (an ``or`` of ``queueId`` predicates, and'ed with the media types) and
  ``metrics``;
- conversation aggregate metrics of queues (§7.2) → ``POST …/conversations/aggregates/query``
  over the last ``analytics.interval`` at ``analytics.granularity``, ``groupBy: [queueId]``;
  of wrap-up codes the same with ``groupBy: [wrapUpCode]``;
- user aggregate metrics (§7.3) → ``POST /api/v2/analytics/users/aggregates/query``,
  ``groupBy: [userId]``.

A query carries at most :data:`MAX_ENTITIES_PER_QUERY` entities; more are split into
batches. That cap is ours for queues and wrap-up codes: Genesys documents no limit on their
predicates that we could read (UNVERIFIED), and 100 keeps a body near 6 KB. For users it is
Genesys' own: a user aggregate query holds at most :data:`USER_PREDICATE_LIMIT` userId
predicates (§7.3 VERIFIED), whatever ``max_entities`` says.

Intervals and granularities stay within §7.4: the look-back is at most 31 days (the spec
checks it, BELIEF), and a user aggregate query's granularity is a multiple of
:data:`USER_GRANULARITY` (BELIEF; the emulator enforces it): the spec's granularity is
rounded up to one, or left out (one bucket) when that would be longer than the look-back.

A subscription with an empty ``metrics`` list ("everything") is not checked. "Data" means the
metric appears in the answer for the entity: observations answer even when the count is 0,
aggregates only when something happened in the look-back (buckets without data are left out,
§7.2), so an aggregate without data may just mean a quiet hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    QUEUE_OBSERVATION_METRICS,
    USER_AGGREGATE_METRICS,
)
from pipeline.core.subscription.resolution import ResolvedEntities, resolve_subscriptions
from pipeline.core.subscription.rules import parse_duration
from pipeline.core.subscription.spec import QueueSubscription, SubscriptionSpec, UserSubscription

__all__ = [
    "CONVERSATION_AGGREGATES_PATH",
    "MAX_ENTITIES_PER_QUERY",
    "QUEUE_OBSERVATIONS_PATH",
    "USER_AGGREGATES_PATH",
    "USER_GRANULARITY",
    "USER_PREDICATE_LIMIT",
    "AvailabilityQuery",
    "AvailabilityReport",
    "MetricAvailability",
    "QueryKind",
    "availability_query_bodies",
    "availability_report",
    "render_availability_text",
    "user_window",
]

QUEUE_OBSERVATIONS_PATH: Final = "/api/v2/analytics/queues/observations/query"
CONVERSATION_AGGREGATES_PATH: Final = "/api/v2/analytics/conversations/aggregates/query"
USER_AGGREGATES_PATH: Final = "/api/v2/analytics/users/aggregates/query"
MAX_ENTITIES_PER_QUERY: Final = 100
"""Entities per query body (UNVERIFIED limit, see the module docstring)."""
USER_PREDICATE_LIMIT: Final = 100
"""userId predicates a user aggregate query may hold (§7.3 VERIFIED, DOC-USERAGG)."""
USER_GRANULARITY: Final = timedelta(minutes=30)
"""User aggregate granularities are multiples of this (§7.4 BELIEF)."""

QueryKind = Literal["queue_observations", "conversation_aggregates", "user_aggregates"]
"""Which analytics endpoint a query goes to."""


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    """One analytics request to make.

    Attributes:
        kind: which endpoint.
        path: the endpoint path, to POST ``body`` to.
        body: the JSON body (§7).
        subscription: the subscription it checks.
        dimension: the ``group`` key that names the entity in the answer (``queueId``,
            ``userId``, ``wrapUpCode``).
        entity_ids: the entities asked about.
        metrics: the real metric names asked for.
    """

    kind: QueryKind
    path: str
    body: dict[str, Any]
    subscription: str
    dimension: str
    entity_ids: tuple[str, ...]
    metrics: tuple[str, ...]


def _format_instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _filter(dimension: str, ids: Sequence[str], media: Sequence[str]) -> dict[str, Any]:
    entities = [{"dimension": dimension, "value": entity_id} for entity_id in ids]
    if not media:
        return {"type": "or", "predicates": entities}
    media_predicates = [{"dimension": "mediaType", "value": m} for m in media]
    if len(media) == 1:  # exactly the §7.1 example shape
        return {
            "type": "and",
            "clauses": [{"type": "or", "predicates": entities}],
            "predicates": media_predicates,
        }
    return {
        "type": "and",
        "clauses": [
            {"type": "or", "predicates": entities},
            {"type": "or", "predicates": media_predicates},
        ],
    }


def _period(delta: timedelta) -> str:
    # A whole-minute timedelta as an ISO-8601 duration (P1D, PT1H30M ...).
    days, rest = divmod(int(delta.total_seconds()) // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")


def user_window(window: dict[str, Any], interval: timedelta) -> dict[str, Any]:
    """``window`` made fit for a user aggregate query (granularity a multiple of PT30M).

    Args:
        window: ``interval``, ``granularity`` and ``timeZone`` of the conversation queries.
        interval: the look-back the window's interval spans.

    Returns:
        The same window, with the granularity rounded up to a multiple of
        :data:`USER_GRANULARITY`, or without one when that would exceed ``interval``.
    """
    step = parse_duration(window["granularity"])
    if step % USER_GRANULARITY == timedelta(0):
        return window
    rounded = (step // USER_GRANULARITY + 1) * USER_GRANULARITY
    fitted = {k: v for k, v in window.items() if k != "granularity"}
    if rounded <= interval:
        fitted["granularity"] = _period(rounded)
    return fitted


def availability_query_bodies(
    spec: SubscriptionSpec,
    directory: ResolvedEntities,
    *,
    now: datetime,
    max_entities: int = MAX_ENTITIES_PER_QUERY,
) -> list[AvailabilityQuery]:
    """The analytics queries that check every listed metric of every resolved entity.

    Args:
        spec: the validated spec.
        directory: resolved names (unresolved references are simply not asked about).
        now: the end of the look-back window (timezone-aware; the core reads no clock).
        max_entities: entities per query; more are split into batches.

    Returns:
        Queries in spec order, then batch order.

    Raises:
        ValueError: ``now`` is naive, or ``max_entities`` is below 1.
    """
    if now.tzinfo is None or max_entities < 1:
        raise ValueError("now must be timezone-aware and max_entities at least 1")
    end = now.astimezone(UTC).replace(microsecond=0)
    since = end - spec.analytics.interval_delta
    window = {
        "interval": f"{_format_instant(since)}/{_format_instant(end)}",
        "granularity": spec.analytics.granularity,
        "timeZone": "UTC",
    }
    out: list[AvailabilityQuery] = []
    for entry in resolve_subscriptions(spec, directory):
        sub, metrics = entry.subscription, entry.subscription.real_metrics
        media = spec.media_types_for(sub)
        plans: list[tuple[QueryKind, str, str, tuple[str, ...], dict[str, Any]]] = []
        if isinstance(sub, QueueSubscription):
            observed = tuple(m for m in metrics if m in QUEUE_OBSERVATION_METRICS)
            plans.append(("queue_observations", QUEUE_OBSERVATIONS_PATH, "queueId", observed, {}))
            aggregated = tuple(m for m in metrics if m in CONVERSATION_AGGREGATE_METRICS)
            plans.append(
                ("conversation_aggregates", CONVERSATION_AGGREGATES_PATH, "queueId", aggregated,
                 window)
            )  # fmt: skip
        elif isinstance(sub, UserSubscription):
            users = tuple(m for m in metrics if m in USER_AGGREGATE_METRICS)
            user_body = user_window(window, spec.analytics.interval_delta)
            plans.append(("user_aggregates", USER_AGGREGATES_PATH, "userId", users, user_body))
        else:
            codes = tuple(m for m in metrics if m in CONVERSATION_AGGREGATE_METRICS)
            plans.append(
                ("conversation_aggregates", CONVERSATION_AGGREGATES_PATH, "wrapUpCode", codes,
                 window)
            )  # fmt: skip
        ids = entry.entity_ids
        for kind, path, dimension, wanted, extra in plans:
            if not wanted:
                continue
            size = min(max_entities, USER_PREDICATE_LIMIT) if kind == "user_aggregates" else (
                max_entities)  # fmt: skip
            for start in range(0, len(ids), size):
                batch = ids[start : start + size]
                body: dict[str, Any] = dict(extra)
                if extra:
                    body["groupBy"] = [dimension]
                body["filter"] = _filter(dimension, batch, media)
                body["metrics"] = list(wanted)
                out.append(AvailabilityQuery(kind, path, body, sub.name, dimension, batch, wanted))
    return out


@dataclass(frozen=True, slots=True)
class MetricAvailability:
    """Whether one metric of one subscription returned data, per entity.

    Attributes:
        subscription: the subscription name.
        metric: the real metric name.
        with_data: entities the metric returned data for, query order.
        without_data: entities it did not.
    """

    subscription: str
    metric: str
    with_data: tuple[str, ...]
    without_data: tuple[str, ...]

    @property
    def available(self) -> bool:
        """True when at least one entity returned data."""
        return bool(self.with_data)


@dataclass(frozen=True, slots=True)
class AvailabilityReport:
    """Every checked metric, subscription by subscription.

    Attributes:
        entries: one per (subscription, metric), query order.
    """

    entries: tuple[MetricAvailability, ...]

    @property
    def missing(self) -> tuple[MetricAvailability, ...]:
        """Metrics that returned no data for any entity."""
        return tuple(e for e in self.entries if not e.available)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the audit event and ``--json``)."""
        return {
            "metrics": [
                {
                    "subscription": e.subscription,
                    "metric": e.metric,
                    "with_data": list(e.with_data),
                    "without_data": list(e.without_data),
                }
                for e in self.entries
            ]
        }


def _bucket_metrics(buckets: list[Any]) -> list[Any]:
    # Aggregates answer data = [{interval, metrics: [{metric, stats}]}]; observations answer
    # data = [{metric, stats}] directly (§7.1, §7.2).
    out: list[Any] = []
    for bucket in buckets:
        metrics = bucket.get("metrics") if isinstance(bucket, Mapping) else None
        out += metrics if isinstance(metrics, list) else []
    return out


def _found(query: AvailabilityQuery, answer: object) -> dict[str, set[str]]:
    # metric → entities it appears for. Tolerant: anything not shaped as §7 counts as no data.
    found: dict[str, set[str]] = {}
    results = answer.get("results") if isinstance(answer, Mapping) else None
    for result in results if isinstance(results, list) else []:
        group = result.get("group") if isinstance(result, Mapping) else None
        entity = group.get(query.dimension) if isinstance(group, Mapping) else None
        data = result.get("data") if isinstance(result, Mapping) else None
        if not isinstance(entity, str) or not isinstance(data, list):
            continue
        items = data if query.kind == "queue_observations" else _bucket_metrics(data)
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("metric"), str):
                found.setdefault(item["metric"], set()).add(entity)
    return found


def availability_report(
    queries: Sequence[AvailabilityQuery], answers: Sequence[object]
) -> AvailabilityReport:
    """Which metric returned data for which entity.

    Args:
        queries: what :func:`availability_query_bodies` returned.
        answers: the parsed JSON answer of each query, same order (``{}`` for "no data").

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(queries) != len(answers):
        raise ValueError(f"{len(queries)} queries but {len(answers)} answers")
    merged: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
    for query, answer in zip(queries, answers, strict=True):
        found = _found(query, answer)
        for metric in query.metrics:
            asked, hits = merged.setdefault((query.subscription, metric), ([], set()))
            asked += [e for e in query.entity_ids if e not in asked]
            hits |= found.get(metric, set()) & set(query.entity_ids)
    return AvailabilityReport(
        tuple(
            MetricAvailability(
                subscription,
                metric,
                tuple(e for e in asked if e in hits),
                tuple(e for e in asked if e not in hits),
            )
            for (subscription, metric), (asked, hits) in merged.items()
        )
    )


def render_availability_text(report: AvailabilityReport) -> str:
    """One line per checked metric: ``<subscription> <metric>: data for N of M entities``."""
    if not report.entries:
        return "availability: nothing to check (no subscription lists metrics)"
    lines = []
    for e in report.entries:
        total = len(e.with_data) + len(e.without_data)
        verdict = "" if e.available else " (none: unavailable, no permission, or no activity)"
        lines.append(
            f"{e.subscription} {e.metric}: data for {len(e.with_data)} of {total}{verdict}"
        )
    return "\n".join(lines)
