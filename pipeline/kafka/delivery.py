"""What one delivery is: the record to produce, the hooks that hear how it went, and the
librdkafka error codes that decide what happens to a record whose delivery failed.

:mod:`pipeline.kafka.producer` re-exports :class:`OutRecord` and :class:`PublishObserver`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from confluent_kafka import KafkaError

__all__ = [
    "PURGED_CODES",
    "REJECTED_CODES",
    "REPLACE_CODES",
    "Headers",
    "OutRecord",
    "PublishObserver",
]

Headers = Sequence[tuple[str, bytes]]

REJECTED_CODES: Final = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD}
)
"""Errors a record gets whatever the broker's state: retrying the same bytes cannot help."""
REPLACE_CODES: Final = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError._FENCED,
    }
)
"""Errors about the producer's identity (id, epoch, sequence): only a new producer heals them
(seen after long outages on brokers that handle the epoch bump of KIP-360 badly)."""


PURGED_CODES: Final = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
"""Reports of records purged from a replaced producer: they go to the new one."""


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record ready to produce: topic, key, Confluent-framed value (None: a tombstone),
    headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default=())


class PublishObserver:
    """Hooks for delivery events; the default does nothing (override what you need).

    Hooks run inside delivery callbacks or right after a ``poll()``: they must be quick, and
    one that raises is counted (:attr:`KafkaPublisher.callback_errors`) without disturbing
    delivery.
    """

    def on_delivered(self, count: int) -> None:
        """The broker acknowledged ``count`` more records (once per ``poll()``, not per record)."""

    def on_latency(self, seconds: float) -> None:
        """A sampled record was acknowledged ``seconds`` after its frame was received."""

    def on_failed(self, record: OutRecord, error: str, retrying: bool) -> None:
        """A delivery failed inside librdkafka; it is produced again (``retrying`` is True)."""

    def on_rejected(self, record: OutRecord, error: str) -> None:
        """The broker refused ``record`` for good; it is not produced again (dead-letter it)."""

    def on_producer_replaced(self, reason: str, resent: int) -> None:
        """A fatal error: the producer was replaced and ``resent`` records produced again."""

    def on_kafka_error(self, code: str, error: str, fatal: bool) -> None:
        """librdkafka reported a client-level error (``error_cb``): brokers down, fatal ..."""

    def on_callback_error(self, error: str) -> None:
        """A delivery callback raised (a bug); the publisher carried on."""
