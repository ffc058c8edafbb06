"""The records the pipeline writes to Kafka: frozen mirrors of ``schemas/*.avsc``.

Each dataclass has the fields of its Avro schema, with the same names in the same order
(``tests/unit/test_records.py`` checks this against the ``.avsc`` files). Timestamps are
``int`` epoch milliseconds, as Avro ``timestamp-millis`` carries them on the wire, and the
encoder in :mod:`pipeline.core.contract.wire` reads the attributes directly.

Event ids are deterministic: the hex of a 16-byte BLAKE2b digest over a canonical byte string
of the fields that identify the fact, so a record produced twice (retry, replay) keeps its id
and consumers can de-duplicate on it. The recipe for metric records lives in
:mod:`pipeline.core.contract.identity`; audit and dead-letter ids are built here.

Construction cost matters for metric records (one per metric datum, on the hot path): the
generated ``__init__`` of a frozen dataclass assigns each of the 32 fields through
``object.__setattr__``, measured at 2.6-4.5 µs per record on the 2-core dev machine, against
0.3 µs for plain slot stores. :func:`new_metric_record` therefore fills an unfrozen twin with
the same slot layout and then re-labels it as :class:`MetricRecord` (``__class__`` assignment
between classes with the same slots and base, allowed by the Python data model). The result is
a normal, frozen, equal-comparing, copyable :class:`MetricRecord`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.genesys.events import DeadLetter, Gap

__all__ = [
    "AUDIT_FIELDS",
    "DEAD_LETTER_FIELDS",
    "METRIC_FIELDS",
    "METRIC_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "AuditRecord",
    "DeadLetterRecord",
    "MetricRecord",
    "audit_record",
    "dead_letter_record",
    "digest_id",
    "gap_audit",
    "gap_details",
    "new_metric_record",
    "to_epoch_ms",
]

SCHEMA_VERSION: Final = 1
"""The ``schema_version`` audit, dead-letter and freshness records of this release carry."""
METRIC_SCHEMA_VERSION: Final = 2
"""The ``schema_version`` metric records carry: the number of ``schemas/history/metric.vN.avsc``
(2 added the ``count_negative`` … ``calculated_metric_value`` columns)."""

METRIC_FIELDS: Final = (
    "event_id", "source_topic", "entity_type", "entity_id", "metric", "qualifier",
    "media_type", "interval_start", "interval_end", "count", "sum", "min", "max", "ratio",
    "numerator", "denominator", "target", "count_negative", "count_positive", "current", "p95",
    "p99", "calculated_metric_value", "value", "unit", "derived", "event_time", "ingest_time",
    "backfill", "producer_instance", "correlation_id", "schema_version",
)  # fmt: skip
"""Field names of ``schemas/metric.avsc``, in order."""
AUDIT_FIELDS: Final = (
    "event_id", "kind", "at", "channel_id", "producer_instance", "gap_seconds", "topic_count",
    "details_json", "schema_version",
)  # fmt: skip
"""Field names of ``schemas/audit.avsc``, in order."""
DEAD_LETTER_FIELDS: Final = (
    "event_id", "raw", "source_topic", "reason", "stage", "at", "producer_instance",
    "schema_version",
)  # fmt: skip
"""Field names of ``schemas/dead_letter.avsc``, in order."""


def digest_id(canonical: bytes) -> str:
    """The event id of a canonical byte string: hex of BLAKE2b with a 16-byte digest.

    Args:
        canonical: the identifying fields, serialised unambiguously.

    Returns:
        32 lowercase hex characters.
    """
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def to_epoch_ms(seconds: float) -> int:
    """Epoch seconds (the unit of :mod:`pipeline.core.genesys.events`) → epoch milliseconds.

    Rounds to the nearest millisecond, so ``1.0005`` and ``1.0004999`` do not drift apart
    through float error.
    """
    return round(seconds * 1000)


class _MetricSlots:
    # The storage layout shared by MetricRecord and its unfrozen builder (see module doc).
    __slots__ = METRIC_FIELDS


@dataclass(frozen=True, slots=True)
class MetricRecord(_MetricSlots):
    """One metric datum, as written to ``<prefix>.metrics`` (``schemas/metric.avsc``).

    Field meanings are the schema's ``doc`` strings. Times are epoch milliseconds. Build many
    of them with :func:`new_metric_record`, which is faster and gives an equal value.
    """

    event_id: str
    source_topic: str
    entity_type: str
    entity_id: str
    metric: str
    qualifier: str | None
    media_type: str | None
    interval_start: int | None
    interval_end: int | None
    count: int | None
    sum: float | None
    min: float | None
    max: float | None
    ratio: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    count_negative: int | None
    count_positive: int | None
    current: float | None
    p95: float | None
    p99: float | None
    calculated_metric_value: int | None
    value: float | None
    unit: str
    derived: bool
    event_time: int
    ingest_time: int
    backfill: bool
    producer_instance: str
    correlation_id: str | None = None
    schema_version: int = METRIC_SCHEMA_VERSION


class _MetricBuilder(_MetricSlots):
    # Unfrozen twin of MetricRecord: same slots, plain stores, then the instance re-labels
    # itself as a MetricRecord (see module docstring). Keep the parameter order equal to
    # METRIC_FIELDS (test_records checks it).
    __slots__ = ()

    def __init__(
        self, event_id: str, source_topic: str, entity_type: str, entity_id: str, metric: str,
        qualifier: str | None, media_type: str | None, interval_start: int | None,
        interval_end: int | None, count: int | None, sum: float | None, min: float | None,
        max: float | None, ratio: float | None, numerator: float | None,
        denominator: float | None, target: float | None, count_negative: int | None,
        count_positive: int | None, current: float | None, p95: float | None,
        p99: float | None, calculated_metric_value: int | None, value: float | None, unit: str,
        derived: bool, event_time: int, ingest_time: int, backfill: bool,
        producer_instance: str, correlation_id: str | None, schema_version: int,
    ) -> None:  # fmt: skip
        self.event_id = event_id
        self.source_topic = source_topic
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.metric = metric
        self.qualifier = qualifier
        self.media_type = media_type
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.ratio = ratio
        self.numerator = numerator
        self.denominator = denominator
        self.target = target
        self.count_negative = count_negative
        self.count_positive = count_positive
        self.current = current
        self.p95 = p95
        self.p99 = p99
        self.calculated_metric_value = calculated_metric_value
        self.value = value
        self.unit = unit
        self.derived = derived
        self.event_time = event_time
        self.ingest_time = ingest_time
        self.backfill = backfill
        self.producer_instance = producer_instance
        self.correlation_id = correlation_id
        self.schema_version = schema_version
        self.__class__ = MetricRecord  # type: ignore[assignment]  # same layout, frozen from now


new_metric_record: Final = cast("Callable[..., MetricRecord]", _MetricBuilder)
"""Build a :class:`MetricRecord` from all 32 field values, positionally, fast.

