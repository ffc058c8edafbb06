"""Topic events → flat metric records (pure; the hot path: orjson dicts, no pydantic).

One :class:`~pipeline.core.contract.records.MetricRecord` per metric datum. ``entity_type`` and
``entity_id`` come from the topic, ``source_topic`` is the topic, ``backfill`` says whether the
event was a :class:`~pipeline.core.genesys.events.BackfillEvent`, ``correlation_id`` is the frame's
``metadata.CorrelationId``. Anything malformed raises :class:`MappingError` with a specific
reason, the raw bytes and the topic, for the dead-letter queue (stage ``map``).

Mapping table (``docs/genesys-api.md`` §6.1, §6.2, §6.4; bodies as the emulator's
:mod:`pipeline.emulator.simulation.topics` builds them):

- ``v2.analytics.queues.{id}.observations`` → one record per ``data[].metrics[]`` entry, entity
  queue, ``media_type`` = ``group.mediaType`` (null for the agent-state group). Instant flavour
  (interval start == end): interval columns null, ``event_time`` = the instant. Aggregate
  flavour (30-min interval): interval columns set, ``event_time`` = ingest time (Genesys sends
  no other time), plus the derived KPIs (below).
- ``v2.analytics.queues.{id}.activity`` (§6.3, §6.8; ``V2QueueObservationObservationCount
  Notification``) → one record per ``results[].data[]`` entry, entity queue, ``media_type`` =
  ``results[].mediaType``, ``count``/``calculated_metric_value`` from the entry, no qualifier
  and no interval. The body carries no time, so ``event_time`` = ingest time (and the event id
  uses it as the instant). Value: as for observations (``oLongest*`` the age).
- ``v2.analytics.users.{id}.aggregates`` → the same, entity user (qualifier = the status or
  presence of tAgentRoutingStatus, tSystemPresence, tOrganizationPresence).
- ``v2.analytics.wrapup.{id}.aggregates`` → the same, entity = the wrap-up code, ``qualifier`` =
  ``group.queueId`` unless the metric has its own (our choice: the queue the code was used in;
  without it two queues' data for one code would share a key and look like duplicates).
- ``v2.users.{id}.presence`` → ``presence``: qualifier ``presenceDefinition.systemPresence``,
  unit ``state``, value null, event_time ``modifiedDate``.
- ``v2.users.{id}.routingStatus`` → ``routingStatus``: qualifier ``routingStatus.status``, unit
  ``state``, value null, event_time ``routingStatus.startTime``.
- ``v2.users.{id}.activity`` → both of the above, for the parts present.
- ``v2.routing.queues.{id}.users`` → ``member``: entity queue, qualifier the user id, value 1.0
  joined / 0.0 left, unit ``count``, event_time = ingest time.

Stats → columns: every key of ``StatisticalSummary`` (§7.6, ``metrics.STAT_KEYS``) has its
column: ``count``, ``countNegative``, ``countPositive``, ``calculatedMetricValue`` whole
numbers (int; a float with a fraction is a dead letter), ``sum``/``min``/``max``/``current``/
``ratio``/``numerator``/``denominator``/``target``/``p95``/``p99`` floats; absent or JSON null →
None; other keys ignored (``stats`` is a free map, §6.2). ``value``/``unit``: stats has
``ratio`` → ratio/``ratio``; ``oLongest*`` → the age in ``ms`` from ``calculatedMetricValue``
(null when nobody waits: then only ``count: 0`` comes): a value of 10^12 or more is an epoch-ms
start time (§6.8 BELIEF for the activity topic), so the age is ``event_time`` minus it (never
below 0); a smaller value is already an age (the emulator's observations, §6.3 UNVERIFIED);
other ``t*`` → sum/``ms``; ``oServiceLevel`` and the other ratio observations without a ratio →
null/``ratio``; ``n*`` and other ``o*`` → count/``count``.

Derived KPIs (``derived`` true), per aggregate-flavour ``data[]`` element, from that element's
unqualified metrics: :mod:`pipeline.core.contract.kpi` (formulas and when each is emitted).
Event ids: :mod:`pipeline.core.contract.identity`; the hasher over the head of the recipe
(:func:`~pipeline.core.contract.identity.id_hasher`) is built once per ``data[]`` element
and copied per record.

Speed: topic routes, interval strings and instants are memoised in bounded dicts (the same
interval repeats across every metric of a frame), each metric's stats are read in one pass,
and records are built with :func:`~pipeline.core.contract.records.new_metric_record`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import orjson

from pipeline.core.contract.activity import map_activity
from pipeline.core.contract.body import (
    COUNT,
    LONGEST,
    MS,
    BodyError,
    age,
    instant,
    interval,
    kinds,
    metric_kind,
    remember,
)
from pipeline.core.contract.identity import id_hasher
from pipeline.core.contract.kpi import KPI_INPUTS, derive_kpis
from pipeline.core.contract.records import METRIC_SCHEMA_VERSION, MetricRecord, new_metric_record
from pipeline.core.genesys.events import BackfillEvent
from pipeline.core.genesys.frames import TopicEvent
from pipeline.core.genesys.topics import parse_topic
from pipeline.errors import FrameError

__all__ = ["MappingError", "map_event"]


class MappingError(FrameError):
    """A topic event that cannot be mapped; carries the raw bytes, topic and reason."""

    stage: ClassVar[str] = "map"
    """The dead-letter stage of this error."""


_STATS, _WRAPUP, _PRESENCE, _ROUTING, _ACTIVITY, _MEMBER, _QUEUE_ACTIVITY = range(7)
_FAMILY_KIND: Final = {
    "v2.analytics.queues.{id}.observations": _STATS,
    "v2.analytics.queues.{id}.activity": _QUEUE_ACTIVITY,
    "v2.analytics.users.{id}.aggregates": _STATS,
    "v2.analytics.wrapup.{id}.aggregates": _WRAPUP,
    "v2.users.{id}.presence": _PRESENCE,
    "v2.users.{id}.routingStatus": _ROUTING,
    "v2.users.{id}.activity": _ACTIVITY,
    "v2.routing.queues.{id}.users": _MEMBER,
}
# Stats key → slot, in the record's column order (count … target, count_negative …
# calculated_metric_value); _WHOLE[slot] says whether the column is an integer.
_STAT_SLOT: Final = {
    "count": 0, "sum": 1, "min": 2, "max": 3, "ratio": 4, "numerator": 5, "denominator": 6,
    "target": 7, "countNegative": 8, "countPositive": 9, "current": 10, "p95": 11, "p99": 12,
    "calculatedMetricValue": 13,
}  # fmt: skip
_WHOLE: Final = (True, *[False] * 7, True, True, False, False, False, True)
_SLOTS: Final = len(_WHOLE)
_NO_EXTRA: Final = (None,) * (_SLOTS - 8)  # the columns schema version 2 added, all null
_routes: dict[str, tuple[int, str, str]] = {}
_dumps = orjson.dumps


def _route(topic: str) -> tuple[int, str, str]:
    route = _routes.get(topic)
    if route is None:
        ref = parse_topic(topic)
        if ref is None:
            raise BodyError(f"unknown topic family: {topic[:200]!r}")
        kind = _FAMILY_KIND.get(ref.family)
        if kind is None:
            raise BodyError(f"no mapping for topic family {ref.family}")
        route = (kind, ref.entity_kind, ref.entity_id)
        remember(_routes, topic, route)
    return route


def _bad_stat(i: int, j: int, key: str, val: object) -> BodyError:
    where = f"eventBody.data[{i}].metrics[{j}].stats.{key}"
    if _WHOLE[_STAT_SLOT[key]] and type(val) is float:
        return BodyError(f"{where} is not a whole number: {val!r}")
    return BodyError(f"{where} is not a number")


def _map_stats(
    body: dict[str, Any], topic: str, kind: int, entity_type: str, entity_id: str,
    ingest_ms: int, backfill: bool, instance: str, correlation_id: str | None,
) -> list[MetricRecord]:  # fmt: skip
    group = body.get("group")
    if type(group) is not dict:
        raise BodyError("eventBody.group is missing or not an object")
    media = group.get("mediaType")
    if media is not None and type(media) is not str:
        raise BodyError("eventBody.group.mediaType is not a string")
    group_qualifier = None
    if kind == _WRAPUP:
        group_qualifier = group.get("queueId")
        if group_qualifier is not None and type(group_qualifier) is not str:
            raise BodyError("eventBody.group.queueId is not a string")
    data = body.get("data")
    if type(data) is not list:
        raise BodyError("eventBody.data is missing or not a list")
    # This loop runs once per metric datum: globals are bound to locals, checks are inline
    # and error texts are built only on failure.
    out: list[MetricRecord] = []
    append, new, dumps, kinds_get, slot_get = (
        out.append, new_metric_record, _dumps, kinds.get, _STAT_SLOT.get
    )  # fmt: skip
    kpi_inputs, whole, slots, no_extra = KPI_INPUTS, _WHOLE, _SLOTS, _NO_EXTRA
    version = METRIC_SCHEMA_VERSION
    for i, element in enumerate(data):
        where = f"eventBody.data[{i}]"
        if type(element) is not dict:
            raise BodyError(f"{where} is not an object")
        start, end = interval(element.get("interval"), where)
        metrics = element.get("metrics")
        if type(metrics) is not list:
            raise BodyError(f"{where}.metrics is missing or not a list")
        inputs: dict[str, list[Any]] | None
        if start == end:  # instant observation (§6.2)
            istart = iend = None
            event_time = start
            inputs = None
            head = id_hasher(topic, entity_id, media, None, None, start)
        else:  # 30-minute aggregate: Genesys sends no event time, the ingest time stands in
            istart, iend, event_time = start, end, ingest_ms
            inputs = {}
            head = id_hasher(topic, entity_id, media, start, end, None)
        for j, entry in enumerate(metrics):
            if type(entry) is not dict:
                raise BodyError(f"{where}.metrics[{j}] is not an object")
            name = entry.get("metric")
            if type(name) is not str:
                raise BodyError(f"{where}.metrics[{j}].metric is missing or not a string")
            mkind = kinds_get(name)
            if mkind is None:
                mkind = metric_kind(name, f"{where}.metrics[{j}]")
            qualifier = entry.get("qualifier")
            if qualifier is not None and type(qualifier) is not str:
                raise BodyError(f"{where}.metrics[{j}].qualifier is not a string")
            stats = entry.get("stats")
            if type(stats) is not dict:
                raise BodyError(f"{where}.metrics[{j}].stats is missing or not an object")
            # One pass over the free stats map (§6.2) into the 14 stat columns in record order
            # (_STAT_SLOT): whole-number columns ints, the rest floats, None when absent or
            # JSON null; other keys ignored.
            vals: list[Any] = [None] * slots
            for key, val in stats.items():
                slot = slot_get(key)
                if slot is None:
                    continue
                vtype = type(val)
                if vtype is int:
                    vals[slot] = val if whole[slot] else float(val)
                elif vtype is float:
                    if whole[slot]:
                        if not val.is_integer():
                            raise _bad_stat(i, j, key, val)
                        val = int(val)
                    vals[slot] = val
                elif val is not None:
                    raise _bad_stat(i, j, key, val)
            (count, total, low, high, ratio, num, den, target, negative, positive, current,
             p95, p99, calculated) = vals  # fmt: skip
            if inputs is not None and qualifier is None and name in kpi_inputs:
                inputs[name] = vals
            if qualifier is None:
                qualifier = group_qualifier
            if ratio is not None:
                value, unit = ratio, "ratio"
            elif mkind == COUNT:
                value, unit = (None if count is None else float(count)), "count"
            elif mkind == MS:
                value, unit = total, "ms"
            elif mkind == LONGEST:
                value, unit = age(calculated, event_time), "ms"
            else:
                value, unit = None, "ratio"
            h = head.copy()
            if (negative is None and positive is None and current is None and p95 is None
                    and p99 is None and calculated is None):  # fmt: skip
                # Without the schema-2 stats the recipe is version 1's: ids stay the same.
                h.update(dumps((name, qualifier, count, total, low, high, ratio, num, den,
                                target, value)))  # fmt: skip
            else:
                h.update(dumps((name, qualifier, count, total, low, high, ratio, num, den,
                                target, value, vals[8:])))  # fmt: skip
            append(new(
                h.hexdigest(), topic, entity_type, entity_id, name, qualifier, media, istart,
                iend, count, total, low, high, ratio, num, den, target, negative, positive,
                current, p95, p99, calculated, value, unit, False, event_time, ingest_ms,
                backfill, instance, correlation_id, version,
            ))  # fmt: skip
        if inputs:
            for metric, value, unit, count, total, num, den, target in derive_kpis(inputs):
                h = head.copy()
                h.update(dumps((metric, group_qualifier, count, total, None, None, None, num,
                                den, target, value)))  # fmt: skip
                append(new(
                    h.hexdigest(), topic, entity_type, entity_id, metric, group_qualifier,
                    media, istart, iend, count, total, None, None, None, num, den, target,
                    *no_extra, value, unit, True, event_time, ingest_ms, backfill, instance,
                    correlation_id, version,
                ))  # fmt: skip
    return out


def _single(
    topic: str, entity_type: str, entity_id: str, metric: str, qualifier: str,
    value: float | None, unit: str, event_time: int, ingest_ms: int, backfill: bool,
    instance: str, correlation_id: str | None,
) -> MetricRecord:  # fmt: skip
    # A state or membership record: no media type, interval or stats; instant data.
    h = id_hasher(topic, entity_id, None, None, None, event_time)
    h.update(_dumps((metric, qualifier, None, None, None, None, None, None, None, None, value)))
    return new_metric_record(
        h.hexdigest(), topic, entity_type, entity_id, metric, qualifier, None, None, None, None,
        None, None, None, None, None, None, None, *_NO_EXTRA, value, unit, False, event_time,
        ingest_ms, backfill, instance, correlation_id, METRIC_SCHEMA_VERSION,
    )  # fmt: skip


def _field(parent: dict[str, Any], key: str, where: str, kind: type) -> Any:
    value = parent.get(key)
    if type(value) is not kind or (kind is str and not value):
        what = "a non-empty string" if kind is str else "an object"
        raise BodyError(f"{where}.{key} is missing or not {what}")
    return value


def _user_states(body: dict[str, Any], kind: int) -> list[tuple[str, str, int]]:
    # → (metric, qualifier, event_time) per state in the body (§6.4 shapes).
    states: list[tuple[str, str, int]] = []
    if kind == _ACTIVITY and "presence" not in body and "routingStatus" not in body:
        raise BodyError("eventBody has neither presence nor routingStatus")
    if kind == _PRESENCE or (kind == _ACTIVITY and "presence" in body):
        where = "eventBody" if kind == _PRESENCE else "eventBody.presence"
        presence = body if kind == _PRESENCE else _field(body, "presence", "eventBody", dict)
        definition = _field(presence, "presenceDefinition", where, dict)
        system = _field(definition, "systemPresence", f"{where}.presenceDefinition", str)
        at = instant(presence.get("modifiedDate"), f"{where}.modifiedDate")
        states.append(("presence", system, at))
    if kind == _ROUTING or (kind == _ACTIVITY and "routingStatus" in body):
        routing = _field(body, "routingStatus", "eventBody", dict)
        status = _field(routing, "status", "eventBody.routingStatus", str)
        at = instant(routing.get("startTime"), "eventBody.routingStatus.startTime")
        states.append(("routingStatus", status, at))
    return states


def _member(body: dict[str, Any]) -> tuple[str, float]:
    # QueueUserEventTopicQueueMember: {id, user: {id}, queueId, joined} (§6.1) → (user, value).
    user = body.get("user")
    user_id = user.get("id") if type(user) is dict else body.get("id")
    if type(user_id) is not str or not user_id:
        raise BodyError("eventBody.user.id (or eventBody.id) is missing or not a string")
    joined = body.get("joined")
    if type(joined) is not bool:
        raise BodyError("eventBody.joined is missing or not a boolean")
    return user_id, 1.0 if joined else 0.0


def _raw(event: TopicEvent | BackfillEvent) -> bytes:
    if isinstance(event, TopicEvent):
        return event.raw
    return orjson.dumps(event.body, default=repr)


def map_event(
    event: TopicEvent | BackfillEvent, *, ingest_ms: int, instance: str
) -> list[MetricRecord]:
    """Map one topic event (live or backfill) to its metric records.

    Args:
        event: the event; its topic decides the mapping (module docstring table).
        ingest_ms: when the producer received the frame (for a backfill event: when the
            snapshot was fetched), epoch milliseconds.
        instance: the producer instance (shard) writing the records.

    Returns:
        The records, in body order (derived KPIs after the metrics of their ``data`` element);
        empty when the body holds no data.

    Raises:
        MappingError: unknown or unmapped topic family, or a missing or ill-typed field; the
            error carries the reason, the raw bytes (``TopicEvent.raw``, or the body as JSON
            for a backfill event) and the topic.
    """
    if isinstance(event, TopicEvent):
        correlation_id, backfill = event.correlation_id, False
    else:
        correlation_id, backfill = None, True
    topic, body = event.topic, event.body
    try:
        kind, entity_type, entity_id = _route(topic)
        if type(body) is not dict:
            raise BodyError("eventBody is not an object")
        if kind <= _WRAPUP:
            return _map_stats(body, topic, kind, entity_type, entity_id, ingest_ms, backfill,
                              instance, correlation_id)  # fmt: skip
        if kind == _QUEUE_ACTIVITY:
            return map_activity(body, topic, entity_type, entity_id, ingest_ms, backfill,
                                 instance, correlation_id)  # fmt: skip
        if kind == _MEMBER:
            user_id, joined = _member(body)
            return [_single(topic, entity_type, entity_id, "member", user_id, joined, "count",
                            ingest_ms, ingest_ms, backfill, instance, correlation_id)]  # fmt: skip
        return [
            _single(topic, entity_type, entity_id, metric, qualifier, None, "state", at,
                    ingest_ms, backfill, instance, correlation_id)
            for metric, qualifier, at in _user_states(body, kind)
        ]  # fmt: skip
    except BodyError as exc:
        raise MappingError(exc.reason, _raw(event), topic) from exc
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # Not expected: every field is checked above. Still a dead letter, never a crash.
        reason = f"malformed eventBody ({type(exc).__name__}: {str(exc)[:200]})"
        raise MappingError(reason, _raw(event), topic) from exc
