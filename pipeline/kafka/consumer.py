"""Reading the contract's topics: an aiokafka consumer group with manual commits, and an Avro
decoder that resolves Confluent schema ids through the registry.

Workers commit offsets themselves, only once their side effects are done (a dashboard
acknowledged a batch, a report was produced), so a crash re-reads what was not finished:
at least once, with idempotent side effects.

:class:`AvroDecoder` reads any writer schema the registry knows (by the 4-byte id in the
value) into this build's reader schema — Avro schema resolution, so records written by an
older or newer producer decode as long as the schemas are compatible (the contract's rule).
Timestamps come back as epoch milliseconds, like the records the producer builds.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import fastavro
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from confluent_kafka.schema_registry import SchemaRegistryClient

from pipeline.core.contract.wire import split_confluent
from pipeline.errors import SchemaError
from pipeline.kafka.schemas import load_schema
from pipeline.settings import KafkaSettings

__all__ = ["AvroDecoder", "KafkaSource"]

log = logging.getLogger(__name__)


class AvroDecoder:
    """Confluent-framed Avro → dict in this build's reader schema.

    Args:
        registry_url: the schema registry.
        reader: the schema name to read into (``metric``, ``audit`` ...).
        client_config: extra ``SchemaRegistryClient`` settings (auth).
    """

    def __init__(
        self, registry_url: str, reader: str, client_config: Mapping[str, Any] | None = None
    ) -> None:
        self._registry = SchemaRegistryClient({"url": registry_url, **(client_config or {})})
        # Read timestamps as epoch milliseconds (ints), like the records the producer builds.
        self._reader = fastavro.parse_schema(_plain_longs(load_schema(reader)))
        self._writers: dict[int, Any] = {}

    def decode(self, value: bytes) -> dict[str, Any]:
        """Decode one value.

        Raises:
            SchemaError: not Confluent-framed, or an id the registry does not know.
            ValueError: bytes that do not match the writer schema.
        """
        try:
            schema_id, body = split_confluent(value)
        except ValueError as exc:
            raise SchemaError(f"not a Confluent-framed Avro value: {exc}") from exc
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writers[schema_id] = self._fetch(schema_id)
        record = fastavro.schemaless_reader(io.BytesIO(body), writer, self._reader)
        if not isinstance(record, dict):
            raise SchemaError(f"schema id {schema_id} does not describe a record")
        return record

    def _fetch(self, schema_id: int) -> Any:
        try:
            schema = self._registry.get_schema(schema_id)
        except Exception as exc:  # the client raises several types
            raise SchemaError(f"schema id {schema_id} not found in the registry: {exc}") from exc
        if schema.schema_str is None:
            raise SchemaError(f"schema id {schema_id} has no schema text")
        return fastavro.parse_schema(_plain_longs(orjson.loads(schema.schema_str)))

    def close(self) -> None:
        """Close the registry client."""
        self._registry.close()


def _plain_longs(schema: Any) -> Any:
    """The schema with ``timestamp-millis`` longs read as plain longs (same binary form)."""
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return "long"
        return {k: _plain_longs(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_plain_longs(item) for item in schema]
    return schema


class KafkaSource:
    """A consumer-group member reading ``topics`` from the earliest uncommitted offset.

    Args:
        kafka: connection settings.
        topics: the topics to read.
        group_id: the consumer group (members of one group share the partitions).
        session_timeout_ms: group session timeout (real Kafka needs ≥ 6000; the local broker
            joins after half of it, so tests use 2000).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        session_timeout_ms: int = 10_000,
    ) -> None:
        sasl: dict[str, Any] = {}
        if kafka.sasl_mechanism:
            sasl = {
                "sasl_mechanism": kafka.sasl_mechanism,
                "sasl_plain_username": kafka.sasl_username,
                "sasl_plain_password": (
                    kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
                ),
            }
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=kafka.bootstrap_servers,
            security_protocol=kafka.security_protocol,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 4),
            **sasl,
        )

    async def start(self) -> None:
        """Join the group."""
        await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group (uncommitted work is re-read by whoever gets the partitions)."""
        await self._consumer.stop()

    async def fetch(
        self, timeout_ms: int = 500, max_records: int = 10_000
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The next records of every assigned partition, in offset order per partition."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in batches.values() for record in records]

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``(topic, partition) → next offset to read`` for partitions still assigned."""
        assigned = self._consumer.assignment()
        todo = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "")
            for (topic, partition), offset in offsets.items()
            if TopicPartition(topic, partition) in assigned
        }
        if todo:
            await self._consumer.commit(todo)

    def assignment(self) -> set[tuple[str, int]]:
        """The partitions this member holds now."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