Equal to ``MetricRecord(*fields)`` (frozen, hashable, same type) at a fraction of the cost;
see the module docstring for why. Takes one value per name of :data:`METRIC_FIELDS`, in that
order, and raises ``TypeError`` for any other number of values.
"""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A lifecycle fact, as written to ``<prefix>.audit`` (``schemas/audit.avsc``).

    ``at`` is epoch milliseconds; ``details_json`` a JSON object with sorted keys.
    """

    event_id: str
    kind: str
    at: int
    channel_id: str | None
    producer_instance: str
    gap_seconds: float | None = None
    topic_count: int | None = None
    details_json: str = "{}"
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """Something not understood or not delivered, as written to ``<prefix>.dlq``.

    Mirrors ``schemas/dead_letter.avsc``; ``raw`` holds the original bytes unchanged and
    ``at`` is epoch milliseconds.
    """

    event_id: str
    raw: bytes
    source_topic: str | None
    reason: str
    stage: str
    at: int
    producer_instance: str
    schema_version: int = SCHEMA_VERSION


def _details_json(details: Any) -> str:
    # Sorted keys: the same facts always give the same text (and so the same event id).
    # default=str keeps an odd value (a datetime, an enum) instead of failing the audit.
    return orjson.dumps(dict(details), option=orjson.OPT_SORT_KEYS, default=str).decode()


