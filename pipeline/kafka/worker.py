"""The Kafka side of a consumer worker, in one place for the freshness and dashboard workers.

A worker reads ``<prefix>.metrics`` in a consumer group shared with its peers, reads the whole
``<prefix>.audit`` in a group of its own (the freshness rules need every producer's lifecycle,
:mod:`pipeline.core.workers.freshness`), decodes both with :class:`AvroDecoder`, and writes
side outputs (reports, audit, dead letters) built by :class:`Outbox` through one
:class:`KafkaPublisher`. :class:`WorkerKafka` opens all of that in order, closes it in reverse,
and turns consumed values into records, raising :class:`~pipeline.errors.DecodeError` for any
value that cannot be decoded.

Start-up order: check the registry holds the schemas the worker writes (``require_contract``),
create the topics it owns, start the producer, join both groups. Each step shows in
:meth:`WorkerKafka.readiness` until it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiokafka.structs import ConsumerRecord

from pipeline.core.contract.records import AuditRecord, MetricRecord
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.consumer import AvroDecoder, KafkaSource
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.registry import require_contract
from pipeline.kafka.schemas import topic_names
from pipeline.settings import KafkaSettings, RegistrySettings

__all__ = ["WorkerKafka", "audit_group_id"]


def audit_group_id(group_id: str, instance: str) -> str:
    """The group in which ``instance`` reads the whole audit topic: ``<group>-audit-<instance>``.

    One member per group, so it gets every partition; offsets there are never committed, so a
    restart reads the audit history again.
    """
    return f"{group_id}-audit-{instance}"


class WorkerKafka:
    """Consumers, decoders and the side-output producer of one worker instance.

    Use it as ``async with WorkerKafka(...) as kafka:`` (or :meth:`start` / :meth:`aclose`),
    built inside the running event loop (aiokafka's consumers want one).

    Args:
        kafka: connection settings.
        registry: the schema registry.
        prefix: the contract's topic prefix.
        instance: this worker (``ce_source`` of what it writes; its audit group).
        group_id: the consumer group on ``<prefix>.metrics``.
        session_timeout_ms: group session timeout of both consumers.
        writes: topic suffixes the worker writes; their schemas must be registered.
        create: topics to create when missing (the ones this worker owns).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        registry: RegistrySettings,
        *,
        prefix: str,
        instance: str,
        group_id: str,
        session_timeout_ms: int,
        writes: Sequence[str],
        create: Sequence[TopicSpec] = (),
    ) -> None:
        self._kafka, self._registry = kafka, registry
        self._prefix, self._instance, self._writes, self._create = prefix, instance, writes, create
        topics = topic_names(prefix)
        self.metrics = KafkaSource(kafka, [topics["metrics"]], group_id, session_timeout_ms)
        """The metrics consumer (shares partitions with the group's other members)."""
        self.audit = KafkaSource(
            kafka, [topics["audit"]], audit_group_id(group_id, instance), session_timeout_ms
        )
        """The audit consumer (reads every partition; never commits)."""
        self.publisher = KafkaPublisher(kafka.producer_config())
        """The producer of the worker's side outputs."""
        url, client_config = registry.url, registry.client_config()
        self._metric_decoder = AvroDecoder(url, "metric", client_config)
        self._audit_decoder = AvroDecoder(url, "audit", client_config)
        self._outbox: Outbox | None = None
        self._waiting: str | None = "schema contract not checked yet"

    @property
    def outbox(self) -> Outbox:
        """Builds the records the worker writes (available once started).

        Raises:
            RuntimeError: :meth:`start` has not checked the contract yet.
        """
        if self._outbox is None:
            raise RuntimeError("the worker's Kafka side is not started")
        return self._outbox

    def readiness(self) -> list[str]:
        """What start-up still waits for (empty once both groups are joined)."""
        return [] if self._waiting is None else [self._waiting]

    async def start(self) -> None:
        """Check the contract, create the worker's topics, start the producer, join the groups.

        On failure, whatever was started is closed again before the error propagates.

        Raises:
            SchemaError: the registry does not hold this build's schemas for ``writes``.
            PublishError: a topic in ``create`` cannot be created.
        """
        try:
            ids = await asyncio.to_thread(
                require_contract,
                self._registry.url,
                self._prefix,
                client_config=self._registry.client_config(),
                suffixes=self._writes,
            )
            self._outbox = Outbox(self._prefix, ids, self._instance)
            if self._create:
                self._waiting = "topics not created yet"
                client = self._kafka.client_config()
                await asyncio.to_thread(ensure_topics, client, list(self._create))
            self._waiting = "consumers not started yet"
            await self.publisher.start()
            await self.metrics.start()
            await self.audit.start()
        except BaseException:
            await self.aclose()
            raise
        self._waiting = None

    async def aclose(self) -> int:
        """Leave both groups, flush the producer, close the decoders.

        Returns:
            Records the producer could not deliver before closing (it logs them too).
        """
        self._waiting = "stopped"
        for source in (self.metrics, self.audit):
            with contextlib.suppress(Exception):  # one that never started, a broker gone
                await source.stop()
        left = await self.publisher.aclose()
        self._metric_decoder.close()
        self._audit_decoder.close()
        return left

    async def __aenter__(self) -> WorkerKafka:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def read_metric(self, raw: ConsumerRecord[bytes, bytes]) -> MetricRecord:
        """The metric record in a consumed message.

        Raises:
            DecodeError: the value cannot be decoded (see :class:`AvroDecoder`).
            SchemaError: the registry could not be asked.
        """
        return MetricRecord(**self._decode(self._metric_decoder, raw))

    def read_audit(self, raw: ConsumerRecord[bytes, bytes]) -> AuditRecord:
        """The audit record in a consumed message.

        Raises:
            DecodeError: the value cannot be decoded (see :class:`AvroDecoder`).
            SchemaError: the registry could not be asked.
        """
        return AuditRecord(**self._decode(self._audit_decoder, raw))

    @staticmethod
    def _decode(decoder: AvroDecoder, raw: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
        return decoder.decode(
            raw.value, topic=raw.topic, partition=raw.partition, offset=raw.offset
        )
