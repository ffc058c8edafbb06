"""The dashboard worker's coalescing: the latest value per key, and batches of changed keys.

Pure: records in, batches out; no I/O, no clock.

:class:`LatestValues` keeps the newest record per ``current_key`` (by ``event_time``, then
``ingest_time``; an older record arriving late never overwrites) and a FIFO set of keys
changed since the last batch. :meth:`LatestValues.take_batch` hands out up to ``max_items`` of
them, and at most ``max_bytes`` of JSON (so the dashboard's request limit is met up front), so
a burst of 10,000 updates per second over 500 keys becomes at most 500 values per batch,
however often batches are taken. Every consumed offset is filed with an
:class:`~pipeline.core.workers.offsets.OffsetTracker`, which says what may be committed (see
the rule in :mod:`pipeline.core.workers.offsets`).

Batches should go out one at a time, in order: two batches in flight with the same key could
reach the dashboard in the wrong order. :meth:`LatestValues.abandoned` gives a batch up (its
keys are queued again with their newest values), for a shell that prefers a fresh batch
after a long outage over re-sending an old one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.core.contract.identity import current_key
from pipeline.core.contract.records import MetricRecord, digest_id, to_epoch_ms
from pipeline.core.workers.offsets import OffsetTracker, TopicPartition

__all__ = ["BODY_OVERHEAD_BYTES", "Batch", "BatchValue", "LatestValues", "is_newer"]

BODY_OVERHEAD_BYTES = 160
"""An upper bound on a batch body's bytes besides its values: the envelope's fields (ids and
times of up to 20 digits each) and brackets."""


def is_newer(record: MetricRecord, current: MetricRecord) -> bool:
    """Whether ``record`` replaces ``current`` as its key's latest value.

    Newer ``event_time`` wins, then newer ``ingest_time``; on a full tie a different datum
    (``event_id``) arriving later wins and the same datum is a duplicate.
    """
    new, old = (record.event_time, record.ingest_time), (current.event_time, current.ingest_time)
    return new > old or (new == old and record.event_id != current.event_id)


@dataclass(frozen=True, slots=True)
class BatchValue:
    """One key's value in a batch, with its staleness when the batch was taken."""

    key: str
    record: MetricRecord
    stale: bool = False

    def to_json(self) -> dict[str, Any]:
        """The value as the dashboard receives it (times in epoch ms)."""
        r = self.record
        return {
            "key": self.key, "entity_type": r.entity_type, "entity_id": r.entity_id,
            "metric": r.metric, "qualifier": r.qualifier, "media_type": r.media_type,
            "value": r.value, "unit": r.unit, "event_time": r.event_time,
            "interval_start": r.interval_start, "interval_end": r.interval_end,
            "stale": self.stale, "event_id": r.event_id, "ingest_time": r.ingest_time,
            "derived": r.derived, "backfill": r.backfill,
        }  # fmt: skip


def _idempotency_key(generation: str, batch_id: int, values: Iterable[BatchValue]) -> str:
    # The contents alone are not enough: fresh → stale → fresh of one value repeats a content,
    # and that third push is a new state, not a duplicate. The generation (one per worker
    # run) and the batch sequence make every batch's key new; a re-send of one batch reuses
    # its Batch, so its key. Sorted contents: the key does not depend on coalescing order.
    content = sorted((v.key, v.record.event_id, v.stale) for v in values)
    return digest_id(orjson.dumps(["dashboard-batch", generation, batch_id, content]))


@dataclass(frozen=True, slots=True)
class Batch:
    """Values to push together.

    Attributes:
        batch_id: local sequence number (for ``acknowledged``/``rejected``).
        values: one per key, oldest change first.
        idempotency_key: hex BLAKE2b-128 of the generation, the batch id and its sorted
            (key, event id, stale) triples. Re-sends of this batch (timeouts, 5xx) carry it
            unchanged, so the dashboard applies the batch once; any other batch — even with
            the same contents, even after a restart — has a new key, so a changed state is
            never taken for a duplicate.
    """

    batch_id: int
    values: tuple[BatchValue, ...]
    idempotency_key: str

    def body(self, now: float) -> dict[str, Any]:
        """The JSON-able payload (``generated_at`` in epoch ms, from ``now`` in seconds)."""
        return {
            "batch_id": self.batch_id,
            "idempotency_key": self.idempotency_key,
            "generated_at": to_epoch_ms(now),
            "values": [value.to_json() for value in self.values],
        }


class _Entry:
    __slots__ = ("record", "tp", "version")

    def __init__(self, record: MetricRecord, version: int, tp: TopicPartition) -> None:
        self.record, self.version, self.tp = record, version, tp


