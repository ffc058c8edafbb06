"""Validation and parsing of analytics query bodies, shared by the emulator's query endpoints.

Turns the JSON of ``ConversationAggregationQuery``, ``UserAggregationQuery`` and
``QueueObservationQuery`` (docs/genesys-api.md §7) into checked values: an interval in epoch ms,
bucket edges from an ISO-8601 granularity, and a compiled and/or filter. Every rejection is a
:class:`QueryError` carrying a real Genesys status and code (§4.2) and a message that names
the offending field.

Which code the real service uses for which mistake is not documented; the split here is
UNVERIFIED: a value of the wrong JSON type is ``bad.request``, a value outside an enum or an
unparseable interval / duration / time zone is ``invalid.value``, and a missing field or a
rule between fields (end before start, granularity coarser than the interval …) is
``constraint.validation``. Features the emulator does not implement (views, topN, property or
metric predicates) are ``bad.request`` with a message that says so.

What the rules are (docs/genesys-api.md §7.3, §7.4): VERIFIED ones are enforced as written
(an ISO-8601 ``start/end`` interval, an ISO-8601 granularity and one bucket without it, at
most :data:`USER_PREDICATE_LIMIT` userId predicates in a user aggregate query); BELIEF ones
are :class:`QueryRules`, set from the emulator's configuration: the longest interval (31 days
is commonly quoted) and the step a granularity must be a multiple of (PT15M for conversation
aggregates, PT30M for user aggregates: DOC-USERAGG's rule is cut off in our copy).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.core.genesys.metrics import suggest
from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.simulation.model import to_ms

__all__ = [
    "DEFAULT_RULES",
    "MAX_INTERVAL_MS",
    "USER_PREDICATE_LIMIT",
    "Duration",
    "Filter",
    "Predicate",
    "QueryError",
    "QueryRules",
    "bucket_edges",
    "parse_duration",
    "parse_filter",
    "parse_interval",
    "parse_names",
    "parse_time_zone",
    "require_mapping",
]

MAX_INTERVAL_MS = DEFAULTS.query_max_interval_days * 86_400_000
"""The default longest interval of a synchronous aggregate query (§7.4 BELIEF: 31 days)."""
USER_PREDICATE_LIMIT = 100
"""userId predicates one user aggregate query may hold (§7.3 VERIFIED, DOC-USERAGG)."""
_MAX_BUCKETS = 10_000
_DAY_MS = 86_400_000
_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


class QueryError(Exception):
    """A rejected query, as the REST layer should answer it (an ``ErrorBody``, §4.1).

    Attributes:
        status: HTTP status (400).
        code: Genesys error code: ``bad.request``, ``invalid.value`` or
            ``constraint.validation``.
        message: human-readable text naming the field at fault.
    """

    def __init__(self, message: str, code: str = "bad.request", status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class QueryRules:
    """The BELIEF rules of aggregate queries (§7.4), configurable (``EmulatorConfig``).

    Attributes:
        max_interval_days: the longest ``interval`` of a synchronous aggregate query.
        conversation_granularity_minutes: a conversation aggregate ``granularity`` must be a
            multiple of this many minutes (calendar days and months always are).
        user_granularity_minutes: the same for user aggregates.

    Raises:
        ValueError: a value below 1.
    """

    max_interval_days: int = DEFAULTS.query_max_interval_days
    conversation_granularity_minutes: int = DEFAULTS.conversation_granularity_minutes
    user_granularity_minutes: int = DEFAULTS.user_granularity_minutes

    def __post_init__(self) -> None:
        if min(self.max_interval_days, self.conversation_granularity_minutes,
               self.user_granularity_minutes) < 1:  # fmt: skip
            raise ValueError("query rules must be at least 1")


DEFAULT_RULES = QueryRules()
"""The rules with the emulator's defaults."""


def require_mapping(value: object, field: str) -> Mapping[str, object]:
    """``value`` as a JSON object, or a ``bad.request`` naming ``field``."""
    if not isinstance(value, Mapping):
        raise QueryError(f"{field} must be a JSON object")
    return value


