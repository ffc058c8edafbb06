"""The dashboard worker's core: latest value per key, batches, safe offsets, push decisions.

Pure: records and answers in, batches and decisions out; no I/O, no clock.

Coalescing: :class:`LatestValues` keeps the newest record per ``current_key`` (by
``event_time``, then ``ingest_time``; an older record arriving late never overwrites) and a
FIFO set of keys changed since the last batch. :meth:`LatestValues.take_batch` hands out up to
``max_items`` of them, so a burst of 10,000 updates per second over 500 keys becomes at most
500 values per batch, however often batches are taken.

The offset-commit rule (theory of operation of :class:`OffsetTracker`)
----------------------------------------------------------------------
Every accepted value of a key gets a *version* from one counter shared by all keys (so a
version is never reused, even after a key is forgotten). Every consumed offset is filed with
the version the dashboard must hold before the offset is "done":

- a record that became its key's latest value needs its own version;
- a record older than (or a duplicate of) the key's latest value needs the latest version:
  the dashboard must hold the value that supersedes it;
- a record that is not for the dashboard (:meth:`LatestValues.skip`) needs nothing.

A batch carries one version per key. When it is acknowledged, or permanently rejected (it
goes to the DLQ, so it is done too), each of its keys' *delivered* version rises to at least
the batch's. An offset is done when its key's delivered version is ≥ the version it needs.
So a record superseded by a newer one, in the same or a later batch, is done only once the
batch holding the newer value is acknowledged; acknowledging an older batch after a newer one
never lowers anything. The committable offset of a partition is the first offset not done
(every offset below it is done; offsets the broker skipped, compaction or control records,
count as done), or one past the last received when all are done.

Batches should go out one at a time, in order: two batches in flight with the same key could
reach the dashboard in the wrong order. :meth:`LatestValues.abandoned` gives a batch up (its
keys are queued again with their newest values), for a shell that prefers a fresh batch
after a long outage over re-sending an old one.

Push decisions: :func:`classify_push` is the table from HTTP answer to action,
:class:`RetryPlan` turns it into a wait (``Retry-After`` or full-jitter backoff), and
:class:`CircuitBreaker` stops pushing while the dashboard is down. :func:`sign` and
:func:`verify` are the HMAC-SHA256 signature over the exact body bytes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pipeline.core.backoff import full_jitter
from pipeline.core.contract.mapping import current_key
from pipeline.core.contract.records import MetricRecord, digest_id, to_epoch_ms

__all__ = [
    "Batch",
    "BatchValue",
    "BreakerState",
    "CircuitBreaker",
    "LatestValues",
    "Offset",
    "OffsetTracker",
    "PushAction",
    "PushDecision",
    "RetryPlan",
    "TopicPartition",
    "classify_push",
    "is_newer",
    "sign",
    "verify",
]

TopicPartition = tuple[str, int]
"""A Kafka (topic, partition)."""


@dataclass(frozen=True, slots=True)
class Offset:
    """One consumed Kafka record's position."""

    topic: str
    partition: int
    offset: int


