"""Compact, time-chunked storage of what the simulation emitted, and the stats it renders to.

Two logs feed the analytics query engine:

* :class:`EmissionLog` — one row per completed conversation metric (nOffered at arrival,
  tAnswered at answer, tHandle at the end of after-call work …) with its dimensions. Rows are
  stored column-wise in ``array`` buffers, one chunk per 30-minute interval, so a 48-hour
  retention of a busy centre costs ~30 bytes per row and pruning drops whole chunks.
* :class:`SegmentLog` — one row per finished stretch of time a user spent in a routing status
  or presence (the source of tAgentRoutingStatus / tSystemPresence / tOrganizationPresence).

:class:`StatAccumulator` keeps count/sum/min/max and :func:`render_stats` turns it into the
``stats`` map of docs/genesys-api.md §6.2 / §7.2, so the topic bodies and the query engine render
identical numbers from identical inputs.
"""

from __future__ import annotations

from array import array

__all__ = [
    "EmissionChunk",
    "EmissionLog",
    "SegmentChunk",
    "SegmentLog",
    "StatAccumulator",
    "render_stats",
]


class StatAccumulator:
    """Running count, sum, min and max of integer values.

    For ``oServiceLevel`` the simulation adds 1 (answered within the target) or 0 per
    conversation, so ``count`` is the denominator and ``total`` the numerator.
    """

    __slots__ = ("count", "high", "low", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.low = 0
        self.high = 0

    def add(self, value: int) -> None:
        """Account for one more value."""
        if self.count == 0:
            self.low = self.high = value
        elif value < self.low:
            self.low = value
        elif value > self.high:
            self.high = value
        self.count += 1
        self.total += value

    def add_many(self, total: int, count: int) -> None:
        """Account for ``count`` values summing to ``total`` (min/max are not tracked)."""
        self.count += count
        self.total += total


def render_stats(metric: str, acc: StatAccumulator, target: float | None) -> dict[str, float]:
    """The ``stats`` map Genesys sends for ``metric`` (§6.2 aggregate flavour, §7.2).

    Args:
        metric: the metric name; decides the keys.
        acc: the accumulated values (must have ``count >= 1``).
        target: the service-level target (0–1) for ``oServiceLevel``; None leaves it out.

    Returns:
        ``{"count"}`` for n-metrics, ``{"count", "sum", "min", "max"}`` for t-metrics and
        ``{"ratio", "numerator", "denominator", "target"}`` for oServiceLevel.
    """
    if metric == "oServiceLevel":
        stats: dict[str, float] = {
            "ratio": acc.total / acc.count,
            "numerator": acc.total,
            "denominator": acc.count,
        }
        if target is not None:
            stats["target"] = target
        return stats
    if metric.startswith("t"):
        return {"count": acc.count, "sum": acc.total, "min": acc.low, "max": acc.high}
    return {"count": acc.count}


class EmissionChunk:
    """Column buffers of the emissions whose time falls in one chunk (30 minutes)."""

    __slots__ = ("index", "media", "metric", "queue", "time", "user", "value", "wrapup")

    def __init__(self, index: int) -> None:
        self.index = index
        self.time = array("q")
        self.metric = array("b")
        self.queue = array("i")
        self.media = array("b")
        self.user = array("i")  # -1: no userId
        self.wrapup = array("i")  # -1: no wrapUpCode
        self.value = array("q")


class EmissionLog:
    """Append-only, time-ordered emission rows with chunked retention."""

    def __init__(self, chunk_ms: int) -> None:
        self._chunk_ms = chunk_ms
        self._chunks: dict[int, EmissionChunk] = {}
        self._last: EmissionChunk | None = None

    def add(
        self, time_ms: int, metric: int, queue: int, media: int, user: int, wrapup: int, value: int
    ) -> None:
        """Append one row; ``time_ms`` must not go backwards."""
        index = time_ms // self._chunk_ms
        chunk = self._last
        if chunk is None or chunk.index != index:
            chunk = self._chunks.setdefault(index, EmissionChunk(index))
            self._last = chunk
        chunk.time.append(time_ms)
        chunk.metric.append(metric)
        chunk.queue.append(queue)
        chunk.media.append(media)
        chunk.user.append(user)
        chunk.wrapup.append(wrapup)
        chunk.value.append(value)

    def chunks(self, start_ms: int, end_ms: int) -> list[EmissionChunk]:
        """The chunks that may hold rows with ``start_ms <= time < end_ms``, oldest first."""
        first, last = start_ms // self._chunk_ms, (end_ms - 1) // self._chunk_ms
        return [c for i, c in sorted(self._chunks.items()) if first <= i <= last]

    def prune(self, before_ms: int) -> None:
        """Drop chunks that end at or before ``before_ms``."""
        for index in [i for i in self._chunks if (i + 1) * self._chunk_ms <= before_ms]:
            del self._chunks[index]
        if self._last is not None and self._last.index not in self._chunks:
            self._last = None

    def __len__(self) -> int:
        return sum(len(c.time) for c in self._chunks.values())


class SegmentChunk:
    """Column buffers of status segments that start in one chunk."""

    __slots__ = ("end", "index", "kind", "qualifier", "start", "user")

    def __init__(self, index: int) -> None:
        self.index = index
        self.user = array("i")
        self.kind = array("b")  # 0: routing status, 1: presence
        self.qualifier = array("b")  # index into ROUTING_STATUSES / SYSTEM_PRESENCES
        self.start = array("q")
        self.end = array("q")


class SegmentLog:
    """Finished status segments; the simulation cuts them at every chunk boundary."""

    def __init__(self, chunk_ms: int) -> None:
        self._chunk_ms = chunk_ms
        self._chunks: dict[int, SegmentChunk] = {}

    def add(self, user: int, kind: int, qualifier: int, start_ms: int, end_ms: int) -> None:
        """Append a segment ``[start_ms, end_ms)`` (must not cross a chunk boundary)."""
        index = start_ms // self._chunk_ms
        chunk = self._chunks.get(index)
        if chunk is None:
            chunk = self._chunks[index] = SegmentChunk(index)
        chunk.user.append(user)
        chunk.kind.append(kind)
        chunk.qualifier.append(qualifier)
        chunk.start.append(start_ms)
        chunk.end.append(end_ms)

    def chunks(self, start_ms: int, end_ms: int) -> list[SegmentChunk]:
        """The chunks that may hold segments overlapping ``[start_ms, end_ms)``, oldest first."""
        first, last = start_ms // self._chunk_ms, (end_ms - 1) // self._chunk_ms
        return [c for i, c in sorted(self._chunks.items()) if first <= i <= last]

    def prune(self, before_ms: int) -> None:
        """Drop chunks that end at or before ``before_ms``."""
        for index in [i for i in self._chunks if (i + 1) * self._chunk_ms <= before_ms]:
            del self._chunks[index]

    def __len__(self) -> int:
        return sum(len(c.user) for c in self._chunks.values())