def parse_names(
    body: Mapping[str, object], field: str, allowed: Collection[str], *, required: bool
) -> list[str]:
    """A list of enum strings such as ``metrics`` or ``groupBy``, checked against ``allowed``.

    Raises:
        QueryError: missing/empty when required (constraint.validation), not a list of
            strings (bad.request), or an unknown name (invalid.value, with a suggestion).
    """
    raw = body.get(field)
    if raw is None or (required and raw == []):
        if required:
            raise QueryError(f"{field} may not be null or empty", "constraint.validation")
        return []
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise QueryError(f"{field} must be a list of strings")
    for name in raw:
        if name not in allowed:
            hint = suggest(name, allowed)
            extra = f" (did you mean {hint}?)" if hint else ""
            raise QueryError(f"{field}: unknown value '{name}'{extra}", "invalid.value")
    return list(dict.fromkeys(raw))


def _parse_instant(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # UNVERIFIED: a zone-less instant is read as UTC
        moment = moment.replace(tzinfo=UTC)
    return to_ms(moment)


def parse_interval(body: Mapping[str, object], max_days: int = 31) -> tuple[int, int]:
    """The required ``interval`` (``start/end`` or ``start/duration``) as epoch ms.

    Args:
        body: the query.
        max_days: the longest interval accepted (:attr:`QueryRules.max_interval_days`).

    Raises:
        QueryError: missing, unparseable, end not after start, or longer than ``max_days``.
    """
    raw = body.get("interval")
    if raw is None:
        raise QueryError("interval may not be null", "constraint.validation")
    if not isinstance(raw, str):
        raise QueryError("interval must be a string")
    parts = raw.split("/")
    try:
        if len(parts) != 2:
            raise ValueError(raw)
        start = _parse_instant(parts[0])
        if parts[1].startswith("P"):
            end = _step(start, parse_duration(parts[1], "interval"), UTC, 1)
        else:
            end = _parse_instant(parts[1])
    except (ValueError, QueryError) as exc:
        raise QueryError(
            f"interval '{raw}' is not an ISO-8601 interval like "
            "2026-05-04T00:00:00.000Z/2026-05-05T00:00:00.000Z",
            "invalid.value",
        ) from exc
    if end <= start:
        raise QueryError(f"interval '{raw}': end must be after start", "constraint.validation")
    if end - start > max_days * _DAY_MS:
        raise QueryError(
            f"interval '{raw}' is longer than {max_days} days", "constraint.validation"
        )
    return start, end


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO-8601 duration split into calendar months, calendar days and fixed ms."""

    months: int
    days: int
    ms: int


def parse_duration(text: object, field: str) -> Duration:
    """Parse ``PnYnMnWnDTnHnMnS`` (whole numbers).

    Raises:
        QueryError: not a string (bad.request) or not such a duration, or zero
            (invalid.value).
    """
    if not isinstance(text, str):
        raise QueryError(f"{field} must be a string")
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise QueryError(f"{field} '{text}' is not an ISO-8601 duration", "invalid.value")
    part = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    duration = Duration(
        months=part["years"] * 12 + part["months"],
        days=part["weeks"] * 7 + part["days"],
        ms=((part["hours"] * 60 + part["minutes"]) * 60 + part["seconds"]) * 1000,
    )
    if duration == Duration(0, 0, 0):
        raise QueryError(f"{field} '{text}' is zero", "invalid.value")
    return duration


def parse_time_zone(body: Mapping[str, object]) -> ZoneInfo:
    """The optional IANA ``timeZone`` (default UTC).

    Raises:
        QueryError: not a string, or not a known zone (invalid.value).
    """
    raw = body.get("timeZone", "UTC")
    if not isinstance(raw, str):
        raise QueryError("timeZone must be a string")
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise QueryError(f"timeZone '{raw}' is not an IANA time zone", "invalid.value") from exc


def _step(start_ms: int, step: Duration, zone: tzinfo, times: int) -> int:
    if step.months == 0 and step.days == 0:
        return start_ms + step.ms * times
    # Calendar steps move the wall clock in the query's time zone (a DST day is 23 or 25 h).
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start_ms)).astimezone(zone)
    months = local.month - 1 + step.months * times
    year, month = local.year + months // 12, months % 12 + 1
    day = min(local.day, _days_in_month(year, month))
    wall = local.replace(tzinfo=None, year=year, month=month, day=day)
    wall += timedelta(days=step.days * times, milliseconds=step.ms * times)
    return to_ms(wall.replace(tzinfo=zone))


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return (following - timedelta(days=1)).day


def bucket_edges(
    start_ms: int, end_ms: int, granularity: object, zone: ZoneInfo, step_minutes: int = 15
) -> list[int]:
    """Edges ``[start, start+g, …, end]`` of the buckets for an optional granularity.

    Buckets are aligned to the interval start; a last partial bucket ends at the interval end
    (UNVERIFIED). No granularity means one bucket, the whole interval (VERIFIED, §7.4).

    Args:
        start_ms: the interval start (epoch ms).
        end_ms: the interval end (epoch ms).
        granularity: the query's ``granularity`` (None: one bucket).
        zone: the query's time zone (calendar steps follow its wall clock).
        step_minutes: the granularity must be a multiple of this many minutes (BELIEF rule,
            :class:`QueryRules`).

    Raises:
        QueryError: a granularity that is unparseable (invalid.value), not a multiple of
            ``step_minutes``, longer than the interval, or yields too many buckets
            (constraint.validation).
    """
    if granularity is None:
        return [start_ms, end_ms]
    step = parse_duration(granularity, "granularity")
    if step.ms % (step_minutes * 60_000):
        examples = ", ".join(_period(step_minutes * k) for k in (1, 2, 4))
        raise QueryError(
            f"granularity '{granularity}' must be a multiple of {_period(step_minutes)} "
            f"(e.g. {examples}, P1D)",
            "constraint.validation",
        )
    if _step(start_ms, step, zone, 1) > end_ms:
        raise QueryError(
            f"granularity '{granularity}' is longer than the interval", "constraint.validation"
        )
    edges = [start_ms]
    while edges[-1] < end_ms:
        if len(edges) > _MAX_BUCKETS:
            raise QueryError("too many buckets; use a coarser granularity", "constraint.validation")
        edges.append(min(end_ms, _step(start_ms, step, zone, len(edges))))
    return edges


def _period(minutes: int) -> str:
    return f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"


@dataclass(frozen=True, slots=True)
class Predicate:
    """``dimension`` ``operator`` ``value`` (operators matches / exists / notExists)."""

    dimension: str
    operator: str
    value: str | None

    def test(self, value_of: Callable[[str], str | None]) -> bool:
        """Evaluate against a row whose dimension values ``value_of`` returns."""
        actual = value_of(self.dimension)
        if self.operator == "exists":
            return actual is not None
        if self.operator == "notExists":
            return actual is None
        return actual == self.value


@dataclass(frozen=True, slots=True)
class Filter:
    """An and/or node over predicates and nested clauses."""

    type: str
    predicates: tuple[Predicate, ...]
    clauses: tuple[Filter, ...]
    _equals: tuple[tuple[str, frozenset[str | None]], ...] = field(
        init=False, repr=False, compare=False
    )
    _others: tuple[Predicate, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # An "or" of equalities on one dimension (a query may hold 100 queue ids) is one set
        # lookup per row, not 100 comparisons: the queries scan every recorded emission.
        groups: dict[str, set[str | None]] = {}
        others: list[Predicate] = []
        for p in self.predicates:
            if self.type != "and" and p.operator not in ("exists", "notExists"):
                groups.setdefault(p.dimension, set()).add(p.value)
            else:
                others.append(p)
        object.__setattr__(self, "_equals", tuple((d, frozenset(v)) for d, v in groups.items()))
        object.__setattr__(self, "_others", tuple(others))

    def test(self, value_of: Callable[[str], str | None]) -> bool:
        """Evaluate against a row; an empty node is true."""
        if not self.predicates and not self.clauses:
            return True
        if self.type == "and":
            return all(p.test(value_of) for p in self.predicates) and all(
                c.test(value_of) for c in self.clauses
            )
        return (
            any(value_of(d) in values for d, values in self._equals)
            or any(p.test(value_of) for p in self._others)
            or any(c.test(value_of) for c in self.clauses)
        )

    def count(self, dimension: str) -> int:
        """How many predicates in this tree name ``dimension``."""
        own = sum(1 for p in self.predicates if p.dimension == dimension)
        return own + sum(c.count(dimension) for c in self.clauses)

    def dimensions(self) -> set[str]:
        """Every dimension a predicate in this tree mentions."""
        names = {p.dimension for p in self.predicates}
        for clause in self.clauses:
            names |= clause.dimensions()
        return names


def _parse_predicate(raw: object, path: str, dimensions: Collection[str]) -> Predicate:
    item = require_mapping(raw, path)
    kind = item.get("type", "dimension")
    if kind not in ("dimension", "property", "metric"):
        raise QueryError(f"{path}.type: unknown value '{kind}'", "invalid.value")
    if kind != "dimension":
        raise QueryError(f"{path}.type '{kind}' is not supported by the emulator")
    dimension = item.get("dimension")
    if dimension is None:
        raise QueryError(f"{path}.dimension may not be null", "constraint.validation")
    if not isinstance(dimension, str):
        raise QueryError(f"{path}.dimension must be a string")
    if dimension not in dimensions:
        hint = suggest(dimension, dimensions)
        extra = f" (did you mean {hint}?)" if hint else ""
        raise QueryError(f"{path}.dimension: unknown value '{dimension}'{extra}", "invalid.value")
    operator = item.get("operator", "matches")
    if operator not in ("matches", "exists", "notExists"):
        raise QueryError(f"{path}.operator: unknown value '{operator}'", "invalid.value")
    value = item.get("value")
    if operator == "matches":
        if value is None:
            if item.get("range") is not None:
                raise QueryError(f"{path}.range is not supported by the emulator")
            raise QueryError(f"{path}.value may not be null", "constraint.validation")
        if not isinstance(value, str):
            raise QueryError(f"{path}.value must be a string")
    return Predicate(dimension, str(operator), value if isinstance(value, str) else None)


def _parse_node(raw: object, path: str, dimensions: Collection[str], depth: int) -> Filter:
    node = require_mapping(raw, path)
    kind = node.get("type")
    if kind is None:
        raise QueryError(f"{path}.type may not be null", "constraint.validation")
    if kind not in ("and", "or"):
        raise QueryError(f"{path}.type: unknown value '{kind}' (and, or)", "invalid.value")
    predicates = node.get("predicates") or []
    clauses = node.get("clauses") or []
    if not isinstance(predicates, Sequence) or not isinstance(clauses, Sequence):
        raise QueryError(f"{path}.predicates and {path}.clauses must be lists")
    if clauses and depth > 0:
        raise QueryError(f"{path}: clauses cannot be nested")
    return Filter(
        str(kind),
        tuple(
            _parse_predicate(p, f"{path}.predicates[{i}]", dimensions)
            for i, p in enumerate(predicates)
        ),
        tuple(
            _parse_node(c, f"{path}.clauses[{i}]", dimensions, depth + 1)
            for i, c in enumerate(clauses)
        ),
    )


def parse_filter(
    body: Mapping[str, object], dimensions: Collection[str], *, required: bool
) -> Filter | None:
    """The optional (or required) ``filter`` with predicates on ``dimensions`` only.

    Raises:
        QueryError: missing when required, malformed, or naming an unknown dimension.
    """
    raw = body.get("filter")
    if raw is None:
        if required:
            raise QueryError("filter may not be null", "constraint.validation")
        return None
    return _parse_node(raw, "filter", dimensions, 0)
