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

import asyncio
import io
import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

import fastavro
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, UnknownType

from pipeline.core.contract.decode import BODY_ERRORS, compile_decoder
from pipeline.core.contract.wire import MAGIC_BYTE, split_confluent
from pipeline.core.http_policy import is_retriable
from pipeline.errors import DecodeError, RegistryUnavailableError, SchemaError
from pipeline.kafka.connection import captured_logs, refusal_reason, refused_error
from pipeline.kafka.schemas import load_schema
from pipeline.kafka.security import aiokafka_options
from pipeline.settings import KafkaSettings

__all__ = ["DEFAULT_REGISTRY_TIMEOUT_S", "AvroDecoder", "KafkaSource", "SchemaLookup"]

log = logging.getLogger(__name__)

DEFAULT_REGISTRY_TIMEOUT_S: Final = 10.0
"""The longest one schema registry request may take, unless configured."""
COMMIT_TIMEOUT_S: Final = 10.0
"""The longest an offset commit may take before it is given up (and tried again later)."""


class SchemaLookup(Protocol):
    """What :class:`AvroDecoder` needs of a registry client (``SchemaRegistryClient`` fits)."""

    def get_schema(self, schema_id: int) -> Schema:
        """The schema registered under ``schema_id``; raises ``SchemaRegistryError``."""
        ...

    def close(self) -> None:
        """Release the client."""
        ...


# What fastavro raises for a body that does not match its schema. Feeding it truncated and
# random bytes gives EOFError, UnicodeDecodeError (a ValueError) and IndexError (a union
# index out of range); the others come from corrupt enum indexes, lengths and varints.
_BAD_BODY: Final = (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError,
                    StopIteration)  # fmt: skip
_SCHEMA_ID: Final = struct.Struct(">I").unpack_from  # the id after the magic byte


