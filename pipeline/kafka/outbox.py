"""Records → Kafka records: topic, key, Confluent-framed Avro value, CloudEvents headers.

Encoders are compiled once from the ``.avsc`` files (``core/wire.compile_encoder``) and the
wire header (magic byte + schema id) is computed once per topic, so the hot path is one encoder
call and one ``bytes`` concatenation per record.

Headers follow the CloudEvents Kafka protocol binding in binary mode: ``ce_specversion``,
``ce_id`` (the record's event id), ``ce_source``, ``ce_type``, ``ce_time``, ``ce_subject`` and
``content-type``. Dead letters also carry Kafka Connect-style ``__connect.errors.*`` headers so
existing DLQ tooling can read the reason without decoding the value.

The producer and both workers build every record they write here (metrics, audit, dead
letters, freshness reports), so the headers have one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pipeline.core.contract.identity import current_key
from pipeline.core.contract.records import AuditRecord, DeadLetterRecord, MetricRecord
from pipeline.core.contract.wire import compile_encoder, confluent_header
from pipeline.core.workers.latency import FreshnessReport
from pipeline.kafka.producer import OutRecord
from pipeline.kafka.schemas import load_schema, topic_names

__all__ = ["CE_TYPES", "Outbox"]

CE_TYPES = {
    "metric": b"io.github.genesys_kafka_pipeline.metric.v1",
    "audit": b"io.github.genesys_kafka_pipeline.audit.v1",
    "dead_letter": b"io.github.genesys_kafka_pipeline.deadletter.v1",
    "freshness": b"io.github.genesys_kafka_pipeline.freshness.v1",
}
"""``ce_type`` header per record type: every record this project writes is built here."""
_CONTENT_TYPE = ("content-type", b"application/avro")
_SPEC = ("ce_specversion", b"1.0")


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
        self._same_metric_id = self._headers.get("metrics") == self._headers.get("current")
        """``.metrics`` and ``.current`` share a schema id: one framed value for both copies."""
        self._metric: Callable[[object], bytes] = compile_encoder(load_schema("metric"))
        self._audit: Callable[[object], bytes] = compile_encoder(load_schema("audit"))
        self._dead: Callable[[object], bytes] = compile_encoder(load_schema("dead_letter"))
        self._freshness: Callable[[object], bytes] = compile_encoder(load_schema("freshness"))
        self._source = ("ce_source", f"urn:genesys-kafka-pipeline:{instance}".encode())

    def metric(self, record: MetricRecord) -> tuple[OutRecord, OutRecord]:
        """The record for ``.metrics`` (key: entity id) and for the compacted ``.current``
        (key: entity|metric|qualifier|media type)."""
        body = self._metric(record)
        headers = [
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["metric"]),
            ("ce_time", _ce_time(record.event_time)),
            ("ce_subject", record.source_topic.encode()),
            _CONTENT_TYPE,
        ]  # one list for both copies: librdkafka copies headers on produce
        value = self._headers["metrics"] + body
        current = value if self._same_metric_id else self._headers["current"] + body
        return (
            OutRecord(self.topics["metrics"], record.entity_id.encode(), value, headers),
            OutRecord(self.topics["current"], current_key(record).encode(), current, headers),
        )

    def audit(self, record: AuditRecord) -> OutRecord:
        """The record for ``.audit`` (key: the producer instance)."""
        headers = (
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["audit"]),
            ("ce_time", _ce_time(record.at)),
            ("ce_subject", record.kind.encode()),
            _CONTENT_TYPE,
        )
        value = self._headers["audit"] + self._audit(record)
        return OutRecord(self.topics["audit"], record.producer_instance.encode(), value, headers)

    def dead_letter(self, record: DeadLetterRecord) -> OutRecord:
        """The record for ``.dlq`` (key: the source topic, or none)."""
        source = (record.source_topic or "").encode()
        headers = (
            _SPEC,
            ("ce_id", record.event_id.encode()),
            self._source,
            ("ce_type", CE_TYPES["dead_letter"]),
            ("ce_time", _ce_time(record.at)),
            ("ce_subject", source),
            _CONTENT_TYPE,
            ("__connect.errors.topic", source),
            ("__connect.errors.stage", record.stage.encode()),
            ("__connect.errors.exception.message", record.reason.encode()),
        )
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
            _CONTENT_TYPE,
        )
        value = self._headers["freshness"] + self._freshness(report)
        return OutRecord(self.topics["freshness"], key, value, headers)
