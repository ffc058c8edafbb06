"""Staleness per key, from the metric records and the producers' audit records (pure).

What "on time" means per family: :mod:`pipeline.core.workers.family`. Every call that depends
on time takes ``now`` (epoch seconds).

Staleness rules (theory of operation of :class:`StalenessTracker`)
------------------------------------------------------------------
Let ``stale_after = stale_after_factor × liveness_cadence_s`` (3 × 20 s = 60 s by default).
Per producer instance the tracker keeps the newest sign of life (``ingest_time`` of any
record, ``at`` of any audit record; the producer's clock) and, from its audit records, which
of its notification channels are down and since when:

- down: ``socket.disconnected``, ``heartbeat.timeout``, ``gap.opened``, ``session.stopped``;
- live again: ``socket.connected``, ``backfill.finished``, ``gap.closed`` (the gap of that
  channel ended, possibly on a new channel), ``channel.rolled_over`` (forgets ``previous``);
- restart: ``subscription.validated`` (a producer process starts) forgets every channel.

A key (``current_key``) is stale, with the first reason that holds:

1. ``stream_down``: a channel of its producer has been down for more than ``stale_after``;
2. ``producer_silent``: its producer showed no sign of life for more than ``stale_after``;
3. ``interval_expired``: an interval key whose newest ``interval_end`` lies more than
   ``stale_after_factor × interval length`` in the past.

Otherwise it is fresh, however long its value has not changed: "no change" is not stale.
Rules 1 and 2 apply to every family: a dead stream misses aggregate updates as surely as
observations. Edge cases, candidly:

- Records carry no channel id, so a key cannot be tied to one channel: one channel down marks
  every key of that producer instance (conservative; a shard runs a few channels).
- On a completely quiet org only the producer's ``producer.heartbeat`` audit (every
  ``heartbeat_s``, 20 s by default, like ``liveness_cadence_s``) keeps rule 2 from firing
  although the sockets are healthy: a producer run with a longer ``heartbeat_s`` than
  ``liveness_cadence_s`` gets its keys marked stale while nothing changes.
- An instance never seen in an audit (the worker started after its audit records expired)
  is judged by rule 2 alone. Consumers must read the whole audit topic, not a share of it.
- Times are the producer's: a worker that lags behind reports its keys stale until it has
  caught up, which is what its readers see anyway.

Memory: one entry per key and per producer instance. With ``forget_after_s`` (the freshness
worker: ``SloSettings.forget_after_s``, a day by default) a key whose newest record, or a
producer whose newest sign of life, is older than that is forgotten at the next tick, so
memory follows the keys seen lately, not every key ever seen; a forgotten stale key no longer
counts as stale. Without it (the dashboard worker, which holds every key's value anyway and
must not push an old value as fresh) nothing is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import orjson

from pipeline.core.audit import AuditKind
from pipeline.core.contract.identity import current_key
from pipeline.core.contract.records import AuditRecord, MetricRecord
from pipeline.core.workers.family import Family, metric_family
from pipeline.core.workers.slo import SloSettings

__all__ = ["StaleReason", "StalenessChange", "StalenessTracker"]

StaleReason = Literal["stream_down", "producer_silent", "interval_expired"]
"""Why a key is stale (see the module docstring)."""

_DOWN_KINDS: Final = frozenset(
    {
        AuditKind.SOCKET_DISCONNECTED,
        AuditKind.HEARTBEAT_TIMEOUT,
        AuditKind.GAP_OPENED,
        AuditKind.SESSION_STOPPED,
    }
)
_LIVE_KINDS: Final = frozenset(
    {AuditKind.SOCKET_CONNECTED, AuditKind.BACKFILL_FINISHED, AuditKind.GAP_CLOSED}
)
_RESTART_KINDS: Final = frozenset({AuditKind.SUBSCRIPTION_VALIDATED})


@dataclass(frozen=True, slots=True)
class StalenessChange:
    """A key became stale, or fresh again.

    Attributes:
        key: the ``current_key`` of the value.
        stale: the new state.
        reason: why it is stale; None when it became fresh.
        at: when the tracker noticed (epoch seconds, the ``now`` of the tick).
        family, entity_type, producer_instance: where the key belongs.
    """

    key: str
    stale: bool
    reason: StaleReason | None
    at: float
    family: Family
    entity_type: str
    producer_instance: str


class _Producer:
    __slots__ = ("down", "last_life_ms")

    def __init__(self) -> None:
        self.last_life_ms = 0
        self.down: dict[str, int] = {}  # channel id ("" when none) → down since (epoch ms)


class _Key:
    __slots__ = ("entity_type", "family", "instance", "last_seen_ms", "period_ms", "reason",
                 "valid_until_ms")  # fmt: skip

    def __init__(self, record: MetricRecord, family: Family) -> None:
        self.instance, self.family, self.entity_type = (
            record.producer_instance, family, record.entity_type,
        )  # fmt: skip
        self.last_seen_ms = record.ingest_time
        self.valid_until_ms: int | None = None
        self.period_ms = 0.0
        self.reason: StaleReason | None = None


class StalenessTracker:
    """Which keys are stale, from metric records and the producers' audit records.

    Feed every consumed record to :meth:`observe` and every audit record to
    :meth:`observe_audit`, then call :meth:`tick` (each second, say): it returns the keys that
    changed state. Rules: see the module docstring. Cost: :meth:`tick` is O(keys).

    Args:
        settings: the staleness knobs (``stale_after_factor``, ``liveness_cadence_s``).
        forget_after_s: forget keys and producers silent for this long (None: never).
    """

    def __init__(
        self, settings: SloSettings | None = None, *, forget_after_s: float | None = None
    ) -> None:
        self.settings = settings or SloSettings()
        self._forget_after_ms = None if forget_after_s is None else forget_after_s * 1000.0
        self._producers: dict[str, _Producer] = {}
        self._keys: dict[str, _Key] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def _producer(self, instance: str) -> _Producer:
        producer = self._producers.get(instance)
        if producer is None:
            producer = self._producers[instance] = _Producer()
        return producer

    def observe(self, record: MetricRecord) -> None:
        """Take a consumed record: a sign of life of its producer and a value of its key."""
        producer = self._producer(record.producer_instance)
        ingest = record.ingest_time
        if ingest > producer.last_life_ms:  # comparisons, not max(): this runs per record
            producer.last_life_ms = ingest
        key = current_key(record)
        state = self._keys.get(key)
        if state is None:
            family = metric_family(record)
            state = self._keys[key] = _Key(record, family)
            pair = (family, record.entity_type)
            self._counts[pair] = self._counts.get(pair, 0)
        state.instance = record.producer_instance
        if ingest > state.last_seen_ms:
            state.last_seen_ms = ingest
        end, start = record.interval_end, record.interval_start
        newest = state.valid_until_ms
        if end is not None and start is not None and end > start and (newest or 0) < end:
            state.valid_until_ms, state.period_ms = end, float(end - start)

    def observe_audit(self, audit: AuditRecord) -> None:
        """Take an audit record of a producer: a sign of life, and maybe a stream change."""
        producer = self._producer(audit.producer_instance)
        producer.last_life_ms = max(producer.last_life_ms, audit.at)
        kind, channel = audit.kind, audit.channel_id or ""
        if kind in _RESTART_KINDS:
            producer.down.clear()
        elif kind in _DOWN_KINDS:
            producer.down.setdefault(channel, audit.at)
        elif kind in _LIVE_KINDS:
            producer.down.pop(channel, None)
        elif kind == AuditKind.CHANNEL_ROLLED_OVER:
            previous = _detail(audit.details_json, "previous")
            if isinstance(previous, str):
                producer.down.pop(previous, None)

    def _instance_reason(self, producer: _Producer, now_ms: float) -> StaleReason | None:
        limit = self.settings.stale_after_s * 1000.0
        if producer.down and now_ms - min(producer.down.values()) > limit:
            return "stream_down"
        if now_ms - producer.last_life_ms > limit:
            return "producer_silent"
        return None

    def tick(self, now: float) -> list[StalenessChange]:
        """Re-judge every key at ``now``.

        Args:
            now: the current time (epoch seconds).

        Returns:
            The keys whose state changed since the last tick, in the order they were first
            seen. A new key starts fresh and is reported only when it turns stale.
        """
        now_ms = now * 1000.0
        if self._forget_after_ms is not None:
            self._forget(now_ms - self._forget_after_ms)
        factor = self.settings.stale_after_factor
        verdicts = {
            name: self._instance_reason(producer, now_ms)
            for name, producer in self._producers.items()
        }
        changes: list[StalenessChange] = []
        for key, state in self._keys.items():
            reason = verdicts.get(state.instance, "producer_silent")
            until = state.valid_until_ms
            if reason is None and until is not None and now_ms - until > factor * state.period_ms:
                reason = "interval_expired"
            was_stale, state.reason = state.reason is not None, reason
            if was_stale != (reason is not None):
                self._counts[(state.family, state.entity_type)] += 1 if reason else -1
                where = (state.family, state.entity_type, state.instance)
                changes.append(StalenessChange(key, reason is not None, reason, now, *where))
        return changes

    def _forget(self, before_ms: float) -> None:
        """Drop keys last seen, and producers last alive, before ``before_ms``."""
        old = [key for key, state in self._keys.items() if state.last_seen_ms < before_ms]
        for key in old:
            state = self._keys.pop(key)
            if state.reason is not None:
                self._counts[(state.family, state.entity_type)] -= 1
        gone = [name for name, p in self._producers.items() if p.last_life_ms < before_ms]
        for name in gone:
            del self._producers[name]

    def keys(self) -> int:
        """How many keys the tracker holds."""
        return len(self._keys)

    def producers(self) -> int:
        """How many producer instances the tracker holds."""
        return len(self._producers)

    def is_stale(self, key: str) -> bool:
        """Whether ``key`` was stale at the last tick (False for an unknown key)."""
        state = self._keys.get(key)
        return state is not None and state.reason is not None

    def stale_counts(self) -> dict[tuple[str, str], int]:
        """(family, entity_type) → stale keys at the last tick, 0 included for every pair seen."""
        return dict(self._counts)


def _detail(details_json: str, name: str) -> object:
    try:
        details = orjson.loads(details_json)
    except orjson.JSONDecodeError:
        return None
    return details.get(name) if isinstance(details, dict) else None
