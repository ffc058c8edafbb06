"""Reading the fields of a Genesys ``eventBody``: instants, intervals, metric kinds, numbers (pure).

Shared by the mappings of :mod:`pipeline.core.contract.mapping` (stats bodies, states,
membership) and :mod:`pipeline.core.contract.activity` (the queue activity topic). Each reader
raises :class:`BodyError` with a reason that names the field (``eventBody.data[0].interval is
not 'start/end': ...``); :func:`~pipeline.core.contract.mapping.map_event` adds the raw bytes and
the topic and turns it into a dead letter.

Speed: the same interval string repeats across every metric of a frame and the same metric
names across frames, so instants, intervals and metric kinds are memoised in dicts that are
cleared when they reach :data:`MEMO_LIMIT` entries (bounded memory, no LRU bookkeeping).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pipeline.core.genesys.metrics import metric_unit

__all__ = [
    "COUNT",
    "EPOCH_MS_FLOOR",
    "LONGEST",
    "MEMO_LIMIT",
    "MS",
    "RATIO",
    "BodyError",
    "age",
    "instant",
    "interval",
    "kinds",
    "metric_kind",
    "parse_instant",
    "remember",
    "whole",
]

COUNT, MS, RATIO, LONGEST = range(4)
"""How a metric's value is read: a count, a duration in ms, a ratio, or an ``oLongest*`` age."""
EPOCH_MS_FLOOR: Final = 10**12
"""2001-09-09 in epoch ms: a ``calculatedMetricValue`` this big is an instant, not an age."""
MEMO_LIMIT = 4096
"""Entries a memo table holds before it is cleared."""

_UNIT_KIND: Final = {"count": COUNT, "ms": MS, "ratio": RATIO}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)

kinds: dict[str, int] = {}
"""Memo: metric name → how its value is read (see :func:`metric_kind`)."""
_instants: dict[str, int] = {}
_intervals: dict[str, tuple[int, int]] = {}


class BodyError(Exception):
    """A body field that is missing or ill-typed; ``reason`` names it.

    Args:
        reason: what is wrong and where, e.g. ``eventBody.group is missing or not an object``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def remember(memo: dict[str, Any], key: str, value: Any) -> None:
    """Store ``key`` in a memo table, clearing it first when it is full."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def metric_kind(name: str, where: str) -> int:
    """How the value of metric ``name`` is read: :data:`COUNT`, :data:`MS`, :data:`RATIO` or
    :data:`LONGEST` (from its prefix, :func:`~pipeline.core.genesys.metrics.metric_unit`).

    Raises:
        BodyError: ``name`` is not shaped like a Genesys metric name (``where.metric``).
    """
    kind = kinds.get(name)
    if kind is None:
        try:
            kind = _UNIT_KIND[metric_unit(name)]
        except ValueError:
            raise BodyError(f"{where}.metric {name[:100]!r} is not a Genesys metric name") from None
        if name.startswith("oLongest"):
            kind = LONGEST
        remember(kinds, name, kind)
    return kind


def instant(text: object, where: str) -> int:
    """An ISO-8601 instant with an offset, in epoch ms.

    Raises:
        BodyError: missing, not a string, unparseable or without a UTC offset.
    """
    if type(text) is not str:
        raise BodyError(f"{where} is missing or not a string")
    ms = _instants.get(text)
    if ms is None:
        ms = parse_instant(text, where)
        remember(_instants, text, ms)
    return ms


def parse_instant(text: str, where: str) -> int:
    """:func:`instant` without the memo.

    Raises:
        BodyError: unparseable, or without a UTC offset.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BodyError(f"{where} is not an ISO-8601 instant: {text[:64]!r}") from None
    if moment.utcoffset() is None:
        raise BodyError(f"{where} has no UTC offset: {text[:64]!r}")
    return (moment - _EPOCH) // _ONE_MS


def interval(text: object, where: str) -> tuple[int, int]:
    """A ``start/end`` interval (``where.interval``) as epoch ms; start may equal end.

    Raises:
        BodyError: missing, not ``start/end``, an unparseable instant, or ending before it starts.
    """
    if type(text) is not str:
        raise BodyError(f"{where}.interval is missing or not a string")
    span = _intervals.get(text)
    if span is None:
        start, sep, end = text.partition("/")
        if not sep or "/" in end:
            raise BodyError(f"{where}.interval is not 'start/end': {text[:100]!r}")
        span = (
            parse_instant(start, f"{where}.interval"),
            parse_instant(end, f"{where}.interval"),
        )
        if span[1] < span[0]:
            raise BodyError(f"{where}.interval ends before it starts: {text[:100]!r}")
        remember(_intervals, text, span)
    return span


def age(calculated: int | None, event_time: int) -> float | None:
    """The age in ms an ``oLongest*`` ``calculatedMetricValue`` stands for.

    docs/genesys-api.md §6.8 believes the value is the epoch-ms start of the longest
    conversation (BELIEF); the emulator's observations send an age. A value of
    :data:`EPOCH_MS_FLOOR` or more is a start, so the age is ``event_time`` minus it (never
    below 0); a smaller value is already an age.

    Args:
        calculated: the ``calculatedMetricValue`` (None when nobody waits or interacts).
        event_time: when the value was true (epoch ms).

    Returns:
        The age in ms, or None when ``calculated`` is None.
    """
    if calculated is None:
        return None
    if calculated >= EPOCH_MS_FLOOR:
        return float(max(0, event_time - calculated))
    return float(calculated)


def whole(value: object, where: str) -> int | None:
    """An integer field (a float with no fraction is accepted, as the SDK serialises them).

    Raises:
        BodyError: a float with a fraction, or not a number.
    """
    if value is None or type(value) is int:
        return value
    if type(value) is float:
        if value.is_integer():
            return int(value)
        raise BodyError(f"{where} is not a whole number: {value!r}")
    raise BodyError(f"{where} is not a number")
