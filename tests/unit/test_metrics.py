"""The metric catalogue holds the real Genesys vocabulary and maps the tutorial's names."""

from __future__ import annotations

import dataclasses
import re

import pytest

from pipeline.core.genesys import metrics
from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    CONVERSATION_GROUP_BY_DIMENSIONS,
    MEDIA_TYPES,
    METRIC_ALIASES,
    QUEUE_OBSERVATION_DETAIL_METRICS,
    QUEUE_OBSERVATION_METRICS,
    ROUTING_STATUSES,
    SYSTEM_PRESENCES,
    UNSUPPORTED_NAMES,
    USER_AGGREGATE_METRICS,
    Alias,
    metric_unit,
    suggest,
)

# docs/genesys-api.md §7.6, the metrics enum (SDK 269) as written there.
REFERENCE_7_6 = (
    "nAgentDeclined, nAlertExpired, nBlindTransferred, nBotInteractions, nCallbackAttempts, "
    "nCallbackOverSla, "
    "nCallbackScheduled, nCfcOffered, nCobrowseSessions, nConnected, nConsult, "
    "nConsultTransferred, nConversations, nError, nOffered, nOutbound, nOutboundAbandoned, "
    "nOutboundAttempted, nOutboundConnected, nOverSla, nStateTransitionError, nTakeover, "
    "nTransferred, oAudioMessageCount, oCallbackServiceLevel, oExternalAudioMessageCount, "
    "oExternalMediaCount, oMediaCount, oMessageCount, oMessageSegmentCount, oMessageTurn, "
    "oServiceLevel, oServiceTarget, oSkillExpressionApplications, tAbandon, tAcd, "
    "tActiveCallback, tActiveCallbackComplete, tAcw, tAgentResponseTime, tAgentVideoConnected, "
    "tAlert, tAnswered, tAverageAgentResponseTime, tAverageCustomerResponseTime, tBarging, "
    "tCallbackAbandon, tCallbackConnect, tCallbackNotReached, tCallbackVirtualWait, tCfcAbandon, "
    "tCfcAcd, tCfcAnswered, tCfcFlowOut, tCoaching, tCoachingComplete, tConnected, tContacting, "
    "tDialing, tFirstConnect, tFirstDial, tFirstEngagement, tFirstResponse, tFlowOut, tHandle, "
    "tHeld, tHeldComplete, tIvr, tMonitoring, tMonitoringComplete, tNotResponding, tPark, "
    "tParkComplete, tScreenMonitoring, tShortAbandon, tSnippetRecord, tTalk, tTalkComplete, "
    "tTransmitting, tUserResponseTime, tVoicemail, tWait. "
)


def test_catalogue_has_the_82_conversation_aggregate_metrics() -> None:
    assert len(CONVERSATION_AGGREGATE_METRICS) == 82
    assert {"nOffered", "tAnswered", "tAbandon", "tHandle", "oServiceLevel"} <= (
        CONVERSATION_AGGREGATE_METRICS
    )


def test_catalogue_matches_reference_enum_exactly() -> None:
    names = re.findall(r"\b[nto][A-Z]\w+", REFERENCE_7_6)
    assert len(names) == len(set(names)) == 82
    assert set(names) == CONVERSATION_AGGREGATE_METRICS


def test_queue_observation_sets_have_the_reference_sizes() -> None:
    assert len(QUEUE_OBSERVATION_METRICS) == 11
    assert (
        QUEUE_OBSERVATION_METRICS
        - {
            "oLongestWaiting",
            "oLongestInteracting",
        }
        == QUEUE_OBSERVATION_DETAIL_METRICS
    )
    assert {
        "tAgentRoutingStatus",
        "tOrganizationPresence",
        "tSystemPresence",
    } == USER_AGGREGATE_METRICS


def test_group_by_dimensions_include_the_ones_we_use_and_no_skill_group() -> None:
    needed = {
        "queueId", "userId", "mediaType", "direction", "wrapUpCode", "requestedRoutingSkillId",
        "activeSkillId", "requestedLanguageId", "divisionId", "teamId", "purpose", "messageType",
        "originatingDirection", "disconnectType", "conversationId", "sessionId",
        "interactionType", "usedRouting", "requestedRouting",
    }  # fmt: skip
    assert needed <= CONVERSATION_GROUP_BY_DIMENSIONS
    assert len(CONVERSATION_GROUP_BY_DIMENSIONS) == 83
    assert not any("skillgroup" in d.lower() for d in CONVERSATION_GROUP_BY_DIMENSIONS)


