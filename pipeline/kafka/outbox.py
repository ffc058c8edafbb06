"""Records → Kafka records: topic, key, Confluent-framed Avro value, CloudEvents headers.

Encoders are compiled once from the ``.avsc`` files (``core/wire.compile_encoder``) and the
wire header (magic byte + schema id) is computed once per topic, so the hot path is one encoder
call and one ``bytes`` concatenation per record.

Headers follow the CloudEvents Kafka protocol binding in binary mode: ``ce_specversion``,
``ce_id`` (the record's event id), ``ce_source``, ``ce_type`` (:data:`CE_TYPES`), ``ce_time``,
``ce_subject``, ``ce_dataschema`` (:func:`dataschema`) and ``content-type``. A tombstone of
the current-value table has no data, so it has no ``ce_dataschema`` and no ``content-type``.

Dead letters carry the project's ``pipeline.errors.*`` headers (stage, reason, the Genesys
topic), so DLQ tooling can read the reason without decoding the value. Kafka Connect's
``__connect.errors.*`` headers are added only where their meaning is Connect's: on a dead
letter of a *Kafka record* a worker could not decode, ``__connect.errors.topic`` /
``partition`` / ``offset`` name that record (Connect's ``DeadLetterQueueReporter``), never a
Genesys topic.

The producer and both workers build every record they write here (metrics, the table,
audit, dead letters, freshness reports), so the headers have one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pipeline.core.contract.records import AuditRecord, DeadLetterRecord, MetricRecord
from pipeline.core.contract.table import TableChange
from pipeline.core.contract.wire import compile_encoder, confluent_header
from pipeline.core.workers.latency import FreshnessReport
from pipeline.kafka.producer import OutRecord
from pipeline.kafka.schemas import CONTRACT, history_versions, load_schema, topic_names

__all__ = ["CE_TYPES", "DATASCHEMA_PREFIX", "KafkaOrigin", "Outbox", "dataschema"]

CE_TYPES: Final = {
    "metric": b"io.github.genesys_kafka_pipeline.metric.v1",
    "deleted": b"io.github.genesys_kafka_pipeline.current.deleted.v1",
    "audit": b"io.github.genesys_kafka_pipeline.audit.v1",
    "dead_letter": b"io.github.genesys_kafka_pipeline.deadletter.v1",
    "freshness": b"io.github.genesys_kafka_pipeline.freshness.v1",
}
"""``ce_type`` header per record type: every record this project writes is built here
(``deleted``: a tombstone of the current-value table)."""
DATASCHEMA_PREFIX: Final = "urn:genesys-kafka-pipeline:schema:"
"""``ce_dataschema`` is this, then ``<schema name>:v<N>`` (``schemas/history/<name>.vN.avsc``)."""
_CONTENT_TYPE = ("content-type", b"application/avro")
_SPEC = ("ce_specversion", b"1.0")
# Where a worker's dead letter of an undecodable Kafka value means what Connect's does: its
# converter failed on the value (Connect's Stage.VALUE_CONVERTER).
_CONNECT_STAGE = b"VALUE_CONVERTER"
_DECODE_ERROR = b"pipeline.errors.DecodeError"


@dataclass(frozen=True, slots=True)
class KafkaOrigin:
    """The Kafka record a dead letter stands for (a worker's undecodable value)."""

    topic: str
    partition: int
    offset: int


def dataschema(name: str) -> str:
    """The ``ce_dataschema`` of records written with schema ``name`` by this build.

    A URN, not a registry URL: ``urn:genesys-kafka-pipeline:schema:metric:v2`` names
    ``schemas/history/metric.v2.avsc``, the same in every environment, whatever id or subject
    version a registry gave it (the value's wire header holds the registry's id).
    """
    versions = history_versions(name)
    newest = versions[-1][0] if versions else 1
    return f"{DATASCHEMA_PREFIX}{name}:v{newest}"


_CE_TIMES: dict[int, bytes] = {}


def _ce_time(epoch_ms: int) -> bytes:
    """RFC 3339 of an epoch-ms instant; memoised (a frame's records share their time)."""
    text = _CE_TIMES.get(epoch_ms)
    if text is None:
        if len(_CE_TIMES) > 4096:
            _CE_TIMES.clear()
        moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
        _CE_TIMES[epoch_ms] = text
    return text


class Outbox:
    """Turns records into :class:`OutRecord` values for the contract's topics.

    Args:
        prefix: the topic prefix.
        schema_ids: topic → registered schema id, from ``require_contract``.
        instance: the producer or worker instance, for ``ce_source``.
    """

    def __init__(self, prefix: str, schema_ids: Mapping[str, int], instance: str) -> None:
        self.topics = topic_names(prefix)
        self._headers = {
            suffix: confluent_header(schema_ids[topic])
            for suffix, topic in self.topics.items()
            if topic in schema_ids
        }
        self._metric: Callable[[object], bytes] = compile_encoder(load_schema("metric"))
        self._audit: Callable[[object], bytes] = compile_encoder(load_schema("audit"))
        self._dead: Callable[[object], bytes] = compile_encoder(load_schema("dead_letter"))
        self._freshness: Callable[[object], bytes] = compile_encoder(load_schema("freshness"))
        self._source = ("ce_source", f"urn:genesys-kafka-pipeline:{instance}".encode())
        self._schema = {
            name: ("ce_dataschema", dataschema(name).encode()) for name in set(CONTRACT.values())
        }

    def _metric_headers(self, record: MetricRecord) -> list[tuple[str, bytes]]:
        return [
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["metric"]),
            ("ce_time", _ce_time(record.event_time)),
            ("ce_subject", record.source_topic.encode()),
            self._schema["metric"],
            _CONTENT_TYPE,
        ]

    def encode_metrics(self, records: Sequence[MetricRecord]) -> list[bytes]:
        """The Avro bodies of ``records`` (no wire header), in order.

        Raises:
            EncodeError: a value its Avro type cannot carry.
        """
        encode = self._metric
        return [encode(r) for r in records]

    def metric(self, record: MetricRecord, body: bytes | None = None) -> OutRecord:
        """The record for ``.metrics`` (key: the entity id).

        Args:
            record: the metric record.
            body: its Avro body when already encoded (:meth:`encode_metrics`).
        """
        value = self._headers["metrics"] + (self._metric(record) if body is None else body)
        headers = self._metric_headers(record)
        return OutRecord(self.topics["metrics"], record.entity_id.encode(), value, headers)

    def current(self, change: TableChange, body: bytes | None = None) -> OutRecord:
        """The record for the changelog table ``.current.v2`` (key: the row key).

        Args:
            change: an upsert (the record is the value) or a tombstone (no value).
            body: the upsert's Avro body when already encoded (:meth:`encode_metrics`).
        """
        topic, key, record = self.topics["current"], change.key.encode(), change.record
        if record is None:
            headers = [
                _SPEC,
                ("ce_id", change.tombstone_id.encode()),
                self._source,
                ("ce_type", CE_TYPES["deleted"]),
                ("ce_time", _ce_time(change.at)),
                ("ce_subject", change.source_topic.encode()),
            ]
            return OutRecord(topic, key, None, headers)
        value = self._headers["current"] + (self._metric(record) if body is None else body)
        return OutRecord(topic, key, value, self._metric_headers(record))

    def metric_records(
        self,
        records: Sequence[MetricRecord],
        bodies: Sequence[bytes],
        changes: Sequence[TableChange],
    ) -> list[OutRecord]:
        """``.metrics`` records of ``records``, then the table's ``changes``; encoded once.

        Args:
            records: the metric records.
            bodies: their Avro bodies (:meth:`encode_metrics`), in the same order.
            changes: the table changes of these records (``CurrentTable.apply``).
        """
        out = [self.metric(r, b) for r, b in zip(records, bodies, strict=True)]
        encoded = {id(r): b for r, b in zip(records, bodies, strict=True)}
        out += [
            self.current(c, None if c.record is None else encoded.get(id(c.record)))
            for c in changes
        ]
        return out

    def audit(self, record: AuditRecord) -> OutRecord:
        """The record for ``.audit`` (key: the producer instance)."""
        headers = (
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["audit"]),
            ("ce_time", _ce_time(record.at)),
            ("ce_subject", record.kind.encode()),
            self._schema["audit"],
            _CONTENT_TYPE,
        )
        value = self._headers["audit"] + self._audit(record)
        return OutRecord(self.topics["audit"], record.producer_instance.encode(), value, headers)

    def dead_letter(self, record: DeadLetterRecord, origin: KafkaOrigin | None = None) -> OutRecord:
        """The record for ``.dlq`` (key: the Genesys topic, or none).

        Args:
            record: the dead letter.
            origin: the Kafka record it stands for, when a worker could not decode one.
        """
        source = (record.source_topic or "").encode()
        headers = [
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["dead_letter"]),
            ("ce_time", _ce_time(record.at)),
            ("ce_subject", source),
            self._schema["dead_letter"],
            _CONTENT_TYPE,
            ("pipeline.errors.stage", record.stage.encode()),
            ("pipeline.errors.reason", record.reason.encode()),
        ]
        if record.source_topic:
            headers.append(("pipeline.errors.genesys.topic", source))
        if origin is not None:
            headers += [
                ("__connect.errors.topic", origin.topic.encode()),
                ("__connect.errors.partition", str(origin.partition).encode()),
                ("__connect.errors.offset", str(origin.offset).encode()),
                ("__connect.errors.stage", _CONNECT_STAGE),
                ("__connect.errors.exception.class.name", _DECODE_ERROR),
                ("__connect.errors.exception.message", record.reason.encode()),
            ]
        value = self._headers["dlq"] + self._dead(record)
        return OutRecord(self.topics["dlq"], source or None, value, headers)

    def freshness(self, report: FreshnessReport) -> OutRecord:
        """The record for ``.freshness`` (key: ``stage|family|entity_type``)."""
        key = f"{report.stage}|{report.family}|{report.entity_type}".encode()
        headers = (
            _SPEC,
            ("ce_id", report.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["freshness"]),
            ("ce_time", _ce_time(report.window_end)),
            ("ce_subject", key),
            self._schema["freshness"],
            _CONTENT_TYPE,
        )
        value = self._headers["freshness"] + self._freshness(report)
        return OutRecord(self.topics["freshness"], key, value, headers)
