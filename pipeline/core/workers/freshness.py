"""Freshness: metric families, expected cadences, staleness per key, and SLO transitions.

Pure: record and audit values in, typed changes out; every time-dependent call takes ``now``
(epoch seconds). Latency percentiles live in :mod:`pipeline.core.workers.latency`;
:class:`FreshnessMonitor` ties both together for the freshness worker.

Cadence model (what "on time" means per family)
-----------------------------------------------
Genesys pushes values when they change, not on a clock (``docs/genesys-api.md``
§6.1: "sent on change, at most one per second"). So silence on one key says nothing: a queue
where nobody waits sends no new ``oWaiting``. What can be judged is the *producer*:

- ``on_change`` (instant observations, states): no period. The value stays true until a newer
  one arrives, as long as the stream that would carry the newer one is alive.
- ``interval`` (aggregates, user aggregates, KPIs): the value describes a 30-minute interval
  and also arrives only on change, so a quiet queue's last interval may be old. It is "the
  current value" only until the interval ends; it expires ``stale_after_factor`` periods
  after ``interval_end`` when no newer interval came for the key.

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
- The producer writes no periodic heartbeat today (UNVERIFIED need): on a completely quiet org
  rule 2 fires after ``stale_after`` although the sockets are healthy. A producer audit such
  as ``producer.heartbeat`` every ``liveness_cadence_s`` (any kind counts) removes that.
- An instance never seen in an audit (the worker started after its audit records expired)
  is judged by rule 2 alone. Consumers must read the whole audit topic, not a share of it.
- Times are the producer's: a worker that lags behind reports its keys stale until it has
  caught up, which is what its readers see anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import orjson

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.contract.mapping import current_key
from pipeline.core.contract.records import AuditRecord, MetricRecord
from pipeline.core.workers.latency import FreshnessReport, LatencyWindows

__all__ = [
    "FAMILIES",
    "INTERVAL_FAMILIES",
    "LIVE_FAMILIES",
    "Cadence",
    "Family",
    "FreshnessMonitor",
    "FreshnessOutput",
    "SloChange",
    "SloMonitor",
    "SloSettings",
    "StaleReason",
    "StalenessChange",
    "StalenessTracker",
    "cadence",
    "metric_family",
]

Family = Literal["observation", "state", "aggregate", "user_aggregate", "kpi"]
"""How a metric behaves in time (see :func:`metric_family`)."""
FAMILIES: Final[tuple[Family, ...]] = ("observation", "state", "aggregate", "user_aggregate", "kpi")
"""Every family."""
LIVE_FAMILIES: Final = frozenset({"observation", "state"})
"""Families held to the live SLO (``live_p95_s``)."""
INTERVAL_FAMILIES: Final = frozenset({"aggregate", "user_aggregate", "kpi"})
"""Families held to the interval SLO (``interval_kpi_p95_s``)."""
StaleReason = Literal["stream_down", "producer_silent", "interval_expired"]
"""Why a key is stale (see the module docstring)."""

_STATE_METRICS: Final = frozenset({"presence", "routingStatus", "member"})
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


def metric_family(record: MetricRecord) -> Family:
    """The family of a record.

    Returns:
        ``kpi`` (derived), ``state`` (presence, routingStatus, member), ``observation`` (any
        other record without an interval: instant o* values, agent-state counts),
        ``user_aggregate`` (interval metrics of a user) or ``aggregate`` (interval metrics of
        a queue or wrap-up code).
    """
    if record.derived:
        return "kpi"
    if record.metric in _STATE_METRICS:
        return "state"
    if record.interval_start is None:
        return "observation"
    return "user_aggregate" if record.entity_type == "user" else "aggregate"


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a key's value is expected to be refreshed.

    Attributes:
        kind: ``on_change`` (no period: valid while the stream lives) or ``interval``.
        period_s: the interval length (1,800 s for Genesys' 30-minute buckets); None on change.
        valid_until_ms: the interval's end (epoch ms); None on change.
    """

    kind: Literal["on_change", "interval"]
    period_s: float | None = None
    valid_until_ms: int | None = None


_ON_CHANGE: Final = Cadence("on_change")


def cadence(record: MetricRecord) -> Cadence:
    """The expected cadence of ``record``'s key (see the module docstring)."""
    start, end = record.interval_start, record.interval_end
    if start is None or end is None or end <= start:
        return _ON_CHANGE
    return Cadence("interval", (end - start) / 1000.0, end)