def test_media_types_match_the_sdk_enum() -> None:
    from PureCloudPlatformClientV2.models.analytics_session import AnalyticsSession

    session = AnalyticsSession()
    for media in MEDIA_TYPES:
        session.media_type = media
        assert session.media_type == media
    session.media_type = "carrier-pigeon"
    assert session.media_type == "outdated_sdk_version"  # not in the SDK enum


def test_statuses_and_presences() -> None:
    assert ROUTING_STATUSES == ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING",
                                "COMMUNICATING")  # fmt: skip
    assert len(SYSTEM_PRESENCES) == 10
    assert "ON_QUEUE" in SYSTEM_PRESENCES
    assert all(p == p.upper() for p in SYSTEM_PRESENCES)


ALIAS_TABLE = [
    ("offered", "nOffered", "count", 1.0, False),
    ("answered", "tAnswered", "count", 1.0, False),
    ("abandoned", "tAbandon", "count", 1.0, False),
    ("serviceLevelPercent", "oServiceLevel", "ratio", 100.0, False),
    ("avgHandleTime", "tHandle", "mean", 1.0, False),
    ("avgWaitTime", "tAnswered", "mean", 1.0, False),
    ("holdDuration", "tHeld", "sum", 1.0, False),
    ("transferCount", "nTransferred", "count", 1.0, False),
    ("wrapupCount", "tAcw", "count", 1.0, True),
]


@pytest.mark.parametrize(("name", "metric", "stat", "scale", "derived"), ALIAS_TABLE)
def test_alias_maps_tutorial_name_to_real_metric(
    name: str, metric: str, stat: str, scale: float, derived: bool
) -> None:
    alias = METRIC_ALIASES[name]
    assert (alias.metric, alias.stat, alias.scale, alias.derived) == (metric, stat, scale, derived)
    assert alias.metric in CONVERSATION_AGGREGATE_METRICS
    assert alias.note


def test_alias_table_is_exactly_the_tutorial_vocabulary() -> None:
    assert set(METRIC_ALIASES) == {row[0] for row in ALIAS_TABLE}


def test_alias_is_frozen() -> None:
    alias = METRIC_ALIASES["offered"]
    assert isinstance(alias, Alias)
    with pytest.raises(dataclasses.FrozenInstanceError):
        alias.metric = "nConnected"  # type: ignore[misc]


def test_unsupported_names_are_not_real_and_say_what_to_use() -> None:
    for name in ("skillGroup", "serviceLevelDuration", "nAnswered", "nAbandon", "nHandled",
                 "nWrapup", "tHandleAvg"):  # fmt: skip
        assert name in UNSUPPORTED_NAMES
    for name, explanation in UNSUPPORTED_NAMES.items():
        assert name not in CONVERSATION_AGGREGATE_METRICS
        assert name not in CONVERSATION_GROUP_BY_DIMENSIONS
        assert len(explanation) > 20
    assert "tAnswered" in UNSUPPORTED_NAMES["nAnswered"]
    assert "tHandle" in UNSUPPORTED_NAMES["tHandleAvg"]


@pytest.mark.parametrize(
    ("metric", "unit"),
    [
        ("nOffered", "count"),
        ("tHandle", "ms"),
        ("oServiceLevel", "ratio"),
        ("oWaiting", "count"),
        ("oLongestWaiting", "ms"),
        ("tAgentRoutingStatus", "ms"),
    ],
)
def test_metric_unit_follows_prefix(metric: str, unit: str) -> None:
    assert metric_unit(metric) == unit


@pytest.mark.parametrize("bad", ["offered", "", "x", "nope", "Tmetric"])
def test_metric_unit_rejects_non_metric_names(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Genesys metric"):
        metric_unit(bad)


def test_every_catalogued_metric_has_a_unit() -> None:
    for name in CONVERSATION_AGGREGATE_METRICS | QUEUE_OBSERVATION_METRICS:
        assert metric_unit(name) in ("count", "ms", "ratio")


def test_suggest_finds_close_names() -> None:
    assert suggest("oWating", QUEUE_OBSERVATION_METRICS) == "oWaiting"
    assert suggest("toffered", CONVERSATION_AGGREGATE_METRICS) is not None
    assert suggest("NOFFERED", CONVERSATION_AGGREGATE_METRICS) == "nOffered"
    assert suggest("queueid", CONVERSATION_GROUP_BY_DIMENSIONS) == "queueId"
    assert suggest("zzzzzzzz", CONVERSATION_AGGREGATE_METRICS) is None


def test_every_public_name_is_exported() -> None:
    public = {n for n in vars(metrics) if (not n.startswith("_") and n.isupper()) or n in
              ("Alias", "metric_unit", "suggest")}  # fmt: skip
    assert public <= set(metrics.__all__)
    assert all(hasattr(metrics, name) for name in metrics.__all__)
