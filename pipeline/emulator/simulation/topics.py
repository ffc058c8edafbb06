"""Notification ``eventBody`` dicts built from the simulation's state (docs/genesys-api.md §6).

One function per topic family; :func:`bodies_for_topic` dispatches on the topic name. Bodies
are rebuilt on every call from committed state, so two calls with no change in between return
equal (``==``) lists and the server can send on change. The metric-entry builders are shared
with the queue-observation query so the REST answer and the stream always agree.

Shapes follow §6.2 (queue observations: observation, agent-state and 30-minute aggregate
flavours), §6.3 (queue activity), §6.4 (user presence / routingStatus / activity) and the SDK
models
``StatEventUserTopicStatsNotification``, ``StatEventWrapUpCodeTopicStatsNotification`` and
``QueueUserEventTopicQueueMember``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.log import StatAccumulator, render_stats
from pipeline.emulator.simulation.model import (
    INTERVAL_MS,
    RECORDED_METRICS,
    AgentStateSnapshot,
    format_interval,
    iso_ms,
)

__all__ = [
    "AGENT_STATE_METRICS",
    "MEDIA_OBSERVATION_METRICS",
    "SUPPORTED_TOPIC_TEMPLATES",
    "agent_state_metrics",
    "aggregate_metrics",
    "bodies_for_topic",
    "media_observation_metrics",
    "user_status_metrics",
]

SUPPORTED_TOPIC_TEMPLATES: tuple[str, ...] = (
    "v2.analytics.queues.{id}.observations",
    "v2.analytics.queues.{id}.activity",
    "v2.analytics.users.{id}.aggregates",
    "v2.analytics.wrapup.{id}.aggregates",
    "v2.routing.queues.{id}.users",
    "v2.users.{id}.presence",
    "v2.users.{id}.routingStatus",
    "v2.users.{id}.activity",
)
_TOPIC = re.compile(r"^(v2\.[a-z.]+?)\.([^.?&]+)\.([A-Za-z]+)$")
_FAMILIES = {t.replace("{id}", "*") for t in SUPPORTED_TOPIC_TEMPLATES}

# Queue-observation metrics per group (§7.1): conversation counts per media type, user counts
# per queue only (group without mediaType, §6.2 agent-state flavour).
MEDIA_OBSERVATION_METRICS: tuple[str, ...] = (
    "oWaiting",
    "oInteracting",
    "oAlerting",
    "oLongestWaiting",
    "oLongestInteracting",
)
AGENT_STATE_METRICS: tuple[str, ...] = (
    "oOnQueueUsers",
    "oUserRoutingStatuses",
    "oUserPresences",
    "oActiveUsers",
    "oMemberUsers",
    "oOffQueueUsers",
)
_OFF_QUEUE = ROUTING_STATUSES.index("OFF_QUEUE")


def bodies_for_topic(cc: ContactCenter, topic: str) -> list[dict[str, object]]:
    """The current event bodies for ``topic``; [] for an unknown topic or entity."""
    match = _TOPIC.match(topic)
    if not match or f"{match[1]}.*.{match[3]}" not in _FAMILIES:
        return []
    family, entity, leaf = match[1], match[2], match[3]
    if family in ("v2.analytics.queues", "v2.routing.queues"):
        q = cc.queue_index.get(entity)
        if q is None:
            return []
        if leaf == "observations":
            return _queue_observations(cc, q)
        return _queue_activity(cc, q) if leaf == "activity" else _queue_members(cc, q)
    if family == "v2.analytics.wrapup":
        w = cc.wrapup_index.get(entity)
        return [] if w is None else _wrapup_aggregates(cc, w)
    u = cc.user_index.get(entity)
    if u is None:
        return []
    if family == "v2.analytics.users":
        return _user_aggregates(cc, u)
    return [_user_body(cc, u, leaf)]


def media_observation_metrics(
    cc: ContactCenter, queue: int, media: int, at_ms: int, names: tuple[str, ...]
) -> list[dict[str, object]]:
    """Metric entries of a (queue, media) group for the names asked, in that order.

    ``oLongestWaiting`` / ``oLongestInteracting`` carry ``{"count": 1,
    "calculatedMetricValue": age_ms}`` like the §6.3 activity model, with the age measured at
    ``at_ms``; ``{"count": 0}`` when nobody is waiting / interacting. UNVERIFIED stat keys.
    """
    obs = cc.queue_observation(queue, media)
    values = {"oWaiting": obs.waiting, "oInteracting": obs.interacting, "oAlerting": obs.alerting}
    oldest = {"oLongestWaiting": obs.oldest_waiting_ms,
              "oLongestInteracting": obs.oldest_interacting_ms}  # fmt: skip
    entries: list[dict[str, object]] = []
    for name in names:
        if name in values:
            entries.append({"metric": name, "stats": {"count": values[name]}})
        else:
            start = oldest[name]
            stats = {"count": 0} if start is None else {
                "count": 1, "calculatedMetricValue": at_ms - start}  # fmt: skip
            entries.append({"metric": name, "stats": stats})
    return entries


def agent_state_metrics(
    cc: ContactCenter, state: AgentStateSnapshot, names: tuple[str, ...]
) -> list[dict[str, object]]:
    """Metric entries of a queue's agent-state group for the names asked, in that order.

    Qualified metrics list every qualifier, zeros included, so a consumer that merges per
    (metric, qualifier) never keeps a stale count (real Genesys may omit zeros: UNVERIFIED).
    oOnQueueUsers counts ON_QUEUE members per routing status; oUserRoutingStatuses counts
    active (not OFFLINE) members per routing status; oUserPresences counts all members per
    organisation presence id; oActiveUsers = not OFFLINE; oOffQueueUsers = active and
    OFF_QUEUE. UNVERIFIED definitions. With ``omit_zero_qualifiers`` a qualified entry whose
    count is 0 is left out instead.
    """
    entries = _agent_state_entries(cc, state, names)
    if cc.config.omit_zero_qualifiers:
        return [e for e in entries if "qualifier" not in e or e["stats"] != {"count": 0}]
    return entries


def _agent_state_entries(
    cc: ContactCenter, state: AgentStateSnapshot, names: tuple[str, ...]
) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for name in names:
        if name == "oOnQueueUsers":
            entries += [
                {"metric": name, "qualifier": status, "stats": {"count": state.routing_counts[i]}}
                for i, status in enumerate(ROUTING_STATUSES) if i != _OFF_QUEUE
            ]  # fmt: skip
        elif name == "oUserRoutingStatuses":
            entries += [
                {"metric": name, "qualifier": status, "stats": {"count": state.routing_counts[i]}}
                for i, status in enumerate(ROUTING_STATUSES)
            ]
        elif name == "oUserPresences":
            entries += [
                {"metric": name, "qualifier": cc.org_presence_ids[presence],
                 "stats": {"count": state.presence_counts[i]}}
                for i, presence in enumerate(SYSTEM_PRESENCES)
            ]  # fmt: skip
        else:
            count = {"oActiveUsers": state.active, "oMemberUsers": state.members,
                     "oOffQueueUsers": state.routing_counts[_OFF_QUEUE]}[name]  # fmt: skip
            entries.append({"metric": name, "stats": {"count": count}})
    return entries


def aggregate_metrics(
    accs: Mapping[int, StatAccumulator], target: float | None
) -> list[dict[str, object]]:
    """Metric entries of recorded conversation metrics, in RECORDED_METRICS order."""
    return [
        {"metric": RECORDED_METRICS[code], "stats": render_stats(RECORDED_METRICS[code], acc,
                                                                  target)}
        for code, acc in sorted(accs.items())
    ]  # fmt: skip


def _current_interval(cc: ContactCenter) -> str:
    return format_interval(cc.interval_start_ms, cc.interval_start_ms + INTERVAL_MS)


def _queue_observations(cc: ContactCenter, q: int) -> list[dict[str, object]]:
    queue = cc.queues[q]
    bodies: list[dict[str, object]] = []
    medias = [cc.media_types.index(name) for name in queue.media_types]
    for m in medias:
        at = cc.queue_observation(q, m).instant_ms
        bodies.append({
            "group": {"queueId": queue.id, "mediaType": cc.media_types[m]},
            "data": [{"interval": format_interval(at, at), "metrics": media_observation_metrics(
                cc, q, m, at, MEDIA_OBSERVATION_METRICS)}],
        })  # fmt: skip
    state = cc.agent_state(q)
    bodies.append({
        "group": {"queueId": queue.id},
        "data": [{"interval": format_interval(state.instant_ms, state.instant_ms),
                  "metrics": agent_state_metrics(cc, state, AGENT_STATE_METRICS)}],
    })  # fmt: skip
    interval = _current_interval(cc)
    for m in medias:
        accs = cc.current_queue_stats(q, m)
        if accs:
            bodies.append({
                "group": {"queueId": queue.id, "mediaType": cc.media_types[m]},
                "data": [{"interval": interval,
                          "metrics": aggregate_metrics(accs, queue.service_level_percentage)}],
            })  # fmt: skip
    return bodies


def _queue_activity(cc: ContactCenter, q: int) -> list[dict[str, object]]:
    # V2QueueObservationObservationCountNotification (§6.3): one `results` entry per media type
    # the queue serves, every time (whether Genesys sends unchanged media types is UNVERIFIED).
    # oLongest* carry calculatedMetricValue = the epoch-ms start of the oldest conversation
    # (§6.8 BELIEF), so the body changes only when the oldest one does, and count 1 (0 and no
    # value when nobody waits / talks). oFlow is always 0: the simulation has no flows (IVR).
    results: list[dict[str, object]] = []
    for name in cc.queues[q].media_types:
        obs = cc.queue_observation(q, cc.media_types.index(name))
        data: list[dict[str, object]] = [
            {"metric": "oAlerting", "count": obs.alerting},
            {"metric": "oInteracting", "count": obs.interacting},
            {"metric": "oWaiting", "count": obs.waiting},
            {"metric": "oFlow", "count": 0},
        ]
        for metric, start in (("oLongestWaiting", obs.oldest_waiting_ms),
                              ("oLongestInteracting", obs.oldest_interacting_ms)):  # fmt: skip
            data.append({"metric": metric, "count": 0} if start is None else
                        {"metric": metric, "count": 1, "calculatedMetricValue": start})  # fmt: skip
        results.append({"mediaType": name, "data": data})
    return [{"results": results}]


def _queue_members(cc: ContactCenter, q: int) -> list[dict[str, object]]:
    # QueueUserEventTopicQueueMember; its user reference model has only `id` (SDK 269). A
    # member who left keeps a body with joined false, so the feed sends the change once.
    queue_id = cc.queues[q].id
    return [
        {"id": cc.users[u].id, "user": {"id": cc.users[u].id}, "queueId": queue_id,
         "joined": joined}
        for u, joined in [*((u, True) for u in cc.members(q)),
                          *((u, False) for u in cc.former_members(q))]
    ]  # fmt: skip


def _wrapup_aggregates(cc: ContactCenter, w: int) -> list[dict[str, object]]:
    # Group {wrapUpCode, queueId, mediaType}: one body per queue and media that used the code
    # in the current interval. UNVERIFIED: the real group keys of this topic were not seen.
    interval, m_count = _current_interval(cc), len(cc.media_types)
    bodies: list[dict[str, object]] = []
    for slot, accs in sorted(cc.current_wrapup_stats(w).items()):
        queue = cc.queues[slot // m_count]
        bodies.append({
            "group": {"wrapUpCode": cc.wrapup_codes[w].id, "queueId": queue.id,
                      "mediaType": cc.media_types[slot % m_count]},
            "data": [{"interval": interval,
                      "metrics": aggregate_metrics(accs, queue.service_level_percentage)}],
        })  # fmt: skip
    return bodies


def user_status_metrics(
    cc: ContactCenter, accs: Mapping[int, StatAccumulator]
) -> list[dict[str, object]]:
    """tAgentRoutingStatus / tSystemPresence / tOrganizationPresence entries (§7.3).

    Keys of ``accs`` are ``kind * 16 + qualifier`` (kind 0 routing status, 1 presence). Stats
    are ``{"sum": ms, "count": segments}``. The organisation presence mirrors the system one
    (one org presence per system presence in the simulation).
    """
    routing: list[dict[str, object]] = []
    system: list[dict[str, object]] = []
    org: list[dict[str, object]] = []
    for key, acc in sorted(accs.items()):
        kind, qualifier = divmod(key, 16)
        stats = {"sum": acc.total, "count": acc.count}
        if kind == 0:
            routing.append({"metric": "tAgentRoutingStatus",
                            "qualifier": ROUTING_STATUSES[qualifier], "stats": stats})  # fmt: skip
        else:
            name = SYSTEM_PRESENCES[qualifier]
            system.append({"metric": "tSystemPresence", "qualifier": name, "stats": stats})
            org.append({"metric": "tOrganizationPresence",
                        "qualifier": cc.org_presence_ids[name], "stats": dict(stats)})  # fmt: skip
    return [*routing, *system, *org]


def _user_aggregates(cc: ContactCenter, u: int) -> list[dict[str, object]]:
    metrics = user_status_metrics(cc, cc.current_user_stats(u))
    if not metrics:
        return []
    return [{"group": {"userId": cc.users[u].id},
             "data": [{"interval": _current_interval(cc), "metrics": metrics}]}]  # fmt: skip


def _user_body(cc: ContactCenter, u: int, leaf: str) -> dict[str, object]:
    user, snap = cc.users[u], cc.user_snapshot(u)
    definition = {"id": cc.org_presence_ids[snap.presence], "systemPresence": snap.presence}
    routing = {"status": snap.routing_status, "startTime": iso_ms(snap.routing_ms)}
    if leaf == "presence":  # PresenceEventUserPresence; `source` value UNVERIFIED
        return {"source": "PURECLOUD", "presenceDefinition": definition, "primary": True,
                "message": "", "modifiedDate": iso_ms(snap.presence_ms)}  # fmt: skip
    if leaf == "routingStatus":
        return {"id": user.id, "routingStatus": routing}
    start = iso_ms(cc.start_ms)
    return {
        "id": user.id,
        "routingStatus": routing,
        "presence": {"presenceDefinition": definition, "presenceMessage": "",
                     "modifiedDate": iso_ms(snap.presence_ms)},
        "outOfOffice": {"active": False, "modifiedDate": start},
        "activeQueueIds": list(user.queue_ids),
        "dateActiveQueuesChanged": start,
    }  # fmt: skip