class AvroDecoder:
    """Confluent-framed Avro → dict in this build's reader schema.

    Every problem with a value raises :class:`~pipeline.errors.DecodeError` (one type, with
    the bytes, where they were read and a readable reason), so a worker handles a bad value
    in one place. Writer schemas are fetched once per id and cached.

    Each writer schema is compiled with this build's reader schema into a decoder of its own
    (:func:`~pipeline.core.contract.decode.compile_decoder`, about 5x faster than fastavro);
    a pair the compiler does not support is read by ``fastavro.schemaless_reader``, and so is
    a value the compiled decoder refuses, so the error (or fastavro's leniency) stays
    fastavro's.

    Only a value whose schema id is not cached yet asks the registry (:meth:`needs_registry`
    says which): a blocking HTTP call of at most ``timeout_s`` per attempt, which an asyncio
    caller runs in a thread (:class:`pipeline.kafka.worker.WorkerKafka` does). The client
    makes one attempt: waiting and retrying while the registry is down is the caller's
    decision, since only the caller can stop fetching meanwhile.

    Args:
        registry_url: the schema registry.
        reader: the schema name to read into (``metric``, ``audit`` ...).
        client_config: extra ``SchemaRegistryClient`` settings (auth); they override the
            timeout and retry defaults.
        lookup: answers schema ids in place of a client for ``registry_url`` (tests).
        timeout_s: the longest one registry request may take (connect, each read).
    """

    def __init__(
        self,
        registry_url: str,
        reader: str,
        client_config: Mapping[str, Any] | None = None,
        *,
        lookup: SchemaLookup | None = None,
        timeout_s: float = DEFAULT_REGISTRY_TIMEOUT_S,
    ) -> None:
        self._registry: SchemaLookup = lookup or SchemaRegistryClient(
            {
                "url": registry_url,
                "timeout": timeout_s,
                "max.retries": 0,
                **(client_config or {}),
            }
        )
        # Read timestamps as epoch milliseconds (ints), like the records the producer builds.
        self._reader_schema = load_schema(reader)
        self._reader = fastavro.parse_schema(_plain_longs(self._reader_schema))
        self.fields: tuple[str, ...] = tuple(f["name"] for f in self._reader_schema["fields"])
        """The reader schema's field names, in order (the order of :meth:`decode_values`)."""
        self._writers: dict[int, Any] = {}
        self._compiled: dict[int, Callable[[bytes, int], tuple[Any, ...]] | None] = {}

    def needs_registry(self, value: bytes | None) -> bool:
        """Whether decoding ``value`` asks the registry (a framed value of an uncached id)."""
        if not value or len(value) < 5 or value[0] != MAGIC_BYTE:
            return False  # not framed: a decode error, no lookup
        return _SCHEMA_ID(value, 1)[0] not in self._writers

    def decode_values(
        self,
        value: bytes | None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> tuple[Any, ...]:
        """Decode one value into the reader schema's field values (the fast path).

        Args:
            value: the Kafka record value (None for a tombstone).
            topic: where it was read, for the error (optional).
            partition: idem.
            offset: idem.

        Returns:
            The record's field values, in the order of :attr:`fields` (a record class's
            positional arguments).

        Raises:
            DecodeError: as :meth:`decode`.
            RegistryUnavailableError: as :meth:`decode`.
            SchemaError: as :meth:`decode`.
        """
        if value and len(value) > 5 and value[0] == MAGIC_BYTE:
            compiled = self._compiled.get(_SCHEMA_ID(value, 1)[0])
            if compiled is not None:
                try:
                    return compiled(value if type(value) is bytes else bytes(value), 5)
                except BODY_ERRORS:
                    pass  # fastavro says what is wrong (or reads what the compiler refuses)
        record = self._decode_fastavro(value, (topic, partition, offset))
        return tuple(record[name] for name in self.fields)

    def decode(
        self,
        value: bytes | None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Decode one value.

        Args:
            value: the Kafka record value (None for a tombstone).
            topic: where it was read, for the error (optional).
            partition: idem.
            offset: idem.

        Returns:
            The record's fields, in the reader schema's order.

        Raises:
            DecodeError: no value, not Confluent-framed, an unknown schema id, a writer schema
                that does not resolve to the reader schema, or a body that does not match.
            RegistryUnavailableError: the registry could not be asked (unreachable, timed out,
                5xx, 408, 429): not the value's fault, so not a DecodeError; ask again later.
            SchemaError: the registry refused the question (401, 403, another 4xx).
        """
        values = self.decode_values(value, topic=topic, partition=partition, offset=offset)
        return dict(zip(self.fields, values, strict=True))

    def _decode_fastavro(
        self, value: bytes | None, where: tuple[str | None, int | None, int | None]
    ) -> dict[str, Any]:
        """Decode one value with ``fastavro.schemaless_reader`` (see :meth:`decode`)."""
        if not value:
            raise DecodeError("no value (a tombstone or an empty record)", b"", *where)
        try:
            schema_id, body = split_confluent(value)
        except ValueError as exc:
            raise DecodeError(str(exc), value, *where) from exc
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writer(schema_id, value, where)
        buffer = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(buffer, writer, self._reader)
        except SchemaResolutionError as exc:
            reason = f"schema id {schema_id} does not resolve to this build's schema: {exc}"
            raise DecodeError(reason, value, *where) from exc
        except _BAD_BODY as exc:
            reason = f"Avro body does not match schema id {schema_id}: {_describe(exc)}"
            raise DecodeError(reason, value, *where) from exc
        left = len(body) - buffer.tell()
        if left:
            reason = f"{left} bytes left over after the record of schema id {schema_id}"
            raise DecodeError(reason, value, *where)
        if not isinstance(record, dict):
            reason = f"schema id {schema_id} does not describe a record"
            raise DecodeError(reason, value, *where)
        return record

    def _writer(
        self, schema_id: int, value: bytes, where: tuple[str | None, int | None, int | None]
    ) -> Any:
        """The parsed writer schema of ``schema_id``, fetched and cached."""
        try:
            schema = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            if status == 404:
                reason = f"schema id {schema_id} is not in the registry"
                raise DecodeError(reason, value, *where) from exc
            error = RegistryUnavailableError if is_retriable(status) else SchemaError
            raise error(
                f"the schema registry could not resolve schema id {schema_id}: "
                f"HTTP {status}, error code {exc.error_code}"
            ) from exc
        except Exception as exc:  # the client raises transport errors of several types
            raise RegistryUnavailableError(
                f"the schema registry could not be asked for schema id {schema_id}: "
                f"{type(exc).__name__}"
            ) from exc
        try:
            writer = fastavro.parse_schema(_plain_longs(orjson.loads(schema.schema_str or "")))
        except (orjson.JSONDecodeError, SchemaParseException, UnknownType, ValueError) as exc:
            reason = f"schema id {schema_id} is not a usable Avro schema: {_describe(exc)}"
            raise DecodeError(reason, value, *where) from exc
        self._writers[schema_id] = writer
        self._compiled[schema_id] = self._compile(schema_id, schema.schema_str or "")
        return writer

    def _compile(
        self, schema_id: int, schema_str: str
    ) -> Callable[[bytes, int], tuple[Any, ...]] | None:
        """The compiled decoder of ``schema_id`` into the reader schema; None: use fastavro."""
        try:
            return compile_decoder(orjson.loads(schema_str), self._reader_schema)
        except ValueError as exc:  # not supported, or does not resolve: fastavro says which
            log.info("schema id %d is read with fastavro: %s", schema_id, exc)
            return None

    def close(self) -> None:
        """Close the registry client."""
        self._registry.close()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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

    Fetching can be paused for named reasons (:meth:`pause`, :meth:`resume`): while any reason
    holds, every assigned partition is paused, including partitions assigned later by a
    rebalance, and :meth:`fetch` returns nothing. Keep calling :meth:`fetch` meanwhile: it
    keeps the member's poll interval alive, while aiokafka's background task heartbeats, so the
    group keeps the member and its partitions.

    Args:
        kafka: connection settings.
        topics: the topics to read.
        group_id: the consumer group (members of one group share the partitions).
        session_timeout_ms: group session timeout (real Kafka needs ≥ 6000; the local broker
            joins after half of it, so tests use 2000).
        commit_timeout_s: the longest a commit may take before it is put off.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        session_timeout_ms: int = 10_000,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
    ) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 4),
            **aiokafka_options(kafka),
        )
        self._bootstrap, self._tls = kafka.bootstrap_servers, kafka.uses_ssl
        self._paused: set[str] = set()
        self._commit_timeout_s = commit_timeout_s
        self.commit_failures = 0
        """Commits that failed or timed out (the offsets are committed with the next one)."""

    async def start(self) -> None:
        """Connect and join the group.

        Raises:
            ConfigError: Kafka refused the TLS handshake or the SASL authentication (one
                line with the reason; the consumer is closed again).
            aiokafka.errors.KafkaConnectionError: no broker could be reached.
        """
        with captured_logs("aiokafka") as messages:
            try:
                await self._consumer.start()
            except KafkaConnectionError:
                reason = refusal_reason(messages, tls=self._tls)
                if reason is None:
                    raise
                await self._consumer.stop()
                raise refused_error(self._bootstrap, reason) from None

    async def stop(self) -> None:
        """Leave the group (uncommitted work is re-read by whoever gets the partitions)."""
        await self._consumer.stop()

    @property
    def paused(self) -> frozenset[str]:
        """The reasons fetching is paused for (empty: fetching)."""
        return frozenset(self._paused)

    def pause(self, reason: str) -> None:
        """Stop fetching until :meth:`resume` lifts ``reason`` (and every other reason)."""
        if reason not in self._paused:
            log.info("pausing %s: %s", self._topics(), reason)
        self._paused.add(reason)
        self._consumer.pause(*self._consumer.assignment())

    def resume(self, reason: str) -> None:
        """Lift ``reason``; fetching resumes once no reason is left."""
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        log.info("%s no longer paused for %s", self._topics(), reason)
        if not self._paused:
            self._consumer.resume(*self._consumer.assignment())

    def rewind(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """Fetch ``records`` again: each partition goes back to its first one among them.

        Partitions no longer assigned are left alone (their new owner reads them from the
        last commit).
        """
        first: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            first[tp] = min(first.get(tp, record.offset), record.offset)
        assigned = self._consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    async def fetch(
        self, timeout_ms: int = 500, max_records: int = 10_000
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The next records of every assigned partition, in offset order per partition.

        While paused, waits ``timeout_ms`` and returns nothing.
        """
        if self._paused:
            self._consumer.pause(*self._consumer.assignment())  # also those assigned since
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        records = [record for records in batches.values() for record in records]
        if records and self._paused:  # fetched just before a pause: read them later
            self.rewind(records)
            return []
        return records

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit ``(topic, partition) → next offset to read`` for partitions still assigned.

        A commit that fails (broker unreachable, group rebalancing) or takes longer than
        ``commit_timeout_s`` is logged and counted, not raised: offsets only grow, so the
        next commit covers these too, and a crash meanwhile re-reads a little more.

        Returns:
            True when the offsets were committed (or there was nothing to commit).
        """
        assigned = self._consumer.assignment()
        todo = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "")
            for (topic, partition), offset in offsets.items()
            if TopicPartition(topic, partition) in assigned
        }
        if not todo:
            return True
        try:
            async with asyncio.timeout(self._commit_timeout_s):
                await self._consumer.commit(todo)
        except (KafkaError, TimeoutError) as exc:
            self.commit_failures += 1
            log.warning("commit of %s failed (%s); the next commit covers it", self._topics(),
                        _describe(exc))  # fmt: skip
            return False
        return True

    def assignment(self) -> set[tuple[str, int]]:
        """The partitions this member holds now."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def _topics(self) -> str:
        return ",".join(sorted(self._consumer.subscription()))