@dataclass(frozen=True, slots=True)
class SloSettings:
    """Freshness objectives and the staleness model's knobs (seconds unless noted).

    Attributes:
        live_p95_s: end-to-end p95 allowed for live families (observations, states).
        interval_kpi_p95_s: end-to-end p95 allowed for interval families and KPIs.
        stale_after_factor: a key is stale after this many expected cadences.
        window_s: length of the tumbling latency windows.
        liveness_cadence_s: how often a live producer is expected to show life;
            ``stale_after_factor ×`` this is the silence (or stream outage) that makes keys
            stale.
        min_samples: fewest end-to-end samples in a window to judge the latency SLO.
        relative_error: α of the percentile histograms.
    """

    live_p95_s: float = 5.0
    interval_kpi_p95_s: float = 60.0
    stale_after_factor: float = 3.0
    window_s: float = 60.0
    liveness_cadence_s: float = 20.0
    min_samples: int = 1
    relative_error: float = 0.01

    def __post_init__(self) -> None:
        positive = (self.live_p95_s, self.interval_kpi_p95_s, self.stale_after_factor,
                    self.window_s, self.liveness_cadence_s)  # fmt: skip
        if min(positive) <= 0 or self.min_samples < 1:
            raise ValueError("SLO thresholds, factor, window and cadence must be > 0")
        if not 0 < self.relative_error < 1:
            raise ValueError("relative_error must be in (0, 1)")

    @property
    def stale_after_s(self) -> float:
        """Silence or outage after which a producer's keys are stale."""
        return self.stale_after_factor * self.liveness_cadence_s


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
    __slots__ = ("entity_type", "family", "instance", "period_ms", "reason", "valid_until_ms")

    def __init__(self, record: MetricRecord, family: Family) -> None:
        self.instance, self.family, self.entity_type = (
            record.producer_instance, family, record.entity_type,
        )  # fmt: skip
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
    """

    def __init__(self, settings: SloSettings | None = None) -> None:
        self.settings = settings or SloSettings()
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
        producer.last_life_ms = max(producer.last_life_ms, record.ingest_time)
        key = current_key(record)
        state = self._keys.get(key)
        if state is None:
            family = metric_family(record)
            state = self._keys[key] = _Key(record, family)
            pair = (family, record.entity_type)
            self._counts[pair] = self._counts.get(pair, 0)
        state.instance = record.producer_instance
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
        factor = self.settings.stale_after_factor
        verdicts = {
            name: self._instance_reason(producer, now_ms)
            for name, producer in self._producers.items()
        }
        changes: list[StalenessChange] = []
        for key, state in self._keys.items():
            reason = verdicts[state.instance]
            until = state.valid_until_ms
            if reason is None and until is not None and now_ms - until > factor * state.period_ms:
                reason = "interval_expired"
            was_stale, state.reason = state.reason is not None, reason
            if was_stale != (reason is not None):
                self._counts[(state.family, state.entity_type)] += 1 if reason else -1
                where = (state.family, state.entity_type, state.instance)
                changes.append(StalenessChange(key, reason is not None, reason, now, *where))
        return changes

    def is_stale(self, key: str) -> bool:
        """Whether ``key`` was stale at the last tick (False for an unknown key)."""
        state = self._keys.get(key)
        return state is not None and state.reason is not None

    def stale_reason(self, key: str) -> StaleReason | None:
        """Why ``key`` was stale at the last tick, or None."""
        state = self._keys.get(key)
        return None if state is None else state.reason

    def stale_counts(self) -> dict[tuple[str, str], int]:
        """(family, entity_type) → stale keys at the last tick, 0 included for every pair seen."""
        return dict(self._counts)


def _detail(details_json: str, name: str) -> object:
    try:
        details = orjson.loads(details_json)
    except orjson.JSONDecodeError:
        return None
    return details.get(name) if isinstance(details, dict) else None


SloName = Literal["latency_p95", "stale_keys"]


@dataclass(frozen=True, slots=True)
class SloChange:
    """An objective was breached, or recovered, for one family and entity type.

    Attributes:
        slo: ``latency_p95`` (end-to-end p95 against its threshold) or ``stale_keys`` (any
            stale key breaches it).
        family, entity_type: what it concerns.
        breached: the new state (False: recovered).
        value: the p95 in seconds, or the number of stale keys.
        threshold: the limit it was held to.
        window_start, window_end: the window that showed it (epoch ms).
    """

    slo: SloName
    family: str
    entity_type: str
    breached: bool
    value: float
    threshold: float
    window_start: int
    window_end: int

    @property
    def kind(self) -> AuditKind:
        """The audit kind: ``freshness.slo_breached`` or ``freshness.slo_recovered``."""
        if self.breached:
            return AuditKind.FRESHNESS_SLO_BREACHED
        return AuditKind.FRESHNESS_SLO_RECOVERED

    def audit_event(self) -> AuditEvent:
        """The audit fact to publish (``at`` = the window's end)."""
        details = {
            "slo": self.slo, "family": self.family, "entity_type": self.entity_type,
            "value": self.value, "threshold": self.threshold,
            "window_start_ms": self.window_start, "window_end_ms": self.window_end,
        }  # fmt: skip
        return AuditEvent(self.kind, self.window_end / 1000.0, None, details)


class SloMonitor:
    """Breach and recovery of the freshness objectives, from window reports, without flapping.

    Each (objective, family, entity type) starts "met"; :meth:`observe` reports a change only
    when the state flips. A window without enough ``end_to_end`` samples leaves the latency
    objective as it was (no evidence either way).

    Args:
        settings: the thresholds.
    """

    def __init__(self, settings: SloSettings | None = None) -> None:
        self.settings = settings or SloSettings()
        self._breached: dict[tuple[str, str, str], bool] = {}

    def observe(self, report: FreshnessReport) -> list[SloChange]:
        """Judge one report; only ``end_to_end`` reports count.

        Returns:
            Zero, one or two changes (latency, stale keys).
        """
        if report.stage != "end_to_end":
            return []
        s, out = self.settings, []
        p95 = report.p95_seconds
        if report.count >= s.min_samples and p95 is not None:
            live = report.family in LIVE_FAMILIES
            limit = s.live_p95_s if live else s.interval_kpi_p95_s
            out += self._judge("latency_p95", report, p95 > limit, p95, limit)
        stale = float(report.stale_keys)
        out += self._judge("stale_keys", report, report.stale_keys > 0, stale, 0.0)
        return out

    def _judge(
        self, slo: SloName, report: FreshnessReport, breached: bool, value: float, limit: float
    ) -> list[SloChange]:
        key = (slo, report.family, report.entity_type)
        if self._breached.get(key, False) == breached:
            return []
        self._breached[key] = breached
        window = (report.window_start, report.window_end)
        return [SloChange(slo, key[1], key[2], breached, value, limit, *window)]

    def is_breached(self, slo: SloName, family: str, entity_type: str) -> bool:
        """Whether an objective is breached now."""
        return self._breached.get((slo, family, entity_type), False)


@dataclass(frozen=True, slots=True)
class FreshnessOutput:
    """What one :meth:`FreshnessMonitor.tick` asks the worker to publish."""

    reports: tuple[FreshnessReport, ...] = ()
    staleness: tuple[StalenessChange, ...] = ()
    slo: tuple[SloChange, ...] = ()


class FreshnessMonitor:
    """The freshness worker's core: latency windows, staleness and SLOs behind one façade.

    Args:
        instance: the worker instance (goes into every report).
        settings: objectives and knobs.
    """

    def __init__(self, instance: str, settings: SloSettings | None = None) -> None:
        self.instance = instance
        self.settings = s = settings or SloSettings()
        self.windows = LatencyWindows(s.window_s, s.relative_error)
        self.staleness = StalenessTracker(s)
        self.slo = SloMonitor(s)

    def on_record(self, record: MetricRecord, broker_time_ms: int | None, now: float) -> None:
        """Take one consumed metric record (its Kafka timestamp, and when it arrived)."""
        self.windows.add(record, metric_family(record), broker_time_ms, now)
        self.staleness.observe(record)

    def on_audit(self, audit: AuditRecord) -> None:
        """Take one consumed audit record."""
        self.staleness.observe_audit(audit)

    def tick(self, now: float) -> FreshnessOutput:
        """Re-judge staleness, close ended windows and judge their reports.

        Returns:
            Reports to publish to ``<prefix>.freshness``, staleness changes, and SLO changes
            (publish :meth:`SloChange.audit_event` of each to ``<prefix>.audit``).
        """
        staleness = self.staleness.tick(now)
        reports = self.windows.close(now, self.instance, self.staleness.stale_counts())
        slo = [change for report in reports for change in self.slo.observe(report)]
        return FreshnessOutput(tuple(reports), tuple(staleness), tuple(slo))
