"""The metric catalogue against the installed SDK's enums (docs/genesys-api.md §7.6).

``pipeline/core/genesys/metrics.py`` copies Genesys' vocabulary by hand. Each test here reads the
matching enum out of the installed ``PureCloudPlatformClientV2`` models and compares: when a new
SDK version adds or drops a name, the failure says which, so the catalogue (and §7.6) can follow.

The SDK keeps each enum as a local ``allowed_values`` list inside a property setter, not as data,
so :func:`sdk_enum` reads it from the model's source with :mod:`ast`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
from collections.abc import Iterable

from PureCloudPlatformClientV2.models.statistical_summary import StatisticalSummary

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    CONVERSATION_GROUP_BY_DIMENSIONS,
    MEDIA_TYPES,
    QUEUE_ACTIVITY_METRICS,
    QUEUE_OBSERVATION_METRICS,
    ROUTING_STATUSES,
    STAT_KEYS,
    USER_AGGREGATE_DIMENSIONS,
    USER_AGGREGATE_METRICS,
)

SDK_VERSION = importlib.metadata.version("PureCloudPlatformClientV2")


def sdk_enum(module: str, attribute: str) -> frozenset[str]:
    """The ``allowed_values`` of one model attribute's setter.

    Args:
        module: the model module under ``PureCloudPlatformClientV2.models``.
        attribute: the snake_case attribute whose setter holds the enum.

    Raises:
        LookupError: the setter has no ``allowed_values`` list (the model changed shape).
    """
    source = inspect.getsource(
        importlib.import_module(f"PureCloudPlatformClientV2.models.{module}")
    )
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef) or node.name != attribute:
            continue
        if not any(
            isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list
        ):
            continue
        for statement in ast.walk(node):
            if (
                isinstance(statement, ast.Assign)
                and isinstance(statement.targets[0], ast.Name)
                and statement.targets[0].id == "allowed_values"
            ):
                return frozenset(ast.literal_eval(statement.value))
    raise LookupError(f"{module}.{attribute}: no allowed_values in its setter")


def difference(what: str, catalogue: Iterable[str], sdk: Iterable[str]) -> str:
    """A one-line report of the names the SDK adds to and drops from the catalogue ('' if none)."""
    ours, theirs = set(catalogue), set(sdk)
    added, dropped = sorted(theirs - ours), sorted(ours - theirs)
    if not added and not dropped:
        return ""
    report = f"{what}: SDK {SDK_VERSION} adds {added or 'nothing'}, drops {dropped or 'nothing'}"
    print(report)  # shown by pytest with the failure; copy the names into metrics.py and §7.6
    return report


def test_sdk_enum_reads_a_setters_allowed_values() -> None:
    assert sdk_enum("user_aggregation_view", "target") == {
        "tAgentRoutingStatus",
        "tOrganizationPresence",
        "tSystemPresence",
    }


def test_conversation_aggregate_metrics_match_the_sdk() -> None:
    sdk = sdk_enum("conversation_aggregation_view", "target")
    assert not difference("conversation aggregate metrics", CONVERSATION_AGGREGATE_METRICS, sdk)
    assert {"nAgentDeclined", "nAlertExpired"} <= CONVERSATION_AGGREGATE_METRICS


def test_conversation_aggregate_sort_metrics_are_catalogued() -> None:
    # topN/bottomN sort by a subset (no oServiceLevel, tWait, ...); a name outside the catalogue
    # would be a new metric.
    sdk = sdk_enum("conversation_aggregation_sort", "name")
    assert not difference("sortable metrics", CONVERSATION_AGGREGATE_METRICS & sdk, sdk)


def test_user_aggregate_metrics_and_dimension_match_the_sdk() -> None:
    assert not difference(
        "user aggregate metrics",
        USER_AGGREGATE_METRICS,
        sdk_enum("user_aggregation_view", "target"),
    )
    assert not difference(
        "user aggregate dimensions",
        USER_AGGREGATE_DIMENSIONS,
        sdk_enum("user_aggregate_query_predicate", "dimension"),
    )


def test_queue_observation_metrics_match_the_sdk_activity_enums() -> None:
    # QueueObservationQuery.metrics has no enum in the Python SDK; its two activity models name
    # the same 11 (conversation activity: oWaiting …; routing activity: oOnQueueUsers …), §7.1.
    sdk = sdk_enum("conversation_activity_query_metric", "metric") | sdk_enum(
        "routing_activity_query_metric", "metric"
    )
    assert not difference("queue observation metrics", QUEUE_OBSERVATION_METRICS, sdk)


def test_queue_activity_topic_metrics_match_the_sdk() -> None:
    sdk = sdk_enum("v2_queue_observation_metric_count_data", "metric")
    assert not difference("queue activity topic metrics", QUEUE_ACTIVITY_METRICS, sdk)


def test_group_by_dimensions_match_the_sdk_predicate_enum() -> None:
    # The predicate dimensions are the groupBy list plus canonicalExternalContactId (§7.2).
    sdk = sdk_enum("conversation_aggregate_query_predicate", "dimension")
    assert "canonicalExternalContactId" in sdk
    sdk -= {"canonicalExternalContactId"}
    assert not difference("conversation groupBy dimensions", CONVERSATION_GROUP_BY_DIMENSIONS, sdk)


def test_media_types_and_routing_statuses_match_the_sdk() -> None:
    assert not difference("media types", MEDIA_TYPES, sdk_enum("analytics_session", "media_type"))
    statuses = sdk_enum("user_routing_status_routing_status", "status")
    assert not difference("routing statuses", ROUTING_STATUSES, statuses)


def test_stat_keys_are_the_statistical_summary_fields_in_order() -> None:
    sdk = tuple(StatisticalSummary().attribute_map.values())
    assert not difference("StatisticalSummary keys", STAT_KEYS, sdk)
    assert sdk == STAT_KEYS


def test_difference_names_what_was_added_and_dropped() -> None:
    report = difference("metrics", {"nOffered", "nGone"}, {"nOffered", "nNew"})
    assert report.endswith("adds ['nNew'], drops ['nGone']")
    assert difference("metrics", {"a"}, {"a"}) == ""
