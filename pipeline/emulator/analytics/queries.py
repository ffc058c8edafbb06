"""The emulator's analytics query engine over a :class:`ContactCenter` (docs/genesys-api.md §7).

Pure functions from a request body (already decoded JSON) to a response dict shaped like the
SDK models ``QueueObservationQueryResponse``, ``ConversationAggregateQueryResponse``,
``UserAggregateQueryResponse`` and ``RoutingActivityResponse``. Invalid bodies raise
:class:`QueryError` (status, Genesys code, message); the HTTP shell turns it into an
``ErrorBody``.

Consistency with the stream is by construction: observation queries read the same committed
counters and render through the same builders as the ``v2.analytics.queues.{id}.observations``
bodies, and aggregate queries read the same emission rows whose running totals feed the
30-minute aggregate bodies. So, at one simulated instant, a conversation-aggregates query for
the current interval grouped by queueId and mediaType equals the aggregate-flavour body, and
oWaiting in a query equals oWaiting on the topic.

Aggregates count what *completed* inside a bucket (§7.2, FORUM-AGG). Time in status comes
from finished segments (cut at every 30-minute boundary) split over the buckets they overlap;
the status an agent is in right now is not counted until it ends (UNVERIFIED: the real API
may include in-progress time).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    CONVERSATION_GROUP_BY_DIMENSIONS,
    QUEUE_OBSERVATION_DETAIL_METRICS,
    QUEUE_OBSERVATION_METRICS,
    USER_AGGREGATE_DIMENSIONS,
    USER_AGGREGATE_METRICS,
)
from pipeline.emulator.analytics.activity import query_routing_activity
from pipeline.emulator.analytics.request import (
    DEFAULT_RULES,
    USER_PREDICATE_LIMIT,
    Filter,
    QueryError,
    QueryRules,
    bucket_edges,
    parse_filter,
    parse_interval,
    parse_names,
    parse_time_zone,
    require_mapping,
)
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.log import StatAccumulator, render_stats
from pipeline.emulator.simulation.model import (
    AGENT_METRICS,
    RECORDED_METRICS,
    format_interval,
    iso_ms,
)
from pipeline.emulator.simulation.topics import (
    AGENT_STATE_METRICS,
    MEDIA_OBSERVATION_METRICS,
    agent_state_metrics,
    media_observation_metrics,
    user_status_metrics,
)

__all__ = [
    "QueryError",
    "query_conversation_aggregates",
    "query_queue_observations",
    "query_routing_activity",
    "query_user_aggregates",
]

_QUEUE_OBSERVATION_DIMENSIONS = ("queueId", "mediaType")
_USER_METRIC_KIND = {"tAgentRoutingStatus": 0, "tSystemPresence": 1, "tOrganizationPresence": 1}


def _presence_mappings(cc: ContactCenter) -> dict[str, list[str]]:
    # systemToOrganizationMappings: system presence → org presence ids (§7.1).
    return {system: [org] for system, org in cc.org_presence_ids.items()}


def query_queue_observations(cc: ContactCenter, body: Mapping[str, object]) -> dict[str, object]:
    """``POST /api/v2/analytics/queues/observations/query`` (§7.1).

    One group per (queue, media type) the queue serves with the conversation metrics asked,
    and one group per queue (no mediaType) with the user metrics asked. A ``mediaType``
    predicate does not remove the queue-only group (UNVERIFIED). oLongest* ages are measured
    at the simulation's current instant.

    Raises:
        QueryError: missing filter or metrics, unknown metric or dimension.
    """
    body = require_mapping(body, "body")
    query_filter = parse_filter(body, _QUEUE_OBSERVATION_DIMENSIONS, required=True)
    metrics = parse_names(body, "metrics", QUEUE_OBSERVATION_METRICS, required=True)
    details = set(parse_names(body, "detailMetrics", QUEUE_OBSERVATION_DETAIL_METRICS,
                              required=False))  # fmt: skip
    media_names = tuple(m for m in MEDIA_OBSERVATION_METRICS if m in metrics)
    media_names = tuple(sorted(media_names, key=metrics.index))
    user_names = tuple(sorted((m for m in AGENT_STATE_METRICS if m in metrics), key=metrics.index))
    now = cc.now_ms()
    results: list[dict[str, object]] = []
    for q, queue in enumerate(cc.queues):
        if media_names:
            for media_name in queue.media_types:
                dims = {"queueId": queue.id, "mediaType": media_name}
                if query_filter is not None and not query_filter.test(dims.get):
                    continue
                m = cc.media_types.index(media_name)
                entries = media_observation_metrics(cc, q, m, now, media_names)
                for entry in entries:
                    if entry["metric"] in details:
                        _attach_conversations(cc, q, m, entry)
                results.append({"group": dims, "data": entries})
        queue_only = {"queueId": queue.id}
        if user_names and (query_filter is None or _matches_ignoring_media(query_filter,
                                                                          queue_only)):  # fmt: skip
            entries = agent_state_metrics(cc, cc.agent_state(q), user_names)
            for entry in entries:
                if entry["metric"] in details:
                    _attach_users(cc, q, entry)
            results.append({"group": queue_only, "data": entries})
    response: dict[str, object] = {"systemToOrganizationMappings": _presence_mappings(cc)}
    if results:
        response["results"] = results
    return response


def _matches_ignoring_media(query_filter: Filter, dims: dict[str, str]) -> bool:
    stripped = Filter(
        query_filter.type,
        tuple(p for p in query_filter.predicates if p.dimension != "mediaType"),
        tuple(_matches_clause(c) for c in query_filter.clauses),
    )
    return stripped.test(dims.get)


def _matches_clause(clause: Filter) -> Filter:
    return Filter(clause.type, tuple(p for p in clause.predicates if p.dimension != "mediaType"),
                  ())  # fmt: skip


def _attach_conversations(cc: ContactCenter, q: int, m: int, entry: dict[str, object]) -> None:
    rows = cc.observation_details(q, m, str(entry["metric"]))
    entry["truncated"] = False
    entry["observations"] = [
        {"observationDate": iso_ms(at), "conversationId": cid, "direction": "inbound",
         "routingPriority": 0}
        for at, cid in rows
    ]  # fmt: skip


def _attach_users(cc: ContactCenter, q: int, entry: dict[str, object]) -> None:
    metric, qualifier = entry["metric"], entry.get("qualifier")
    observations = []
    for u in cc.members(q):
        snap = cc.user_snapshot(u)
        offline = snap.presence == "OFFLINE"
        keep = {
            "oOnQueueUsers": snap.presence == "ON_QUEUE" and snap.routing_status == qualifier,
            "oUserRoutingStatuses": not offline and snap.routing_status == qualifier,
            "oUserPresences": cc.org_presence_ids[snap.presence] == qualifier,
            "oActiveUsers": not offline,
            "oMemberUsers": True,
            "oOffQueueUsers": not offline and snap.routing_status == "OFF_QUEUE",
        }[str(metric)]
        if keep:
            at = snap.presence_ms if metric == "oUserPresences" else snap.routing_ms
            observations.append({"observationDate": iso_ms(at), "userId": cc.users[u].id})
    entry["truncated"] = False
    entry["observations"] = observations


class _Row:
    """Dimension values of the emission row being scanned (mutable cursor)."""

    __slots__ = ("cc", "media", "metric", "queue", "user", "wrapup")

    def __init__(self, cc: ContactCenter) -> None:
        self.cc = cc
        self.metric = self.queue = self.media = self.user = self.wrapup = -1

    def value(self, dimension: str) -> str | None:
        """The row's value of ``dimension`` (None when the row does not carry it)."""
        cc = self.cc
        if dimension == "queueId":
            return cc.queues[self.queue].id
        if dimension == "mediaType":
            return cc.media_types[self.media]
        if dimension == "userId":
            return cc.users[self.user].id if self.user >= 0 else None
        if dimension == "wrapUpCode":
            return cc.wrapup_codes[self.wrapup].id if self.wrapup >= 0 else None
        if dimension in ("direction", "originatingDirection"):
            return "inbound"  # the simulation has inbound traffic only
        if dimension == "purpose":
            return "agent" if RECORDED_METRICS[self.metric] in AGENT_METRICS else "acd"
        return None  # a real dimension the simulation does not record


