"""``POST /api/v2/analytics/routing/activity/query`` over a ContactCenter (docs/genesys-api.md
§7.1).

A snapshot of agents per queue membership: every (user, queue) membership is an entity with
the dimensions ``userId``, ``queueId``, ``routingStatus``, ``systemPresence``,
``organizationPresenceId``, ``queueMembershipStatus``, ``routingStatusDate`` and
``presenceDate``. Metrics count distinct users per group, like the queue-observation user
metrics (``agent_state_metrics``), so a query grouped by queueId agrees with the agent-state
body of ``v2.analytics.queues.{id}.observations``. Only non-zero counts are listed.
Response shape: SDK ``RoutingActivityResponse`` / ``RoutingActivityData`` /
``RoutingActivityMetricValue``. ``queueMembershipStatus`` values are UNVERIFIED
("ACTIVE" for every membership here); ``teamId`` is never set (no teams in the simulation).
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.emulator.analytics.request import (
    QueryError,
    parse_filter,
    parse_names,
    require_mapping,
)
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import iso_ms

__all__ = ["ROUTING_ACTIVITY_DIMENSIONS", "ROUTING_ACTIVITY_METRICS", "query_routing_activity"]

ROUTING_ACTIVITY_METRICS: tuple[str, ...] = (
    "oActiveUsers",
    "oMemberUsers",
    "oOffQueueUsers",
    "oOnQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
)
ROUTING_ACTIVITY_DIMENSIONS: frozenset[str] = frozenset(
    {
        "organizationPresenceId", "presenceDate", "queueId", "queueMembershipStatus",
        "routingStatus", "routingStatusDate", "systemPresence", "teamId", "userId",
    }
)  # fmt: skip
_Entity = dict[str, str | None]
_GROUP_BY = ROUTING_ACTIVITY_DIMENSIONS - {"presenceDate", "routingStatusDate"}


def _parse_metrics(body: Mapping[str, object]) -> list[tuple[str, bool]]:
    raw = body.get("metrics")
    if not raw:
        raise QueryError("metrics may not be null or empty", "constraint.validation")
    if not isinstance(raw, list):
        raise QueryError("metrics must be a list of {metric, details} objects")
    parsed: list[tuple[str, bool]] = []
    for i, item in enumerate(raw):
        entry = require_mapping(item, f"metrics[{i}]")
        parse_names({"metric": [entry.get("metric")]}, "metric", ROUTING_ACTIVITY_METRICS,
                    required=True)  # fmt: skip
        parsed.append((str(entry["metric"]), bool(entry.get("details", False))))
    return parsed


def query_routing_activity(cc: ContactCenter, body: Mapping[str, object]) -> dict[str, object]:
    """Answer a ``RoutingActivityQuery`` from the simulation's current agent states.

    Raises:
        QueryError: missing or unknown metrics, unknown groupBy or filter dimension, bad order.
    """
    body = require_mapping(body, "body")
    metrics = _parse_metrics(body)
    group_by = parse_names(body, "groupBy", _GROUP_BY, required=False)
    query_filter = parse_filter(body, ROUTING_ACTIVITY_DIMENSIONS, required=False)
    order = body.get("order", "asc")
    if order not in ("asc", "desc", "unordered"):
        raise QueryError(f"order: unknown value '{order}'", "invalid.value")
    groups: dict[tuple[str | None, ...], list[_Entity]] = {}
    for q, queue in enumerate(cc.queues):
        for u in cc.members(q):
            snap = cc.user_snapshot(u)
            entity: _Entity = {
                "userId": cc.users[u].id,
                "queueId": queue.id,
                "routingStatus": snap.routing_status,
                "systemPresence": snap.presence,
                "organizationPresenceId": cc.org_presence_ids[snap.presence],
                "queueMembershipStatus": "ACTIVE",
                "routingStatusDate": iso_ms(snap.routing_ms),
                "presenceDate": iso_ms(snap.presence_ms),
                "teamId": None,
            }
            if query_filter is None or query_filter.test(entity.get):
                groups.setdefault(tuple(entity[d] for d in group_by), []).append(entity)
    results: list[dict[str, object]] = []
    for key in sorted(groups, key=lambda k: tuple(v or "" for v in k), reverse=order == "desc"):
        data: list[dict[str, object]] = []
        for metric, details in metrics:
            for qualifier, users in _count(metric, groups[key]):
                if not users:
                    continue
                value: dict[str, object] = {"metric": metric, "count": len(users)}
                if qualifier is not None:
                    value["qualifier"] = qualifier
                if details:
                    value["entityIds"] = sorted(users)
                data.append(value)
        results.append({"group": {d: v for d, v in zip(group_by, key, strict=True) if v},
                        "data": data})  # fmt: skip
    return {"results": results, "entityIdDimension": "userId"} if results else {}


def _count(metric: str, entities: list[_Entity]) -> list[tuple[str | None, set[str]]]:
    """(qualifier, distinct user ids) pairs of one metric over a group's entities."""
    active = [e for e in entities if e["systemPresence"] != "OFFLINE"]
    if metric in ("oMemberUsers", "oActiveUsers"):
        pool = entities if metric == "oMemberUsers" else active
        return [(None, {str(e["userId"]) for e in pool})]
    if metric == "oOffQueueUsers":
        return [(None, {str(e["userId"]) for e in active if e["routingStatus"] == "OFF_QUEUE"})]
    key = "organizationPresenceId" if metric == "oUserPresences" else "routingStatus"
    pool = entities if metric == "oUserPresences" else active
    if metric == "oOnQueueUsers":
        pool = [e for e in active if e["systemPresence"] == "ON_QUEUE"]
    by_qualifier: dict[str | None, set[str]] = {}
    for e in pool:
        by_qualifier.setdefault(e[key], set()).add(str(e["userId"]))
    return sorted(by_qualifier.items(), key=lambda item: item[0] or "")