class OffsetTracker:
    """Which consumed offsets are done, by the version rule of the module docstring."""

    def __init__(self) -> None:
        # Per partition, offsets not yet done in arrival order: (offset, key, needed version).
        self._pending: dict[TopicPartition, deque[tuple[int, str, int]]] = {}
        self._next: dict[TopicPartition, int] = {}  # one past the highest offset received
        self._waiting: dict[str, list[tuple[TopicPartition, int, int]]] = {}  # same, per key
        self._delivered: dict[str, int] = {}  # key → highest version acknowledged or rejected
        self._batches: dict[int, dict[str, int]] = {}  # batch in flight → key → version

    def is_new(self, tp: TopicPartition, offset: int) -> bool:
        """Whether ``offset`` lies past everything received from ``tp`` (not a re-delivery)."""
        return offset >= self._next.get(tp, 0)

    def received(self, tp: TopicPartition, offset: int, key: str | None, version: int) -> None:
        """File a consumed offset.

        Args:
            tp: its topic and partition.
            offset: its offset; must be new (:meth:`is_new`).
            key: the key whose delivery it waits for; None for nothing.
            version: the version of ``key`` the dashboard must hold first (0: nothing).

        Raises:
            ValueError: the offset is not past the last one received from ``tp``.
        """
        if not self.is_new(tp, offset):
            raise ValueError(f"offset {offset} of {tp} is not new")
        self._next[tp] = offset + 1
        if key is None or self._delivered.get(key, 0) >= version:
            return
        self._pending.setdefault(tp, deque()).append((offset, key, version))
        self._waiting.setdefault(key, []).append((tp, offset, version))

    def sent(self, batch_id: int, versions: Mapping[str, int]) -> tuple[Offset, ...]:
        """Note that batch ``batch_id`` carries ``versions`` (key → version).

        Returns:
            The offsets waiting for its keys: the batch settles them when acknowledged (a
            batch carries each key's newest version, which every waiting offset is ≤).
        """
        self._batches[batch_id] = dict(versions)
        waiting = self._waiting
        return tuple(
            Offset(*tp, offset) for key in versions for tp, offset, _ in waiting.get(key, ())
        )

    def delivered(self, batch_id: int) -> bool:
        """The batch was acknowledged or permanently rejected: its versions are delivered.

        Returns:
            False for an unknown (or already finished) batch, which changes nothing.
        """
        versions = self._batches.pop(batch_id, None)
        if versions is None:
            return False
        for key, version in versions.items():
            done = max(self._delivered.get(key, 0), version)
            self._delivered[key] = done
            left = [w for w in self._waiting.get(key, ()) if w[2] > done]
            if left:
                self._waiting[key] = left
            else:
                self._waiting.pop(key, None)
        return True

    def abandoned(self, batch_id: int) -> bool:
        """Forget a batch that will not be sent again; its offsets keep waiting."""
        return self._batches.pop(batch_id, None) is not None

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition received from, the offset to commit (the next one to read)."""
        out: dict[TopicPartition, int] = {}
        delivered = self._delivered
        for tp, next_offset in self._next.items():
            queue = self._pending.get(tp)
            while queue and delivered.get(queue[0][1], 0) >= queue[0][2]:
                queue.popleft()
            out[tp] = queue[0][0] if queue else next_offset
        return out

    def revoke(self, tp: TopicPartition) -> None:
        """Forget a partition taken away by a rebalance (its new owner re-reads it)."""
        self._next.pop(tp, None)
        for _, key, _ in self._pending.pop(tp, ()):
            left = [w for w in self._waiting.get(key, ()) if w[0] != tp]
            if left:
                self._waiting[key] = left
            else:
                self._waiting.pop(key, None)


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


def _idempotency_key(values: Iterable[BatchValue]) -> str:
    # Sorted, so the same contents give the same key whatever order coalescing produced.
    content = sorted((v.key, v.record.event_id, v.stale) for v in values)
    return digest_id(orjson.dumps(["dashboard-batch", content]))


@dataclass(frozen=True, slots=True)
class Batch:
    """Values to push together.

    Attributes:
        batch_id: local sequence number (for ``acknowledged``/``rejected``).
        values: one per key, oldest change first.
        offsets: the consumed offsets it settles when acknowledged (informational).
        idempotency_key: hex BLAKE2b-128 of its sorted (key, event id, stale) triples: a
            re-send of the same contents, also by a restarted worker, has the same key.
    """

    batch_id: int
    values: tuple[BatchValue, ...]
    offsets: tuple[Offset, ...]
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
    """The latest value per key, batches of changed keys, and the offsets they settle."""

    def __init__(self) -> None:
        self.offsets = OffsetTracker()
        """The offset bookkeeping (see the module docstring)."""
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
        self, max_items: int, is_stale: Callable[[str], bool] | None = None
    ) -> Batch | None:
        """The next batch: up to ``max_items`` keys changed since their last batch.

        Args:
            max_items: the most values in one batch (≥ 1).
            is_stale: whether a key's value is stale now (for example
                :meth:`~pipeline.core.workers.freshness.StalenessTracker.is_stale`);
                all fresh if None.

        Returns:
            The batch, or None when nothing changed.

        Raises:
            ValueError: ``max_items`` < 1.
        """
        if max_items < 1:
            raise ValueError("max_items must be ≥ 1")
        if not self._dirty:
            return None
        keys = list(itertools.islice(self._dirty, max_items))
        values, versions = [], {}
        for key in keys:
            del self._dirty[key]
            entry = self._values[key]
            values.append(BatchValue(key, entry.record, bool(is_stale and is_stale(key))))
            versions[key] = entry.version
        batch_id = next(self._batch_ids)
        offsets = self.offsets.sent(batch_id, versions)
        batch = Batch(batch_id, tuple(values), offsets, _idempotency_key(values))
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


# ---------------------------------------------------------------------------- signing
def sign(body_bytes: bytes, secret: bytes) -> str:
    """HMAC-SHA256 of the exact body bytes, as lowercase hex.

    Args:
        body_bytes: the request body as sent.
        secret: the shared secret.

    Returns:
        64 hex characters.
    """
    return hmac.new(secret, body_bytes, hashlib.sha256).hexdigest()


def verify(body_bytes: bytes, signature: str, secret: bytes) -> bool:
    """Check a signature in constant time (``hmac.compare_digest``).

    Args:
        body_bytes: the request body as received.
        signature: the hex signature that came with it (case-insensitive).
        secret: the shared secret.

    Returns:
        True when it matches.
    """
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(body_bytes, secret), signature.lower())


# ---------------------------------------------------------------------------- push decisions
class PushAction(enum.Enum):
    """What to do after a push attempt."""

    ACK = "ack"  # the dashboard holds the batch: acknowledged()
    RETRY = "retry"  # send the same batch again after a wait
    REJECT = "reject"  # never accepted: DLQ, audit, rejected()


@dataclass(frozen=True, slots=True)
class PushDecision:
    """An action, the wait the server asked for (None: use backoff), and why.

    Attributes:
        action: what to do.
        wait_s: ``Retry-After`` for a 429, else None.
        reason: one line for logs, audit and the DLQ record.
        is_failure: counts against the circuit breaker (5xx, timeouts; not 429 or 4xx).
    """

    action: PushAction
    wait_s: float | None = None
    reason: str = ""
    is_failure: bool = False


def classify_push(status: int | None, retry_after: float | None) -> PushDecision:
    """Decide what an answer of the dashboard means.

    2xx → ack; 429 → retry after ``Retry-After`` (backoff when absent); 5xx, 408 and
    transport failures (``status`` None: refused, reset, timed out) → retry with backoff;
    any other status → reject for good.

    Args:
        status: the HTTP status, or None when no answer came.
        retry_after: the parsed ``Retry-After`` seconds, if any
            (:func:`pipeline.core.http_policy.parse_retry_after`).

    Returns:
        The decision.
    """
    if status is not None and 200 <= status < 300:
        return PushDecision(PushAction.ACK, reason=f"{status}: accepted")
    if status == 429:
        return PushDecision(PushAction.RETRY, retry_after, "429: throttled")
    if status is None or status == 408 or 500 <= status < 600:
        what = "no answer" if status is None else str(status)
        return PushDecision(PushAction.RETRY, None, f"{what}: dashboard unavailable", True)
    return PushDecision(PushAction.REJECT, reason=f"{status}: rejected")


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """How long to wait before re-sending a batch.

    Attributes:
        base_s: ceiling of the first backoff delay.
        cap_s: largest ceiling of a backoff delay.
        max_retry_after_s: the longest ``Retry-After`` obeyed as given (longer ones are cut
            to it, so a misconfigured server cannot park the worker for a day).
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 300.0

    def wait(self, decision: PushDecision, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first).

        Args:
            decision: a ``RETRY`` decision.
            attempt: delays so far for this batch.
            rand: uniform [0, 1) source for the jitter.

        Returns:
            ``Retry-After`` (capped) when the server gave one, else full-jitter backoff.
        """
        if decision.wait_s is not None:
            return min(max(decision.wait_s, 0.0), self.max_retry_after_s)
        return full_jitter(attempt, self.base_s, self.cap_s, rand)


BreakerState = Literal["closed", "open", "half_open"]
"""Closed: push. Open: do not push. Half open: one trial push decides."""


class CircuitBreaker:
    """Stop pushing to a dashboard that keeps failing; probe it once in a while.

    Closed → open after ``failure_threshold`` failures in a row. Open → half open once
    ``reset_after_s`` passed: :meth:`allow` lets one trial through. Its success closes the
    breaker, its failure opens it again. A trial never reported counts as lost after another
    ``reset_after_s`` and a new one is allowed.

    Args:
        failure_threshold: consecutive failures that open the breaker (≥ 1).
        reset_after_s: how long it stays open before a trial (> 0).
    """

    def __init__(self, failure_threshold: int = 5, reset_after_s: float = 30.0) -> None:
        if failure_threshold < 1 or not reset_after_s > 0:
            raise ValueError("failure_threshold must be ≥ 1 and reset_after_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.state: BreakerState = "closed"
        self.failures = 0
        self._since = 0.0  # when it opened, or when the trial went out

    def allow(self, now: float) -> bool:
        """Whether a push may go out at ``now`` (in half open: the one trial)."""
        if self.state == "closed":
            return True
        if now - self._since < self.reset_after_s:
            return False
        self.state, self._since = "half_open", now
        return True

    def retry_at(self) -> float | None:
        """When :meth:`allow` may say yes again, or None while closed."""
        return None if self.state == "closed" else self._since + self.reset_after_s

    def record_success(self, now: float) -> None:
        """A push succeeded (any state): close."""
        self.state, self.failures = "closed", 0

    def record_failure(self, now: float) -> None:
        """A push failed (5xx, timeout): count it; open at the threshold or after a trial."""
        self.failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.failures >= self.failure_threshold
        ):
            self.state, self._since = "open", now