class LatestValues:
    """The latest value per key, batches of changed keys, and the offsets they settle.

    Args:
        generation: what makes this run's idempotency keys its own (the worker passes a
            fresh random token per start, so batch ids restarting at 1 never repeat a key).
    """

    def __init__(self, generation: str = "") -> None:
        self.generation = generation
        self.offsets = OffsetTracker()
        """The offset bookkeeping (:mod:`pipeline.core.workers.offsets`)."""
        self._values: dict[str, _Entry] = {}
        self._dirty: dict[str, None] = {}  # keys changed since their last batch, FIFO
        self._batches: dict[int, Batch] = {}
        self._versions = itertools.count(1)
        self._batch_ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def pending(self) -> int:
        """Keys waiting for the next batch."""
        return len(self._dirty)

    @property
    def in_flight(self) -> tuple[Batch, ...]:
        """Batches taken and not yet acknowledged, rejected or abandoned."""
        return tuple(self._batches.values())

    def value(self, key: str) -> MetricRecord | None:
        """The latest record of ``key``, or None."""
        entry = self._values.get(key)
        return None if entry is None else entry.record

    def offer(self, record: MetricRecord, topic: str, partition: int, offset: int) -> bool:
        """Take one consumed record.

        A re-delivered offset (not past the last one of its partition) is ignored.

        Returns:
            True when it became its key's latest value (and the key joins the next batch).
        """
        tp = (topic, partition)
        if not self.offsets.is_new(tp, offset):
            return False
        key = current_key(record)
        entry = self._values.get(key)
        if entry is not None and not is_newer(record, entry.record):
            self.offsets.received(tp, offset, key, entry.version)
            return False
        version = next(self._versions)
        self._values[key] = _Entry(record, version, tp)
        self._dirty[key] = None
        self.offsets.received(tp, offset, key, version)
        return True

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Take a consumed offset that carries nothing for the dashboard (filtered, DLQ'd)."""
        tp = (topic, partition)
        if self.offsets.is_new(tp, offset):
            self.offsets.received(tp, offset, None, 0)

    def touch(self, keys: Iterable[str]) -> int:
        """Queue known keys again without a new value (their staleness changed).

        Returns:
            How many keys were queued.
        """
        touched = 0
        for key in keys:
            if key in self._values:
                self._dirty[key] = None
                touched += 1
        return touched

    def take_batch(
        self,
        max_items: int,
        is_stale: Callable[[str], bool] | None = None,
        max_bytes: int | None = None,
    ) -> Batch | None:
        """The next batch: up to ``max_items`` keys changed since their last batch.

        Args:
            max_items: the most values in one batch (≥ 1).
            is_stale: whether a key's value is stale now (for example
                :meth:`~pipeline.core.workers.staleness.StalenessTracker.is_stale`);
                all fresh if None.
            max_bytes: the largest JSON body (:meth:`Batch.body` as compact JSON) to build,
                so a dashboard's request limit is met up front; a single value larger than
                this still goes out alone (the dashboard decides: a 413 sends it to the DLQ).
                None: no limit.

        Returns:
            The batch, or None when nothing changed.

        Raises:
            ValueError: ``max_items`` < 1.
        """
        if max_items < 1:
            raise ValueError("max_items must be ≥ 1")
        if not self._dirty:
            return None
        values: list[BatchValue] = []
        versions: dict[str, int] = {}
        size = BODY_OVERHEAD_BYTES
        for key in itertools.islice(self._dirty, max_items):
            entry = self._values[key]
            value = BatchValue(key, entry.record, bool(is_stale and is_stale(key)))
            if max_bytes is not None:
                size += len(orjson.dumps(value.to_json())) + 1  # the value and its comma
                if values and size > max_bytes:
                    break
            values.append(value)
            versions[key] = entry.version
        for key in versions:
            del self._dirty[key]
        batch_id = next(self._batch_ids)
        self.offsets.sent(batch_id, versions)
        batch = Batch(batch_id, tuple(values), _idempotency_key(self.generation, batch_id, values))
        self._batches[batch_id] = batch
        return batch

    def acknowledged(self, batch_id: int) -> bool:
        """The dashboard acknowledged the batch. Returns False for an unknown batch."""
        self._batches.pop(batch_id, None)
        return self.offsets.delivered(batch_id)

    def rejected(self, batch_id: int) -> bool:
        """The dashboard refused the batch for good (it goes to the DLQ): done, like an ack."""
        return self.acknowledged(batch_id)

    def abandoned(self, batch_id: int) -> bool:
        """Give a batch up: its keys join the next batch again, with their newest values."""
        batch = self._batches.pop(batch_id, None)
        if batch is None:
            return False
        self.touch(value.key for value in batch.values)
        return self.offsets.abandoned(batch_id)

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit (see :meth:`OffsetTracker.committable`)."""
        return self.offsets.committable()

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition taken away by a rebalance, and the keys last seen on it."""
        tp = (topic, partition)
        gone = [key for key, entry in self._values.items() if entry.tp == tp]
        for key in gone:
            del self._values[key]
            self._dirty.pop(key, None)
        self.offsets.revoke(tp)
