"""Which records a subscription asked for: its metrics and media types, per topic (pure).

A notification body carries every metric Genesys has for the group, but a subscription names
the metrics (and media types) its users care about. The producer keeps a record when:

- no subscription of its topic named metrics (then everything is kept), or its metric was
  named (friendly names count as their real metric);
- it is a state (presence, routing status, queue membership): states are not metrics;
- it is a derived KPI and one of its inputs was named;
- and its media type is one the subscription wants (records without a media type, such as the
  agent-state group of a queue, always pass).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.core.contract.records import MetricRecord
from pipeline.core.subscription.planner import PlannedTopic
from pipeline.core.subscription.spec import SubscriptionSpec

__all__ = ["KPI_INPUTS", "RecordFilter", "record_filter"]

KPI_INPUTS: Mapping[str, frozenset[str]] = {
    "serviceLevelPercent": frozenset({"oServiceLevel"}),
    "averageSpeedOfAnswerMs": frozenset({"tAnswered"}),
    "averageHandleTimeMs": frozenset({"tHandle"}),
    "abandonRatePercent": frozenset({"tAbandon", "nOffered"}),
}


@dataclass(frozen=True, slots=True)
class _Wanted:
    metrics: frozenset[str] | None  # None: every metric
    media: frozenset[str] | None  # None: every media type


class RecordFilter:
    """Decides per record; topics not in the plan pass untouched."""

    def __init__(self, wanted: Mapping[str, _Wanted]) -> None:
        self._wanted = wanted

    def keep(self, record: MetricRecord) -> bool:
        """True when some subscription of the record's topic asked for it."""
        wanted = self._wanted.get(record.source_topic)
        if wanted is None:
            return True
        media = record.media_type
        if wanted.media is not None and media is not None and media not in wanted.media:
            return False
        if wanted.metrics is None or record.unit == "state":
            return True
        if record.derived:
            return bool(KPI_INPUTS.get(record.metric, frozenset()) & wanted.metrics)
        return record.metric in wanted.metrics


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return None if a is None or b is None else a | b


def record_filter(spec: SubscriptionSpec, topics: Iterable[PlannedTopic]) -> RecordFilter:
    """Build the filter for the planned topics of ``spec``."""
    by_name = {sub.name: sub for sub in spec.subscriptions}
    wanted: dict[str, _Wanted] = {}
    for topic in topics:
        for name in topic.subscriptions:
            sub = by_name[name]
            metrics = frozenset(sub.real_metrics) or None
            media = frozenset(spec.media_types_for(sub)) or None
            before = wanted.get(topic.topic)
            if before is not None:
                metrics = _union(before.metrics, metrics)
                media = _union(before.media, media)
            wanted[topic.topic] = _Wanted(metrics, media)
    return RecordFilter(wanted)