def _audit_id(kind: str, at: int, channel_id: str | None, instance: str, details: str) -> str:
    return digest_id(orjson.dumps(["audit", kind, at, channel_id, instance, details]))


def audit_record(event: AuditEvent, instance: str) -> AuditRecord:
    """The audit record of a lifecycle fact.

    ``topic_count`` is lifted from ``details["topics"]`` when it is an int (the spelling of
    a topic count in every kind that has one, :mod:`pipeline.core.audit`); every detail also
    stays in ``details_json``. ``gap_seconds`` stays null: only :func:`gap_audit` fills it.

    Event id: BLAKE2b-128 of ``orjson.dumps(["audit", kind, at_ms, channel_id, instance,
    details_json])``.

    Args:
        event: the fact.
        instance: the producer instance (shard or worker) writing it.

    Returns:
        The record.
    """
    kind, at = str(event.kind), to_epoch_ms(event.at)
    details_json = _details_json(event.details)
    topics = event.details.get("topics")
    topic_count = topics if type(topics) is int else None
    return AuditRecord(
        _audit_id(kind, at, event.channel_id, instance, details_json),
        kind,
        at,
        event.channel_id,
        instance,
        None,
        topic_count,
        details_json,
    )


def gap_details(gap: Gap) -> dict[str, Any]:
    """The ``details_json`` facts of a gap's ``gap.closed`` record (declared in
    :data:`pipeline.core.audit.AUDIT_KINDS`): ``started_at_ms``, ``ended_at_ms``, ``reason``."""
    started, ended = to_epoch_ms(gap.started_at), to_epoch_ms(gap.ended_at)
    return {"started_at_ms": started, "ended_at_ms": ended, "reason": gap.reason}


def gap_audit(gap: Gap, instance: str) -> AuditRecord:
    """The ``gap.closed`` audit record of a stream gap: the one published fact of a gap.

    The session emits a closed gap as the :class:`Gap` value only (it carries the interval and
    the topics, which the backfill needs too); this is the only ``gap.closed`` record.
    ``at`` is the end of the gap; ``gap_seconds`` and ``topic_count`` are columns, and
    ``details_json`` holds :func:`gap_details`.

    Event id: as for :func:`audit_record`, with ``at`` = ``ended_at_ms``.

    Args:
        gap: the closed gap.
        instance: the producer instance writing it.

    Returns:
        The record.
    """
    details = gap_details(gap)
    details_json = _details_json(details)
    ended, kind = details["ended_at_ms"], str(AuditKind.GAP_CLOSED)
    return AuditRecord(
        _audit_id(kind, ended, gap.channel_id, instance, details_json),
        kind,
        ended,
        gap.channel_id,
        instance,
        gap.seconds,
        len(gap.topics),
        details_json,
    )


def dead_letter_record(dl: DeadLetter, instance: str) -> DeadLetterRecord:
    """The dead-letter record of something that could not be understood or delivered.

    Event id: BLAKE2b-128 of ``orjson.dumps(["dlq", stage, source_topic, reason, at_ms,
    instance, len(raw)])`` followed by the raw bytes (the JSON array is self-delimiting, so
    the concatenation is unambiguous).

    Args:
        dl: the dead letter.
        instance: the producer instance writing it.

    Returns:
        The record, with ``raw`` unchanged.
    """
    at = to_epoch_ms(dl.at)
    head = orjson.dumps(["dlq", dl.stage, dl.topic, dl.reason, at, instance, len(dl.raw)])
    event_id = digest_id(head + dl.raw)
    return DeadLetterRecord(event_id, dl.raw, dl.topic, dl.reason, dl.stage, at, instance)
