"""The rules for single values of a subscription file (pure).

:mod:`~pipeline.core.subscription.model` holds the model; this module holds what its validators
check:
ids, names, regions, durations, media types, and metric and topic names per entity kind.
It also reads YAML (:func:`load_yaml`, refusing duplicate keys). Each rule raises
:func:`problem`, a message that names the offending value and, where one is
close, says "did you mean ...?"; :mod:`~pipeline.core.subscription.spec` puts it on one line
with its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    MEDIA_TYPES,
    METRIC_ALIASES,
    QUEUE_ACTIVITY_METRICS,
    QUEUE_OBSERVATION_METRICS,
    UNSUPPORTED_NAMES,
    USER_AGGREGATE_METRICS,
    Alias,
    suggest,
)
from pipeline.core.genesys.regions import REGION_API_HOSTS, login_base
from pipeline.core.genesys.topics import is_uuid
from pipeline.errors import SubscriptionError

__all__ = [
    "KIND_KEYS",
    "QUEUE_ACTIVITY_METRICS",
    "REGION_API_HOSTS",
    "SPEC_TOPICS",
    "MetricRef",
    "SubscriptionKind",
    "check_api_url",
    "check_duration",
    "check_media_type",
    "check_metric",
    "check_non_blank",
    "check_region",
    "check_subscription_name",
    "check_topic",
    "check_uuid",
    "check_version",
    "describe",
    "hint",
    "load_yaml",
    "login_base_url",
    "parse_duration",
    "problem",
]

SubscriptionKind = Literal["queue", "user", "wrapup"]
"""The entity kind a subscription covers (a subset of ``topics.EntityKind``)."""

KIND_KEYS: Final[Mapping[str, SubscriptionKind]] = MappingProxyType(
    {"queues": "queue", "users": "user", "wrapup_codes": "wrapup"}
)
"""The subscription key that selects each kind."""


SPEC_TOPICS: Final[Mapping[SubscriptionKind, tuple[str, ...]]] = MappingProxyType(
    {
        "queue": ("observations", "activity", "users", "conversations"),
        "user": ("aggregates", "presence", "routingStatus", "activity", "conversations"),
        "wrapup": ("aggregates",),
    }
)
"""The topic family keys a subscription may name, per kind; the first one is the default
(it is the topic that carries the kind's metrics)."""

_CATALOGUES: Final[Mapping[SubscriptionKind, frozenset[str]]] = MappingProxyType(
    {
        "queue": QUEUE_OBSERVATION_METRICS
        | QUEUE_ACTIVITY_METRICS
        | CONVERSATION_AGGREGATE_METRICS,
        "user": USER_AGGREGATE_METRICS,
        "wrapup": CONVERSATION_AGGREGATE_METRICS,
    }
)
_LABELS: Final = {"queue": "queue", "user": "user", "wrapup": "wrap-up code"}
_ACCEPTS: Final = {
    "queue": "queue observation metrics (oWaiting, ...) and conversation aggregate metrics "
    "(nOffered, tHandle, ...)",
    "user": "user aggregate metrics (" + ", ".join(sorted(USER_AGGREGATE_METRICS)) + ")",
    "wrapup": "conversation aggregate metrics (nOffered, tHandle, ...)",
}
_DURATION: Final = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class MetricRef(BaseModel):
    """One entry of a subscription's ``metrics``: what the user wrote and what it means.

    Attributes:
        name: the name as written (``offered`` or ``nOffered``).
        metric: the real Genesys metric (``nOffered``).
        alias: for a friendly name, how to read the real metric (stat, scale, note); ``None``
            when the user wrote a real name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    metric: str
    alias: Alias | None = None


def login_base_url(api_url: str) -> str:
    """The OAuth login base for an API base URL (§2: ``//api.`` → ``//login.``)."""
    return login_base(api_url)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration of weeks, days, hours, minutes, seconds (``PT30M``, ``P1D``).

    Raises:
        ValueError: not such a duration, zero, or with years or months (their length varies).
    """
    upper = text.strip().upper()
    if upper.startswith("P") and re.search(r"\d+[YM]", upper.partition("T")[0]):
        raise ValueError(f"'{text}' uses years or months, whose length varies; use days (P30D)")
    match = _DURATION.fullmatch(upper)
    if match is None or upper == "P":
        raise ValueError(f"'{text}' is not an ISO-8601 duration like PT30M, PT1H or P1D")
    delta = timedelta(**{key: int(value or 0) for key, value in match.groupdict().items()})
    if not delta:
        raise ValueError(f"'{text}' is zero")
    return delta


# ----------------------------------------------------------------------------- value checks


def problem(message: str) -> PydanticCustomError:
    """A validation error whose message is used verbatim in the error line."""
    # Passed through the context so braces in the message ({id}) are never formatted.
    return PydanticCustomError("spec", "{problem}", {"problem": message})


def describe(value: object) -> str:
    """What a wrong value is, for "expected X, got Y" messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (quote it: YAML reads yes/no/on/off as true/false)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def hint(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate, or an empty string."""
    found = suggest(name, candidates)
    return f" (did you mean {found}?)" if found else ""


def check_uuid(value: str) -> str:
    """A Genesys id: a UUID, lower-cased."""
    if not is_uuid(value):
        raise problem(
            f"'{value}' is not a UUID (Genesys ids look like 8f7e2c1a-0000-4000-8000-000000000001)"
        )
    return value.lower()


def check_non_blank(value: str) -> str:
    """A name: not empty or blank."""
    if not value.strip():
        raise problem("must not be empty")
    return value


def check_subscription_name(value: str) -> str:
    """A subscription name: a short label safe in logs, headers and file names."""
    if not _NAME.fullmatch(value):
        raise problem(
            f"'{value}' is not a valid subscription name: use up to 64 letters, digits, "
            "'-', '_' and '.' (e.g. support-queues)"
        )
    return value


def check_media_type(value: str) -> str:
    """An analytics media type (``voice``, not the queue settings' ``call``)."""
    if value not in MEDIA_TYPES:
        near = " (did you mean voice?)" if value.lower() in ("call", "calls", "phone") else ""
        raise problem(
            f"unknown media type '{value}'{near or hint(value, MEDIA_TYPES)}; "
            f"choose from {', '.join(MEDIA_TYPES)}"
        )
    return value


def check_duration(value: str) -> str:
    """An ISO-8601 duration (see :func:`parse_duration`), upper-cased."""
    try:
        parse_duration(value)
    except ValueError as exc:
        raise problem(str(exc)) from exc
    return value.strip().upper()


def check_version(value: int) -> int:
    """The file format version."""
    if value != 1:
        raise problem(f"unsupported version {value}; this release reads version 1")
    return value


def check_region(value: str) -> str:
    """An SDK region name (§2.1)."""
    if value not in REGION_API_HOSTS:
        raise problem(f"unknown region '{value}'{hint(value, REGION_API_HOSTS)}")
    return value


def check_api_url(value: str) -> str:
    """An http(s) base URL, without a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise problem(f"'{value}' is not an http(s) base URL like https://api.mypurecloud.ie")
    return value.strip().rstrip("/")


def _home_of(metric: str) -> str | None:
    if metric in QUEUE_OBSERVATION_METRICS:
        return "a queue observation metric"
    if metric in CONVERSATION_AGGREGATE_METRICS:
        return "a conversation aggregate metric"
    if metric in USER_AGGREGATE_METRICS:
        return "a user aggregate metric"
    return None


def check_metric(kind: SubscriptionKind) -> Callable[[object], MetricRef]:
    """The validator of one ``metrics`` entry of a ``kind`` subscription.

    Real names of the kind's catalogue pass as they are; friendly names (``METRIC_ALIASES``)
    are mapped; ``UNSUPPORTED_NAMES`` say why and what to use; a real metric of another kind
    says which kind it belongs to; anything else is unknown, with a suggestion.
    """
    catalogue = _CATALOGUES[kind]
    aliases = [name for name, alias in METRIC_ALIASES.items() if alias.metric in catalogue]

    def check(value: object) -> MetricRef:
        if not isinstance(value, str):
            raise problem(f"expected a metric name, got {describe(value)}")
        alias = METRIC_ALIASES.get(value)
        if value in catalogue:
            return MetricRef(name=value, metric=value)
        if alias is not None and alias.metric in catalogue:
            return MetricRef(name=value, metric=alias.metric, alias=alias)
        if value in UNSUPPORTED_NAMES:
            raise problem(f"'{value}' is not supported: {UNSUPPORTED_NAMES[value]}")
        home = _home_of(alias.metric if alias else value)
        if home is not None:
            what = f"means {alias.metric}, " if alias else "is "
            raise problem(
                f"'{value}' {what}{home}; {_LABELS[kind]} subscriptions take {_ACCEPTS[kind]}"
            )
        raise problem(f"unknown metric '{value}'{hint(value, [*sorted(catalogue), *aliases])}")

    return check


def check_topic(kind: SubscriptionKind) -> Callable[[object], str]:
    """The validator of one ``topics`` entry of a ``kind`` subscription."""
    allowed = SPEC_TOPICS[kind]
    accepts = f"{_LABELS[kind]} subscriptions take {', '.join(allowed)}"

    def check(value: object) -> str:
        if not isinstance(value, str):
            raise problem(f"expected a topic name, got {describe(value)}")
        if value in allowed:
            return value
        for other, keys in SPEC_TOPICS.items():
            if value in keys:
                raise problem(f"'{value}' is a {_LABELS[other]} topic; {accepts}")
        raise problem(f"unknown topic '{value}'{hint(value, allowed)}; {accepts}")

    return check


# ----------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key: construct_mapping below reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str, source: str) -> object:
    """Parse one YAML document safely, refusing duplicate keys.

    Raises:
        SubscriptionError: one line, ``<source>: line L, column C: invalid YAML: <problem>``.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise SubscriptionError([f"{where}: invalid YAML: {exc.problem or exc.context}"]) from exc
    except yaml.YAMLError as exc:
        raise SubscriptionError([f"{source}: invalid YAML: {exc}"]) from exc
