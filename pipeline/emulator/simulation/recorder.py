"""What the simulation recorded: metric rows, status segments and this interval's totals.

The :class:`~.engine.Engine` calls :meth:`Recorder.emit` when a conversation metric completes
(docs/genesys-api.md §7.2, FORUM-AGG) and :meth:`Recorder.close_segment` when an agent leaves a
routing status or presence. Each call lands in two places:

* the logs (:class:`~.log.EmissionLog`, :class:`~.log.SegmentLog`), which the analytics query
  engine reads for any interval within the retention;
* running totals of the current 30-minute interval, per queue-media slot, per wrap-up code and
  per user, which the aggregate topic bodies render. :meth:`Recorder.start_interval` resets
  them at each boundary and prunes the logs.

Both render through the same :class:`~.log.StatAccumulator`, so a query for the current
interval and the aggregate body agree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from pipeline.emulator.simulation.entities import Conversation
from pipeline.emulator.simulation.log import EmissionLog, SegmentLog, StatAccumulator
from pipeline.emulator.simulation.model import INTERVAL_MS, RECORDED_METRICS, WRAPUP_METRICS

__all__ = ["KIND_PRESENCE", "KIND_ROUTING", "Recorder"]

KIND_ROUTING: Final = 0
"""Segment kind: time in a routing status (qualifier = index in ROUTING_STATUSES)."""
KIND_PRESENCE: Final = 1
"""Segment kind: time in a presence (qualifier = index in SYSTEM_PRESENCES)."""

_CODES = {name: code for code, name in enumerate(RECORDED_METRICS)}  # metric name → log code


class Recorder:
    """The emission and segment logs, and the totals of the current interval.

    Args:
        start_ms: the simulation's start (epoch ms); the first interval is the one holding it.
        retention_s: how long the logs keep rows (older chunks are pruned at each boundary).
    """

    def __init__(self, start_ms: int, retention_s: int) -> None:
        self.emissions = EmissionLog(INTERVAL_MS)
        self.segments = SegmentLog(INTERVAL_MS)
        self.interval_start = start_ms - start_ms % INTERVAL_MS
        self._retention_ms = retention_s * 1000
        self._by_slot: dict[int, dict[int, StatAccumulator]] = {}
        self._by_wrapup: dict[int, dict[int, dict[int, StatAccumulator]]] = {}
        self._by_user: dict[int, dict[int, StatAccumulator]] = {}

    def emit(self, at: int, metric: str, conv: Conversation, user: int, value: int) -> None:
        """Record one completed conversation metric.

        Args:
            at: when it completed (epoch ms).
            metric: a name from ``RECORDED_METRICS``.
            conv: the conversation (its queue, media and wrap-up code are the dimensions).
            user: the agent's position, or -1 for a queue-side metric.
            value: the value (ms for t-metrics, a count or 0/1 otherwise).
        """
        code, slot = _CODES[metric], conv.qm
        wrapup = conv.wrapup if metric in WRAPUP_METRICS else -1
        self.emissions.add(at, code, conv.queue, conv.media, user, wrapup, value)
        _accumulate(self._by_slot.setdefault(slot, {}), code, value)
        if wrapup >= 0:
            _accumulate(self._by_wrapup.setdefault(wrapup, {}).setdefault(slot, {}), code, value)

    def close_segment(self, user: int, kind: int, qualifier: int, start: int, end: int) -> None:
        """Record that ``user`` spent ``[start, end)`` ms in a status (nothing if empty).

        Args:
            user: the agent's position.
            kind: :data:`KIND_ROUTING` or :data:`KIND_PRESENCE`.
            qualifier: the status's index in its tuple.
            start: when the segment began (epoch ms).
            end: when it ended (epoch ms).
        """
        if end > start:
            self.segments.add(user, kind, qualifier, start, end)
            _accumulate(self._by_user.setdefault(user, {}), kind * 16 + qualifier, end - start)

    def start_interval(self, boundary: int) -> None:
        """Begin the interval starting at ``boundary``: fresh totals, logs pruned.

        The caller closes the agents' open segments at ``boundary`` first, so each lands in
        the interval it belongs to.
        """
        self._by_slot, self._by_wrapup, self._by_user = {}, {}, {}
        self.interval_start = boundary
        self.emissions.prune(boundary - self._retention_ms)
        self.segments.prune(boundary - self._retention_ms)

    def slot_stats(self, slot: int) -> Mapping[int, StatAccumulator]:
        """Metric code → totals of this interval for one queue-media slot."""
        return MappingProxyType(self._by_slot.get(slot, {}))

    def wrapup_stats(self, wrapup: int) -> Mapping[int, Mapping[int, StatAccumulator]]:
        """Slot → metric code → totals of this interval for one wrap-up code."""
        return MappingProxyType(self._by_wrapup.get(wrapup, {}))

    def user_stats(self, user: int) -> Mapping[int, StatAccumulator]:
        """``kind * 16 + qualifier`` → time-in-status totals of this interval for one user."""
        return MappingProxyType(self._by_user.get(user, {}))


def _accumulate(accs: dict[int, StatAccumulator], key: int, value: int) -> None:
    (accs.get(key) or accs.setdefault(key, StatAccumulator())).add(value)
