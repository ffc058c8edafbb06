"""Which consumed offsets the dashboard worker may commit: only acknowledged values.

Pure: offsets, keys and versions in, committable offsets out.

The offset-commit rule (theory of operation of :class:`OffsetTracker`)
----------------------------------------------------------------------
Every accepted value of a key gets a *version* from one counter shared by all keys (so a
version is never reused, even after a key is forgotten). Every consumed offset is filed with
the version the dashboard must hold before the offset is "done":

- a record that became its key's latest value needs its own version;
- a record older than (or a duplicate of) the key's latest value needs the latest version:
  the dashboard must hold the value that supersedes it;
- a record that is not for the dashboard (filtered, dead-lettered) needs nothing.

A batch carries one version per key. When it is acknowledged, or permanently rejected (it
goes to the DLQ, so it is done too), each of its keys' *delivered* version rises to at least
the batch's. An offset is done when its key's delivered version is ≥ the version it needs.
So a record superseded by a newer one, in the same or a later batch, is done only once the
batch holding the newer value is acknowledged; acknowledging an older batch after a newer one
never lowers anything. The committable offset of a partition is the first offset not done
(every offset below it is done; offsets the broker skipped, compaction or control records,
count as done), or one past the last received when all are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Offset", "OffsetTracker", "TopicPartition"]

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
