"""The compacted current-value topic as a changelog table: row keys, upserts and tombstones.

``<prefix>.current.v2`` holds one row per thing that has one current value. The producer
feeds :class:`CurrentTable` each event's mapped records; it answers with the
:class:`TableChange` values to write: an upsert (the record) or a tombstone (no value) per row
key. A table consumer (ksqlDB/Flink table, Kafka Streams ``KTable``, a JDBC sink with
``delete.enabled``) that keeps the last value per key and drops a key on a tombstone holds the
same rows as the producer.

Row key (:func:`table_key`): ``entity_type|entity_id|metric|qualifier|media_type``, empty
strings for nulls. A *state* is a value, not part of the key: ``presence`` and
``routingStatus`` rows have an empty qualifier in the key (the state is the value's
``qualifier``), so a user has one presence row and one routing-status row. Every other
qualifier is a dimension (the routing status an ``oUserRoutingStatuses`` count is about, the
member's user id, the queue of a wrap-up aggregate) and stays in the key. The interval is not
in the key: an aggregate row holds the latest interval's value (docs/kafka-contract.md has the
table per metric family).

Theory of operation. Genesys sends a topic's *bodies* on change (docs/genesys-api.md §6.2): a
body has a ``group`` (queue and media type, user, wrap-up code and queue ...) and a flavour
(an instant observation has interval start == end; an aggregate spans its 30 minutes). A body
may carry any subset of metrics, so a metric a body does not mention is unchanged. But a
metric a body does mention comes with all of its qualifiers: the *series* of one (topic,
group, flavour, metric, media type) is replaced by the body's. The table remembers, per
subscribed topic, the row keys of each series from its latest body; rows go away when:

1. a series' qualifier is missing from the latest body that carries the series (a routing
   status no member is in any more, when Genesys omits zero counts);
2. an aggregate body of a newer interval arrives for a (topic, group): the rows of the older
   interval that the new body does not carry (the new interval has no data for them yet);
3. a member left the queue (``v2.routing.queues.{id}.users`` with ``joined`` false: the
   ``member`` record with value 0);
4. a backfill body arrives: a REST snapshot is the full state of its (topic, group,
   flavour), so every row of it that the snapshot does not carry is gone;
5. a snapshot is complete (:meth:`CurrentTable.snapshot_taken`): an aggregate group of a
   covered topic that still holds an interval older than the snapshot's had no data in the
   current interval (the snapshot returned no body for it), so its rows are gone.

An aggregate body of an *older* interval than the table holds (a late frame) changes no row.
The state is bounded by the subscription: the keys of the latest body of each series of each
subscribed topic. It lives in memory: rows that disappear while the producer is not running
are not tombstoned by the next run (docs/kafka-contract.md, "Limits").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from pipeline.core.contract.records import MetricRecord, digest_id

__all__ = ["MEMBER_METRIC", "STATE_METRICS", "CurrentTable", "TableChange", "table_key"]

STATE_METRICS: Final = frozenset({"presence", "routingStatus"})
"""Metrics whose qualifier is the current state: a value, not part of the row key."""
MEMBER_METRIC: Final = "member"
"""Queue membership: one row per (queue, user) while the user is a member."""

_Series = tuple[str, bool, str, str | None]  # group, is-aggregate, metric, media type
_INTERVAL_MS: Final = 30 * 60 * 1000  # the aggregate interval (docs/genesys-api.md §6.1)


@dataclass(frozen=True, slots=True)
class TableChange:
    """One row change of the current-value table.

    Attributes:
        key: the row key (:func:`table_key`).
        record: the row's new value; None for a tombstone (the row no longer exists).
        source_topic: the Genesys topic whose event changed the row.
        at: when the producer saw that event (epoch ms): a tombstone's time.
        tombstone_id: a deterministic id for a tombstone (its ``ce_id``); empty for upserts.
    """

    key: str
    record: MetricRecord | None
    source_topic: str
    at: int
    tombstone_id: str = ""


def table_key(record: MetricRecord) -> str:
    """The row key of ``record`` in the current-value table.

    Returns:
        ``entity_type|entity_id|metric|qualifier|media_type`` with empty strings for nulls;
        the qualifier is empty for :data:`STATE_METRICS` (the state is in the value).
    """
    qualifier = "" if record.metric in STATE_METRICS else (record.qualifier or "")
    return (
        f"{record.entity_type}|{record.entity_id}|{record.metric}|{qualifier}|"
        f"{record.media_type or ''}"
    )


def _group(body: Any) -> str:
    group = body.get("group") if isinstance(body, Mapping) else None
    if not isinstance(group, Mapping):
        return ""
    return orjson.dumps(group, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _tombstone(key: str, topic: str, at: int) -> TableChange:
    return TableChange(key, None, topic, at, digest_id(orjson.dumps(["tombstone", key, at])))


class CurrentTable:
    """Row keys per series of each subscribed topic, and the changes each event makes.

    Pure and single-threaded: the producer's event writer owns one.
    """

    __slots__ = ("_intervals", "_series")

    def __init__(self) -> None:
        self._series: dict[str, dict[_Series, set[str]]] = {}
        # (topic, group) → interval start of the newest aggregate body seen
        self._intervals: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        """How many rows the table tracks (members are not tracked: they need no memory)."""
        return sum(len(keys) for series in self._series.values() for keys in series.values())

    def apply(
        self,
        topic: str,
        body: Any,
        records: Sequence[MetricRecord],
        *,
        at: int,
        snapshot: bool = False,
    ) -> list[TableChange]:
        """The row changes of one event's records (module docstring rules).

        Args:
            topic: the Genesys topic of the event.
            body: its ``eventBody`` (for its ``group``); any value is accepted.
            records: the records mapped from it and kept by the subscription's selection.
            at: when the producer saw the event (epoch ms).
            snapshot: the event is a backfill body: the full state of its series' group.

        Returns:
            Upserts in record order, then tombstones.
        """
        group = _group(body)
        series = self._series.setdefault(topic, {})
        changes: list[TableChange] = []
        fresh: dict[_Series, dict[str, MetricRecord]] = {}
        newest = self._intervals.get((topic, group))
        starts = [r.interval_start for r in records if r.interval_start is not None]
        rolled = bool(starts) and (newest is None or max(starts) > newest)
        if rolled:
            newest = max(starts)
            self._intervals[(topic, group)] = newest
        for record in records:
            key = table_key(record)
            if record.metric == MEMBER_METRIC:
                changes.append(
                    TableChange(key, record, topic, at)
                    if record.value
                    else _tombstone(key, topic, at)
                )
                continue
            start = record.interval_start
            if start is not None and newest is not None and start < newest:
                continue  # a late body of an older interval: the table holds a newer one
            unit = (group, start is not None, record.metric, record.media_type)
            fresh.setdefault(unit, {})[key] = record
        # Series to replace whole: those the body carries, plus, for a rolled interval or a
        # snapshot, every series of the same group and flavour (they had no data this time).
        flavours = {unit[1] for unit in fresh}
        if rolled:
            flavours.add(True)
        replaced: Iterable[_Series] = [
            unit
            for unit in series
            if unit[0] == group
            and unit not in fresh
            and ((rolled and unit[1]) or (snapshot and unit[1] in flavours))
        ]
        for unit in list(replaced):
            changes += [_tombstone(key, topic, at) for key in sorted(series.pop(unit))]
        gone: list[TableChange] = []
        for unit, rows in fresh.items():
            changes += [TableChange(key, record, topic, at) for key, record in rows.items()]
            old = series.get(unit, set())
            gone += [_tombstone(key, topic, at) for key in sorted(old - rows.keys())]
            series[unit] = set(rows)
        return [c for c in changes if c.record is not None] + [
            c for c in changes if c.record is None
        ] + gone  # fmt: skip

    def snapshot_taken(self, topics: Iterable[str], at: int) -> list[TableChange]:
        """Tombstones for aggregate groups of ``topics`` a complete snapshot did not renew.

        A snapshot asks for the interval holding ``at``; a group that still holds an older
        interval got no body from it: Genesys has no data for it in this interval yet.

        Args:
            topics: the topics the snapshot covered.
            at: when it was fetched (epoch ms).

        Returns:
            The tombstones, by topic and group.
        """
        current = at - at % _INTERVAL_MS
        changes: list[TableChange] = []
        for topic in topics:
            series = self._series.get(topic)
            if not series:
                continue
            stale = {
                g for (t, g), start in self._intervals.items() if t == topic and start < current
            }
            for unit in [u for u in series if u[1] and u[0] in stale]:
                changes += [_tombstone(key, topic, at) for key in sorted(series.pop(unit))]
            for group in stale:  # a late body of the old interval must not bring them back
                self._intervals[(topic, group)] = current
        return changes
