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

Memory: segments, not offsets
-----------------------------
A dashboard outage must not grow memory with every record consumed, so offsets are not kept
one by one. The versions a key's records need never go down in arrival order (a key's latest
version only rises), so per partition and key the offsets not yet done are kept as
*segments*: ``[first offset, bound]``, the first offset of a run of records and the highest
version any of them needs. A new record extends the last segment (raising its bound) unless
a batch in flight carries the key at a version ``v`` with ``bound ≤ v < needed``: that batch
would settle the segment but not the new record, so the record opens a new segment. Every
segment boundary is justified by a distinct batch in flight, so a partition and key hold at
most one segment more than there are batches in flight carrying the key (the worker sends one
batch at a time, so one or two), whatever the number of records. When a batch is
acknowledged, the segments whose bound it reaches are done; when a batch is abandoned,
segments it alone kept apart merge again. The rule above is kept exactly: a segment is done
exactly when every record in it is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["OffsetTracker", "TopicPartition"]

TopicPartition = tuple[str, int]
"""A Kafka (topic, partition)."""

_Segment = list[int]  # [first offset, highest version needed by a record of the run]


class OffsetTracker:
    """Which consumed offsets are done, by the version rule of the module docstring."""

    def __init__(self) -> None:
        self._next: dict[TopicPartition, int] = {}  # one past the highest offset received
        # partition → key → segments of offsets not yet done, oldest first (bounds increase)
        self._segments: dict[TopicPartition, dict[str, list[_Segment]]] = {}
        self._where: dict[str, set[TopicPartition]] = {}  # key → partitions with segments
        self._delivered: dict[str, int] = {}  # key → highest version acknowledged or rejected
        self._batches: dict[int, dict[str, int]] = {}  # batch in flight → key → version
        self._flying: dict[str, list[int]] = {}  # key → versions of the batches in flight

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
        segments = self._segments.setdefault(tp, {}).setdefault(key, [])
        if segments and not self._apart(key, segments[-1][1], version):
            segments[-1][1] = max(segments[-1][1], version)
        else:
            segments.append([offset, version])
        self._where.setdefault(key, set()).add(tp)

    def sent(self, batch_id: int, versions: Mapping[str, int]) -> None:
        """Note that batch ``batch_id`` carries ``versions`` (key → version)."""
        self._batches[batch_id] = dict(versions)
        for key, version in versions.items():
            self._flying.setdefault(key, []).append(version)

    def delivered(self, batch_id: int) -> bool:
        """The batch was acknowledged or permanently rejected: its versions are delivered.

        Returns:
            False for an unknown (or already finished) batch, which changes nothing.
        """
        versions = self._finish(batch_id)
        if versions is None:
            return False
        for key, version in versions.items():
            done = max(self._delivered.get(key, 0), version)
            self._delivered[key] = done
            self._settle(key, done)
        return True

    def abandoned(self, batch_id: int) -> bool:
        """Forget a batch that will not be sent again; its offsets keep waiting."""
        versions = self._finish(batch_id)
        if versions is None:
            return False
        for key in versions:
            self._settle(key, self._delivered.get(key, 0))
        return True

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition received from, the offset to commit (the next one to read)."""
        out: dict[TopicPartition, int] = {}
        for tp, next_offset in self._next.items():
            keys = self._segments.get(tp)
            out[tp] = min(s[0][0] for s in keys.values()) if keys else next_offset
        return out

    def revoke(self, tp: TopicPartition) -> None:
        """Forget a partition taken away by a rebalance (its new owner re-reads it)."""
        self._next.pop(tp, None)
        for key in self._segments.pop(tp, {}):
            where = self._where.get(key)
            if where is not None:
                where.discard(tp)
                if not where:
                    del self._where[key]

    def entries(self) -> int:
        """Entries held: segments, partitions, keys delivered and versions in flight.

        Grows with partitions, keys and batches in flight; never with records consumed.
        """
        segments = sum(len(s) for keys in self._segments.values() for s in keys.values())
        flying = sum(len(v) for v in self._flying.values())
        return segments + len(self._next) + len(self._delivered) + flying

    # ------------------------------------------------------------------ helpers
    def _apart(self, key: str, bound: int, needed: int) -> bool:
        """Whether a batch in flight settles a segment of ``bound`` but not ``needed``."""
        return any(bound <= v < needed for v in self._flying.get(key, ()))

    def _finish(self, batch_id: int) -> dict[str, int] | None:
        versions = self._batches.pop(batch_id, None)
        for key, version in (versions or {}).items():
            flying = self._flying[key]
            flying.remove(version)
            if not flying:
                del self._flying[key]
        return versions

    def _settle(self, key: str, done: int) -> None:
        """Drop the segments of ``key`` that ``done`` settles; merge those nothing keeps apart."""
        where = self._where.get(key)
        if where is None:
            return
        for tp in list(where):
            keys = self._segments[tp]
            left = self._merged(key, (s for s in keys[key] if s[1] > done))
            if left:
                keys[key] = left
                continue
            del keys[key]
            if not keys:
                del self._segments[tp]
            where.discard(tp)
        if not where:
            del self._where[key]

    def _merged(self, key: str, segments: Iterable[_Segment]) -> list[_Segment]:
        out: list[_Segment] = []
        for segment in segments:
            if out and not self._apart(key, out[-1][1], segment[1]):
                out[-1][1] = segment[1]
            else:
                out.append(segment)
        return out