def query_conversation_aggregates(
    cc: ContactCenter, body: Mapping[str, object], rules: QueryRules = DEFAULT_RULES
) -> dict[str, object]:
    """``POST /api/v2/analytics/conversations/aggregates/query`` (§7.2).

    Buckets by ``granularity`` from the interval start, groups by any ``groupBy`` subset
    (a row without a dimension is grouped without that key), filters with and/or clauses.
    Buckets and groups with no data are left out; no data at all gives ``{}`` (UNVERIFIED).
    Real metrics the simulation does not produce are accepted and simply have no data.
    ``rules`` holds the interval and granularity limits (§7.4 BELIEF).

    Raises:
        QueryError: see :mod:`pipeline.emulator.analytics.request`.
    """
    body = require_mapping(body, "body")
    start, end = parse_interval(body, rules.max_interval_days)
    edges = bucket_edges(start, end, body.get("granularity"), parse_time_zone(body),
                         rules.conversation_granularity_minutes)  # fmt: skip
    group_by = parse_names(body, "groupBy", CONVERSATION_GROUP_BY_DIMENSIONS, required=False)
    dims = CONVERSATION_GROUP_BY_DIMENSIONS | {"canonicalExternalContactId"}
    query_filter = parse_filter(body, dims, required=False)
    metrics = parse_names(body, "metrics", CONVERSATION_AGGREGATE_METRICS, required=True)
    if body.get("views"):
        raise QueryError("views are not supported by the emulator")
    if body.get("queryType", "groupBy") != "groupBy":
        raise QueryError("queryType topN/bottomN is not supported by the emulator")
    wanted = {RECORDED_METRICS.index(m) for m in metrics if m in RECORDED_METRICS}
    cells: dict[tuple[tuple[str | None, ...], int], dict[int, StatAccumulator]] = {}
    targets: dict[tuple[tuple[str | None, ...], int], set[float]] = {}
    row = _Row(cc)
    sl_code = RECORDED_METRICS.index("oServiceLevel")
    for chunk in cc.emissions.chunks(start, end):
        times = chunk.time
        for i in range(bisect_left(times, start), bisect_left(times, end)):
            code = chunk.metric[i]
            if code not in wanted:
                continue
            row.metric, row.queue, row.media = code, chunk.queue[i], chunk.media[i]
            row.user, row.wrapup = chunk.user[i], chunk.wrapup[i]
            if query_filter is not None and not query_filter.test(row.value):
                continue
            cell = (tuple(row.value(d) for d in group_by), bisect_right(edges, times[i]) - 1)
            accs = cells.setdefault(cell, {})
            (accs.get(code) or accs.setdefault(code, StatAccumulator())).add(chunk.value[i])
            if code == sl_code:
                targets.setdefault(cell, set()).add(cc.queues[row.queue].service_level_percentage)
    if not cells:
        return {}
    order = [RECORDED_METRICS.index(m) for m in metrics if m in RECORDED_METRICS]
    groups: dict[tuple[str | None, ...], list[dict[str, object]]] = {}
    for (key, bucket), accs in sorted(cells.items(), key=lambda c: (_sortable(c[0][0]), c[0][1])):
        pcts = targets.get((key, bucket), set())
        target = next(iter(pcts)) if len(pcts) == 1 else None  # mixed targets: left out
        groups.setdefault(key, []).append({
            "interval": format_interval(edges[bucket], edges[bucket + 1]),
            "metrics": [{"metric": RECORDED_METRICS[code],
                         "stats": render_stats(RECORDED_METRICS[code], accs[code], target)}
                        for code in order if code in accs],
        })  # fmt: skip
    return {"results": [
        {"group": {d: v for d, v in zip(group_by, key, strict=True) if v is not None},
         "data": data}
        for key, data in groups.items()
    ]}  # fmt: skip


