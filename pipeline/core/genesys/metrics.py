"""The Genesys Cloud analytics vocabulary: real metric names, dimensions and statuses.

This is a catalogue, not logic. The emulator uses it to decide what it may emit and what a
query may ask for; the subscription validator uses it to reject invented names with a
"did you mean" hint. Every set is copied from the sources named in
``docs/genesys-api.md`` (§6.4, §7.1, §7.2, §7.3, §9) or from the enums of the
installed ``PureCloudPlatformClientV2`` models.

Naming rule (docs/genesys-api.md §1): ``n*`` metrics are counts, ``t*`` metrics are durations in
milliseconds carrying count/sum/min/max, and ``o*`` metrics are observations (a count now) or
ratios (``oServiceLevel``).

The tutorial we were handed uses friendly names (``offered``, ``serviceLevelPercent`` …) that do
not exist in Genesys. :data:`METRIC_ALIASES` maps them to a real metric and statistic, and
:data:`UNSUPPORTED_NAMES` explains the names that have no equivalent at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CONVERSATION_AGGREGATE_METRICS",
    "CONVERSATION_GROUP_BY_DIMENSIONS",
    "INTERVAL_TOPIC_METRICS",
    "MEDIA_TYPES",
    "METRIC_ALIASES",
    "QUEUE_ACTIVITY_METRICS",
    "QUEUE_OBSERVATION_DETAIL_METRICS",
    "QUEUE_OBSERVATION_METRICS",
    "ROUTING_STATUSES",
    "STAT_KEYS",
    "SYSTEM_PRESENCES",
    "UNSUPPORTED_NAMES",
    "USER_AGGREGATE_DIMENSIONS",
    "USER_AGGREGATE_METRICS",
    "Alias",
    "AliasStat",
    "metric_unit",
    "suggest",
]

# §7.6: the 82 conversation aggregate metrics of SDK 269 (the `ConversationAggregationView.target`
# enum): the 80 of the 2026-08 spec plus nAgentDeclined and nAlertExpired (SDK-RN). Checked
# against the installed SDK by tests/unit/test_catalogue_sdk.py.
CONVERSATION_AGGREGATE_METRICS: frozenset[str] = frozenset(
    {
        "nAgentDeclined", "nAlertExpired", "nBlindTransferred", "nBotInteractions",
        "nCallbackAttempts", "nCallbackOverSla", "nCallbackScheduled", "nCfcOffered",
        "nCobrowseSessions", "nConnected", "nConsult",
        "nConsultTransferred", "nConversations", "nError", "nOffered", "nOutbound",
        "nOutboundAbandoned", "nOutboundAttempted", "nOutboundConnected", "nOverSla",
        "nStateTransitionError", "nTakeover", "nTransferred", "oAudioMessageCount",
        "oCallbackServiceLevel", "oExternalAudioMessageCount", "oExternalMediaCount",
        "oMediaCount", "oMessageCount", "oMessageSegmentCount", "oMessageTurn", "oServiceLevel",
        "oServiceTarget", "oSkillExpressionApplications", "tAbandon", "tAcd", "tActiveCallback",
        "tActiveCallbackComplete", "tAcw", "tAgentResponseTime", "tAgentVideoConnected",
        "tAlert", "tAnswered", "tAverageAgentResponseTime", "tAverageCustomerResponseTime",
        "tBarging", "tCallbackAbandon", "tCallbackConnect", "tCallbackNotReached",
        "tCallbackVirtualWait", "tCfcAbandon", "tCfcAcd", "tCfcAnswered", "tCfcFlowOut",
        "tCoaching", "tCoachingComplete", "tConnected", "tContacting", "tDialing",
        "tFirstConnect", "tFirstDial", "tFirstEngagement", "tFirstResponse", "tFlowOut",
        "tHandle", "tHeld", "tHeldComplete", "tIvr", "tMonitoring", "tMonitoringComplete",
        "tNotResponding", "tPark", "tParkComplete", "tScreenMonitoring", "tShortAbandon",
        "tSnippetRecord", "tTalk", "tTalkComplete", "tTransmitting", "tUserResponseTime",
        "tVoicemail", "tWait",
    }
)  # fmt: skip

# §7.1: QueueObservationQuery `metrics` (11) and `detailMetrics` (the same minus oLongest*).
# The conversation metrics the 30-minute aggregate flavour of the queue observations topic
# carries (§6.2, OBS-JS frames), in a fixed order (the emulator uses positions as codes).
INTERVAL_TOPIC_METRICS: tuple[str, ...] = (
    "nOffered",
    "tAnswered",
    "tAbandon",
    "tHandle",
    "tTalk",
    "tHeld",
    "tAcw",
    "tWait",
    "tAlert",
    "tAcd",
    "nTransferred",
    "nConnected",
    "oServiceLevel",
)

QUEUE_OBSERVATION_METRICS: frozenset[str] = frozenset(
    {
        "oActiveUsers", "oAlerting", "oInteracting", "oLongestInteracting", "oLongestWaiting",
        "oMemberUsers", "oOffQueueUsers", "oOnQueueUsers", "oUserPresences",
        "oUserRoutingStatuses", "oWaiting",
    }
)  # fmt: skip
QUEUE_OBSERVATION_DETAIL_METRICS: frozenset[str] = QUEUE_OBSERVATION_METRICS - {
    "oLongestInteracting",
    "oLongestWaiting",
}

# §6.3: the metrics of the `v2.analytics.queues.{id}.activity` topic
# (`V2QueueObservationMetricCountData.metric`). oFlow (conversations in a flow of the queue) is
# carried only here; the other five are queue observation metrics too.
QUEUE_ACTIVITY_METRICS: frozenset[str] = frozenset(
    {"oAlerting", "oFlow", "oInteracting", "oLongestInteracting", "oLongestWaiting", "oWaiting"}
)

# §7.6: the keys of `StatisticalSummary` (REST answers) in its declared order; topic bodies use a
# free map with the same keys. `MetricRecord` carries each one as a column.
STAT_KEYS: tuple[str, ...] = (
    "max",
    "min",
    "count",
    "countNegative",
    "countPositive",
    "sum",
    "current",
    "ratio",
    "numerator",
    "denominator",
    "target",
    "p95",
    "p99",
    "calculatedMetricValue",
)

# §7.3: UserAggregationQuery metrics, groupBy and filter dimension.
USER_AGGREGATE_METRICS: frozenset[str] = frozenset(
    {"tAgentRoutingStatus", "tOrganizationPresence", "tSystemPresence"}
)
USER_AGGREGATE_DIMENSIONS: frozenset[str] = frozenset({"userId"})

# §7.2: ConversationAggregationQuery `groupBy` (83 names). Taken from the installed SDK's
# ConversationAggregateQueryPredicate.dimension enum, which is the groupBy list plus
# canonicalExternalContactId (SPEC: "predicate dimensions = groupBy list +
# canonicalExternalContactId"). There is no skillGroupId (§9).
CONVERSATION_GROUP_BY_DIMENSIONS: frozenset[str] = frozenset(
    {
        "activeRouting", "activeSkillId", "addressFrom", "addressTo", "agentAssistantId",
        "agentBullseyeRing", "agentOwned", "agentRank", "agentScore", "ani", "assignerId",
        "authenticated", "conversationId", "conversationInitiator", "convertedFrom",
        "convertedTo", "customerParticipation", "deliveryStatus", "destinationAddress",
        "direction", "disconnectType", "divisionId", "dnis", "edgeId", "eligibleAgentCount",
        "errorCode", "extendedDeliveryStatus", "externalContactId", "externalMediaCount",
        "externalOrganizationId", "externalTag", "firstQueue", "flaggedReason", "flowInType",
        "flowOutType", "groupId", "interactionType", "journeyActionId", "journeyActionMapId",
        "journeyActionMapVersion", "journeyCustomerId", "journeyCustomerIdType",
        "journeyCustomerSessionId", "journeyCustomerSessionIdType", "knowledgeBaseId",
        "mediaCount", "mediaType", "messageType", "originatingDirection",
        "originatingSocialMediaPublic", "outboundCampaignId", "outboundContactId",
        "outboundContactListId", "participantName", "peerId", "proposedAgentId", "provider",
        "purpose", "queueId", "remote", "removedSkillId", "requestedLanguageId",
        "requestedRouting", "requestedRoutingSkillId", "roomId", "routingPriority",
        "routingRing", "routingRule", "routingRuleType", "scoredAgentId", "selectedAgentId",
        "selectedAgentRank", "selfServed", "sessionDnis", "sessionId", "skillExpressionId",
        "stationId", "teamId", "usedRouting", "userId", "videoPresent",
        "waitingInteractionCount", "wrapUpCode",
    }
)  # fmt: skip

# The analytics `mediaType` enum as the SDK models carry it (e.g. AnalyticsSession.media_type,
# ConversationActivityEntityData.media_type in PureCloudPlatformClientV2 269).
MEDIA_TYPES: tuple[str, ...] = (
    "callback",
    "chat",
    "cobrowse",
    "email",
    "internalmessage",
    "message",
    "screenmonitoring",
    "screenshare",
    "unknown",
    "video",
    "voice",
)

# §6.4: routingStatus.status enum (VERIFIED) and system presences, upper-snake as they appear in
# notification frames (casing UNVERIFIED; REST definitions use "OnQueue", "Available" …).
ROUTING_STATUSES: tuple[str, ...] = (
    "OFF_QUEUE",
    "IDLE",
    "INTERACTING",
    "NOT_RESPONDING",
    "COMMUNICATING",
)
SYSTEM_PRESENCES: tuple[str, ...] = (
    "AVAILABLE",
    "AWAY",
    "BUSY",
    "OFFLINE",
    "IDLE",
    "ON_QUEUE",
    "MEAL",
    "TRAINING",
    "MEETING",
    "BREAK",
)

AliasStat = Literal["count", "sum", "mean", "ratio"]
"""Which statistic an alias reads: a stat key, or ``mean`` = ``sum / count``."""


@dataclass(frozen=True, slots=True)
class Alias:
    """A tutorial name expressed as a real Genesys metric and statistic.

    Attributes:
        metric: the real metric name, e.g. ``tAnswered``.
        stat: the statistic to read (``mean`` means ``sum / count``).
        scale: multiply the statistic by this (100 turns a ratio into a percent).
        note: why this mapping, in one sentence.
        derived: True when Genesys has no direct metric and this is our approximation.
    """

    metric: str
    stat: AliasStat
    scale: float
    note: str
    derived: bool = False


# §9 of the reference, one row per tutorial name.
METRIC_ALIASES: Mapping[str, Alias] = MappingProxyType(
    {
        "offered": Alias("nOffered", "count", 1.0, "conversations offered to the queue"),
        "answered": Alias(
            "tAnswered", "count", 1.0, "no nAnswered exists; each answer emits one tAnswered"
        ),
        "abandoned": Alias(
            "tAbandon", "count", 1.0, "no nAbandon exists; each abandon emits one tAbandon"
        ),
        "serviceLevelPercent": Alias(
            "oServiceLevel", "ratio", 100.0, "ratio = numerator / denominator, as a percent"
        ),
        "avgHandleTime": Alias(
            "tHandle", "mean", 1.0, "mean handle time in ms (talk + hold + after-call work)"
        ),
        # Speed of answer, not tWait: tWait also counts waits that ended in an abandon, and
        # "average wait" in the tutorial means how long answered customers waited (§9 lets us
        # pick one; this is the one dashboards call ASA).
        "avgWaitTime": Alias(
            "tAnswered", "mean", 1.0, "mean speed of answer in ms (tAnswered sum / count)"
        ),
        "holdDuration": Alias("tHeld", "sum", 1.0, "total hold time in ms"),
        "transferCount": Alias("nTransferred", "count", 1.0, "transfers out of the queue"),
        "wrapupCount": Alias(
            "tAcw",
            "count",
            1.0,
            "no wrap-up metric exists; counts after-call-work sessions (or group by wrapUpCode)",
            derived=True,
        ),
    }
)

UNSUPPORTED_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "skillGroup": (
            "Genesys analytics has no skill-group dimension or topic; map the skill group to "
            "its member users or queues and aggregate by userId or queueId"
        ),
        "skillGroupId": "no such dimension; use requestedRoutingSkillId or activeSkillId",
        "serviceLevelDuration": (
            "not a metric: it is queue configuration (mediaSettings.<media>.serviceLevel."
            "durationMs from GET /api/v2/routing/queues/{id}); oServiceLevel.target is the "
            "configured percentage"
        ),
        "nAnswered": "no such metric; use tAnswered and read stats.count",
        "nAbandon": "no such metric; use tAbandon and read stats.count",
        "nAbandoned": "no such metric; use tAbandon and read stats.count",
        "nHandled": "no such metric; use tHandle and read stats.count",
        "nWrapup": "no such metric; use tAcw stats.count, or group tHandle by wrapUpCode",
        "tHandleAvg": "no such metric; use tHandle and compute sum / count",
        "tAnsweredAvg": "no such metric; use tAnswered and compute sum / count",
        "tWaitAvg": "no such metric; use tWait and compute sum / count",
        "serviceLevel": "use oServiceLevel (stats ratio, numerator, denominator, target)",
    }
)


def metric_unit(metric: str) -> str:
    """The unit of a Genesys metric, from its prefix.

    Args:
        metric: a metric name such as ``tHandle`` or ``oWaiting``.

    Returns:
        ``"count"`` for ``n*`` and count observations, ``"ms"`` for ``t*`` and the
        ``oLongest*`` ages, ``"ratio"`` for the service-level observations.

    Raises:
        ValueError: the name does not start with ``n``, ``t`` or ``o`` and a capital letter.
    """
    if len(metric) < 2 or metric[0] not in "nto" or not metric[1].isupper():
        raise ValueError(f"not a Genesys metric name: {metric!r}")
    prefix = metric[0]
    if prefix == "n":
        return "count"
    if prefix == "t":
        return "ms"
    if metric in ("oServiceLevel", "oServiceTarget", "oCallbackServiceLevel"):
        return "ratio"
    if metric.startswith("oLongest"):
        # The age of the longest conversation, from calculatedMetricValue (an epoch-ms start or
        # an age: docs/genesys-api.md §6.8; core/contract/body.age reads both).
        return "ms"
    return "count"


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, for "did you mean" hints.

    A case-insensitive exact match wins; otherwise difflib's best match above 0.6 similarity.

    Args:
        name: what the user wrote.
        candidates: the valid names.

    Returns:
        The suggestion, or None when nothing is close.
    """
    pool = list(candidates)
    lowered = name.lower()
    for candidate in pool:
        if candidate.lower() == lowered:
            return candidate
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return matches[0] if matches else None
