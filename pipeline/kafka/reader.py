"""Reading one topic of a consumer worker: fetch, decode, and what becomes of each record.

:class:`TopicReader` couples a :class:`~pipeline.kafka.consumer.KafkaSource` with an
:class:`~pipeline.kafka.consumer.AvroDecoder` and the record type it builds.
:class:`pipeline.kafka.worker.WorkerKafka` holds one for ``<prefix>.metrics`` and one for
``<prefix>.audit``.

Theory of operation of :meth:`TopicReader.poll`
-----------------------------------------------
Every fetched record ends in exactly one of three ways:

- **decoded**: handed to the worker with its record;
- **dead-lettered**: a value that cannot be decoded (truncated, not Confluent-framed, a
  schema id the registry does not know (404), a writer schema that does not resolve to this
  build's) is handed to ``on_undecodable`` (the worker's dead letter, cut to fit one record,
  and a count) and to the worker as None: the worker moves past it (and commits past it);
- **not read yet**: when the registry cannot be asked for a new schema id (down, timed out,
  5xx: :class:`~pipeline.errors.SchemaError`), the value is nobody's fault, so it must
  neither go to the DLQ nor be committed. The consumer goes back to that record (and every
  later one of the fetch), fetching is paused, and the registry is asked again with backoff;
  when it answers, fetching resumes from that record. The worker keeps calling
  :meth:`TopicReader.poll` meanwhile, which keeps its group membership (aiokafka heartbeats in
  the background; the poll keeps the poll interval alive).

Registry requests happen only for schema ids not cached yet; they run in a thread (never on
the event loop, whose heartbeats and ops endpoints must go on), with a timeout per request
(``RegistrySettings.timeout_s``) and an overall deadline: a thread cannot be cancelled, so one
past the deadline is left to end by its own timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge

from pipeline.core.contract.records import AuditRecord, MetricRecord
from pipeline.core.http_policy import Backoff
from pipeline.errors import DecodeError, RegistryUnavailableError, SchemaError
from pipeline.kafka.consumer import AvroDecoder, KafkaSource

__all__ = ["REGISTRY_PAUSE", "Polled", "TopicReader"]

log = logging.getLogger(__name__)

R = TypeVar("R", MetricRecord, AuditRecord)

Polled = list[tuple[ConsumerRecord[bytes, bytes], R | None]]
"""What a poll returns: each record with its decoded value, or None when it was
dead-lettered (move past it)."""

REGISTRY_PAUSE: Final = "schema registry unavailable"
"""The reason a topic's fetching is paused while the registry cannot be asked."""


class TopicReader(Generic[R]):
    """One consumed topic: its consumer, decoder, record type and wait for the registry.

    Args:
        name: the topic's suffix (``metrics``, ``audit``), for logs and metrics.
        source: the topic's consumer.
        decoder: its decoder (owned by the caller, who closes it).
        build: the record type, called with the decoded field values positionally, in the
            reader schema's order (``new_metric_record`` for metrics).
        on_undecodable: awaited for each value that cannot be decoded (dead letter, count).
        retry: backoff while the registry cannot be asked.
        registry_deadline_s: the longest one registry request may keep a poll waiting.
        waiting: set to 1 while the topic waits for the registry, else 0.
        retries: counts registry requests that failed and will be made again.
    """

    def __init__(
        self,
        name: str,
        source: KafkaSource,
        decoder: AvroDecoder,
        build: Callable[..., R],
        *,
        on_undecodable: Callable[[DecodeError], Awaitable[None]],
        retry: Backoff,
        registry_deadline_s: float,
        waiting: Gauge,
        retries: Counter,
    ) -> None:
        self.name, self.source, self.decoder = name, source, decoder
        self._build: Callable[..., R] = build
        self._on_undecodable = on_undecodable
        self._retry, self._deadline_s = retry, registry_deadline_s
        self._waiting, self._retries = waiting, retries
        self._blocked: ConsumerRecord[bytes, bytes] | None = None  # waits for the registry
        self._attempt = 0
        self._retry_at = 0.0

    @property
    def is_waiting(self) -> bool:
        """Whether fetching is paused until the registry answers."""
        return self._blocked is not None

    async def poll(self, timeout_ms: int) -> Polled[R]:
        """Fetch and decode (see the module docstring for what becomes of each record).

        Args:
            timeout_ms: how long to wait for records.

        Returns:
            Each record fetched with its value, or None for one dead-lettered.
        """
        if self._blocked is not None and not await self._registry_back():
            await self.source.fetch(timeout_ms)  # paused: nothing comes; the group stays
            return []
        records = await self.source.fetch(timeout_ms)
        decode, needs_registry = self.decoder.decode_values, self.decoder.needs_registry
        build = self._build
        out: Polled[R] = []
        for index, raw in enumerate(records):
            try:
                if needs_registry(raw.value):
                    values = await self._decode(raw)
                else:
                    values = decode(raw.value, topic=raw.topic, partition=raw.partition,
                                    offset=raw.offset)  # fmt: skip
            except DecodeError as exc:
                await self._on_undecodable(exc)
                out.append((raw, None))
                continue
            except SchemaError as exc:
                self._wait_for_registry(records[index:], exc)
                break
            out.append((raw, build(*values)))
        return out

    async def _decode(self, raw: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
        """Decode a value that needs the registry: in a thread, within the deadline."""
        where: dict[str, Any] = {
            "topic": raw.topic, "partition": raw.partition, "offset": raw.offset,
        }  # fmt: skip
        try:
            async with asyncio.timeout(self._deadline_s):
                return await asyncio.to_thread(self.decoder.decode_values, raw.value, **where)
        except TimeoutError as exc:
            raise RegistryUnavailableError(
                f"the schema registry did not answer within {self._deadline_s:.0f} s"
            ) from exc

    def _wait_for_registry(
        self, unread: list[ConsumerRecord[bytes, bytes]], exc: SchemaError
    ) -> None:
        self.source.rewind(unread)
        self.source.pause(REGISTRY_PAUSE)
        self._blocked, self._attempt = unread[0], 0
        self._retry_at = time.monotonic() + self._retry.delay(0, None, random.random)
        self._waiting.set(1)
        log.warning("%s: fetching paused until the schema registry answers: %s", self.name, exc)

    async def _registry_back(self) -> bool:
        """Ask the registry again when it is time; True (and resumed) once it answered."""
        if self._blocked is None or time.monotonic() < self._retry_at:
            return False
        try:
            await self._decode(self._blocked)
        except DecodeError:
            pass  # the registry answered; the value is bad, and is dead-lettered when re-read
        except SchemaError as exc:
            self._attempt += 1
            wait = self._retry.delay(self._attempt, None, random.random)
            self._retry_at = time.monotonic() + wait
            self._retries.inc()
            log.info("%s: the schema registry still cannot be asked (%s); again in %.1f s",
                     self.name, exc, wait)  # fmt: skip
            return False
        self._blocked = None
        self.source.resume(REGISTRY_PAUSE)
        self._waiting.set(0)
        log.info("%s: the schema registry answers again; fetching resumed", self.name)
        return True