def _sortable(key: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else v for v in key)


def query_user_aggregates(
    cc: ContactCenter, body: Mapping[str, object], rules: QueryRules = DEFAULT_RULES
) -> dict[str, object]:
    """``POST /api/v2/analytics/users/aggregates/query`` (§7.3).

    Time in each routing status / presence from finished segments, split over the buckets
    they overlap; stats ``{"sum": ms, "count": segments}``. Qualifiers: the routing status,
    the system presence, or the organisation presence id. At most 100 userId predicates
    (VERIFIED); the interval and granularity limits are ``rules`` (§7.4 BELIEF).

    Raises:
        QueryError: see :mod:`pipeline.emulator.analytics.request`; also more than 100
            userId predicates (constraint.validation).
    """
    body = require_mapping(body, "body")
    start, end = parse_interval(body, rules.max_interval_days)
    edges = bucket_edges(start, end, body.get("granularity"), parse_time_zone(body),
                         rules.user_granularity_minutes)  # fmt: skip
    group_by = parse_names(body, "groupBy", USER_AGGREGATE_DIMENSIONS, required=False)
    query_filter = parse_filter(body, USER_AGGREGATE_DIMENSIONS, required=False)
    users = 0 if query_filter is None else query_filter.count("userId")
    if users > USER_PREDICATE_LIMIT:
        raise QueryError(
            f"filter: {users} userId predicates; a query may hold at most "
            f"{USER_PREDICATE_LIMIT} (split the users over several queries)",
            "constraint.validation",
        )
    metrics = parse_names(body, "metrics", USER_AGGREGATE_METRICS, required=True)
    kinds = {_USER_METRIC_KIND[m] for m in metrics}
    cells: dict[tuple[int, int], dict[int, StatAccumulator]] = {}
    for chunk in cc.segments.chunks(start, end):
        for i in range(len(chunk.user)):
            seg_start, seg_end, kind = chunk.start[i], chunk.end[i], chunk.kind[i]
            if seg_end <= start or seg_start >= end or kind not in kinds:
                continue
            user = chunk.user[i]
            user_id = cc.users[user].id
            if query_filter is not None and not query_filter.test({"userId": user_id}.get):
                continue
            first = max(0, bisect_right(edges, seg_start) - 1)
            for bucket in range(first, len(edges) - 1):
                low, high = max(seg_start, edges[bucket]), min(seg_end, edges[bucket + 1])
                if low >= high:
                    break
                accs = cells.setdefault((user if group_by else -1, bucket), {})
                key = kind * 16 + chunk.qualifier[i]
                (accs.get(key) or accs.setdefault(key, StatAccumulator())).add_many(high - low, 1)
    groups: dict[int, list[dict[str, object]]] = {}
    for (user, bucket), accs in sorted(cells.items()):
        entries = [e for e in user_status_metrics(cc, accs) if e["metric"] in metrics]
        groups.setdefault(user, []).append(
            {"interval": format_interval(edges[bucket], edges[bucket + 1]), "metrics": entries}
        )
    if not groups:
        return {}
    return {
        "systemToOrganizationMappings": _presence_mappings(cc),
        "results": [
            {"group": {"userId": cc.users[user].id} if user >= 0 else {}, "data": data}
            for user, data in groups.items()
        ],
    }
