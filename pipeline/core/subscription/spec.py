"""The subscription file: what to stream, in the user's own words, validated before any connection.

Schema (YAML; every mapping rejects unknown keys)::

    version: 1                    # optional; the only version so far
    genesys:                      # optional; credentials never go here (environment only)
      region: eu_west_1           # an SDK region (docs/genesys-api.md §2.1) ... OR
      api_url: https://api.mypurecloud.ie   # an http(s) base URL (the emulator's, say)
    defaults:
      media_types: [voice, chat]  # optional media filter for queue subscriptions
    subscriptions:                # one or more; each names ONE kind of entity
      - name: support-queues      # letters, digits, - _ . ; unique
        queues:                   # by id (a UUID) or by name (resolved by `plan`)
          - id: 8f7e2c1a-0000-4000-8000-000000000001
          - name: Support 01
        metrics: [oWaiting, offered, serviceLevelPercent]   # real or friendly (§9) names
        topics: [observations]    # default: the topic that carries the metrics
        media_types: [voice]      # optional; overrides defaults.media_types
      - name: agents
        users: {ids: [...], members_of_queues: [{name: Support 01}]}
        topics: [presence, routingStatus, aggregates]
      - name: wrapups
        wrapup_codes: [{name: Resolved}]
        metrics: [nConnected, tHandle]
    analytics:                    # optional REST side: availability check, backfill
      granularity: PT30M          # ISO-8601, a multiple of PT15M
      interval: PT1H              # look-back, ISO-8601 days/hours/minutes, <= 31 days

Topics per kind (families in :mod:`pipeline.core.genesys.topics`): queues take ``observations``
(default), ``activity``, ``users``, ``conversations``; users take ``aggregates`` (default),
``presence``, ``routingStatus``, ``activity``, ``conversations``; wrap-up codes take
``aggregates``. Metrics come from the catalogue of the entity kind: queues take queue
observation (``o*``, §7.1) and conversation aggregate (§7.2) metrics, users the user aggregate
metrics (§7.3), wrap-up codes conversation aggregate metrics. A friendly name from
``METRIC_ALIASES`` is kept as written *and* mapped (:class:`MetricRef`). An empty ``metrics``
list means "whatever the topics carry".

Validation runs in two passes and reports every problem of a pass, one line each,
``<path>: <problem>`` (``subscriptions[2].metrics[0]: unknown metric 'oWating' (did you mean
oWaiting?)``). Pass one is the shape and every single value (pydantic, errors translated).
Pass two needs a well-formed file: duplicates, metrics versus topics, and the topic budget.
Duplicates inside one list (the same id, name, metric or topic twice) are *errors*: they are
always a slip in a hand-written file. The same entity in two subscriptions is allowed (each
may pick different metrics); the planner subscribes its topics once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    QUEUE_OBSERVATION_METRICS,
    suggest,
)
from pipeline.core.genesys.topics import MAX_CHANNELS_PER_CLIENT, MAX_TOPICS_PER_CHANNEL
from pipeline.core.subscription.model import (
    TAGS,
    AnalyticsSection,
    DefaultsSection,
    EntityRef,
    GenesysSection,
    QueueSubscription,
    Subscription,
    SubscriptionSpec,
    UserSelection,
    UserSubscription,
    WrapupSubscription,
)
from pipeline.core.subscription.rules import (
    KIND_KEYS,
    QUEUE_ACTIVITY_METRICS,
    REGION_API_HOSTS,
    SPEC_TOPICS,
    MetricRef,
    SubscriptionKind,
    describe,
    hint,
    load_yaml,
    login_base_url,
    parse_duration,
)
from pipeline.errors import SubscriptionError

# What the queue observations topic carries: observations and 30-minute aggregates (§6.2).
_OBSERVATIONS_CARRY: Final = QUEUE_OBSERVATION_METRICS | CONVERSATION_AGGREGATE_METRICS

__all__ = [
    "REGION_API_HOSTS",
    "SPEC_TOPICS",
    "AnalyticsSection",
    "DefaultsSection",
    "EntityRef",
    "GenesysSection",
    "MetricRef",
    "QueueSubscription",
    "Subscription",
    "SubscriptionKind",
    "SubscriptionSpec",
    "TopicCount",
    "UserSelection",
    "UserSubscription",
    "WrapupSubscription",
    "count_topics",
    "load_spec",
    "login_base_url",
    "parse_duration",
    "parse_spec",
    "render_spec_text",
]


def load_spec(path: str | Path, *, oauth_clients: int = 1) -> SubscriptionSpec:
    """Read and validate a subscription file: the core's one I/O exception, a file read.

    Raises:
        SubscriptionError: the file cannot be read, or see :func:`parse_spec`.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SubscriptionError([f"{path}: cannot read the subscription file: {reason}"]) from None
    return parse_spec(text, str(path), oauth_clients=oauth_clients)


def parse_spec(
    text: str, source: str = "<subscriptions>", *, oauth_clients: int = 1
) -> SubscriptionSpec:
    """Validate the YAML text of a subscription file.

    Args:
        text: the file's contents.
        source: the file's name, used in file-level messages (YAML syntax, empty file).
        oauth_clients: how many OAuth clients the shards will use; the topic budget is
            ``oauth_clients × 20 channels × 1,000 topics`` (docs/genesys-api.md §5.4).

    Returns:
        The validated, normalised spec (friendly metric names mapped, ids lower-cased).

    Raises:
        SubscriptionError: every problem of the first failing pass, one line each (see the
            module docstring).
    """
    data = load_yaml(text, source)
    if data is None:
        raise SubscriptionError([f"{source}: the file is empty; it needs a subscriptions list"])
    if not isinstance(data, Mapping):
        raise SubscriptionError(
            [f"{source}: expected a mapping with a subscriptions list, got {describe(data)}"]
        )
    try:
        spec = SubscriptionSpec.model_validate(data)
    except ValidationError as exc:
        raise SubscriptionError(_error_lines(exc)) from None  # no pydantic traceback for users
    problems = _cross_checks(spec, oauth_clients)
    if problems:
        raise SubscriptionError(problems)
    return spec


# ----------------------------------------------------------------------------- topic count


@dataclass(frozen=True, slots=True)
class TopicCount:
    """How many concrete topics a spec implies before names are resolved.

    Attributes:
        known: distinct topics from explicit ids (an entity in two subscriptions counts once).
        pending: references that resolve later through the REST API (names and
            ``members_of_queues``); each adds an unknown number of topics.
    """

    known: int
    pending: int

    def __str__(self) -> str:
        topics = f"{self.known:,} topic{'s' if self.known != 1 else ''}"
        if not self.pending:
            return topics
        refs = "reference resolves" if self.pending == 1 else "references resolve"
        return f"{topics} from explicit ids, plus what {self.pending} {refs} to at plan time"


def count_topics(spec: SubscriptionSpec) -> TopicCount:
    """Count the topics the explicit ids of ``spec`` imply, and the references still pending."""
    seen: set[tuple[str, str, str]] = set()
    pending = 0
    for sub in spec.subscriptions:
        ids, unresolved = _explicit_ids(sub)
        pending += unresolved
        seen.update((sub.kind, key, entity_id) for entity_id in ids for key in sub.topics)
    return TopicCount(len(seen), pending)


def _explicit_ids(sub: Subscription) -> tuple[list[str], int]:
    if isinstance(sub, UserSubscription):
        return list(sub.users.ids), len(sub.users.members_of_queues)
    refs = sub.queues if isinstance(sub, QueueSubscription) else sub.wrapup_codes
    ids = [ref.id for ref in refs if ref.id is not None]
    return ids, len(refs) - len(ids)


# ----------------------------------------------------------------------------- second pass


def _cross_checks(spec: SubscriptionSpec, oauth_clients: int) -> list[str]:
    problems: list[str] = []
    first: dict[str, int] = {}
    for i, sub in enumerate(spec.subscriptions):
        at = f"subscriptions[{i}]"
        if sub.name in first:
            problems.append(
                f"{at}.name: duplicate subscription name '{sub.name}' "
                f"(also subscriptions[{first[sub.name]}])"
            )
        first.setdefault(sub.name, i)
        if isinstance(sub, UserSubscription):
            problems += _duplicates(f"{at}.users.ids", [f"id {u}" for u in sub.users.ids])
            refs = sub.users.members_of_queues
            problems += _duplicates(f"{at}.users.members_of_queues", [r.label for r in refs])
        elif isinstance(sub, QueueSubscription):
            problems += _duplicates(f"{at}.queues", [r.label for r in sub.queues])
        else:
            problems += _duplicates(f"{at}.wrapup_codes", [r.label for r in sub.wrapup_codes])
        problems += _duplicates(f"{at}.metrics", [f"'{m.name}'" for m in sub.metrics])
        problems += _duplicates(f"{at}.topics", [f"'{t}'" for t in sub.topics])
        problems += _metrics_need_topics(at, sub)
    return problems + _budget(spec, oauth_clients)


def _duplicates(path: str, labels: Sequence[str]) -> list[str]:
    field = path.rsplit(".", 1)[-1]
    first: dict[str, int] = {}
    out: list[str] = []
    for j, label in enumerate(labels):
        if label in first:
            out.append(f"{path}[{j}]: duplicate of {field}[{first[label]}] ({label})")
        first.setdefault(label, j)
    return out


def _metrics_need_topics(at: str, sub: Subscription) -> list[str]:
    if not sub.metrics:
        return []
    carriers = ("observations", "activity") if sub.kind == "queue" else ("aggregates",)
    if not set(carriers) & set(sub.topics):
        return [
            f"{at}.topics: metrics arrive only on the {' or '.join(carriers)} topic; "
            f"add {carriers[0]} to topics"
        ]
    if sub.kind != "queue":
        return []
    problems = []
    for j, ref in enumerate(sub.metrics):
        if "observations" not in sub.topics and ref.metric not in QUEUE_ACTIVITY_METRICS:
            problems.append(
                f"{at}.metrics[{j}]: '{ref.name}' arrives only on the observations topic "
                f"(activity carries {', '.join(sorted(QUEUE_ACTIVITY_METRICS))}); "
                "add observations to topics"
            )
        elif "activity" not in sub.topics and ref.metric not in _OBSERVATIONS_CARRY:
            problems.append(
                f"{at}.metrics[{j}]: '{ref.name}' arrives only on the activity topic "
                "(docs/genesys-api.md §6.3); add activity to topics"
            )
    return problems


def _budget(spec: SubscriptionSpec, oauth_clients: int) -> list[str]:
    count = count_topics(spec)
    capacity = oauth_clients * MAX_CHANNELS_PER_CLIENT * MAX_TOPICS_PER_CHANNEL
    if count.known <= capacity:
        return []
    holder = (
        "one OAuth client holds" if oauth_clients == 1 else f"{oauth_clients} OAuth clients hold"
    )
    return [
        f"subscriptions: {count}, but {holder} at most {capacity:,} "
        f"({MAX_CHANNELS_PER_CLIENT} channels × {MAX_TOPICS_PER_CHANNEL:,} topics each, "
        "docs/genesys-api.md §5.4); split the set with --shards N and give each shard its own "
        f"OAuth client: shards that share a client also share its {MAX_CHANNELS_PER_CLIENT} "
        "channels"
    ]


# ----------------------------------------------------------------------------- text


def render_spec_text(spec: SubscriptionSpec) -> str:
    """A compact human summary of a validated spec (what ``validate`` prints)."""
    subs = len(spec.subscriptions)
    lines = [f"{subs} subscription{'s' if subs != 1 else ''}, {count_topics(spec)}"]
    for sub in spec.subscriptions:
        media = spec.media_types_for(sub)
        lines.append(
            f"- {sub.name}: {_entities_text(sub)}; topics: {', '.join(sub.topics)}"
            + (f"; media: {', '.join(media)}" if media else "")
        )
        lines.append(f"    metrics: {', '.join(map(_metric_text, sub.metrics)) or 'all'}")
    base = spec.genesys.api_base_url
    lines.append(f"genesys: {base or 'API URL from the environment (GENESYS_API_URL)'}")
    analytics = spec.analytics
    lines.append(f"analytics: granularity {analytics.granularity}, look-back {analytics.interval}")
    return "\n".join(lines)


def _entities_text(sub: Subscription) -> str:
    if isinstance(sub, UserSubscription):
        ids, queues = len(sub.users.ids), len(sub.users.members_of_queues)
        return f"users: {ids} by id, members of {queues} queue{'s' if queues != 1 else ''}"
    refs = sub.queues if isinstance(sub, QueueSubscription) else sub.wrapup_codes
    by_id = sum(ref.id is not None for ref in refs)
    noun = "queue" if isinstance(sub, QueueSubscription) else "wrap-up code"
    plural = "s" if len(refs) != 1 else ""
    return f"{len(refs)} {noun}{plural} ({by_id} by id, {len(refs) - by_id} by name)"


def _metric_text(ref: MetricRef) -> str:
    alias = ref.alias
    if alias is None:
        return ref.name
    stat = "sum / count" if alias.stat == "mean" else alias.stat
    scale = f" × {alias.scale:g}" if alias.scale != 1 else ""
    derived = " (derived)" if alias.derived else ""
    return f"{ref.name} = {alias.metric} {stat}{scale}{derived}"


# ----------------------------------------------------------------------------- pydantic errors

_TYPE_WORDS: Final = {
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
}


def _error_lines(exc: ValidationError) -> list[str]:
    # loc ("subscriptions", 2, "queue-subscription", "metrics", 0) → subscriptions[2].metrics[0]
    errors = exc.errors(include_url=False)
    # pydantic checks a list's min_length on the items that validated, so a list whose every
    # item failed also reports "too short": drop that echo when its items have their own lines.
    failed = {error["loc"][:-1] for error in errors if len(error["loc"]) > 1}
    lines: list[str] = []
    for error in errors:
        if error["type"] == "too_short" and any(
            loc[: len(error["loc"])] == error["loc"] for loc in failed
        ):
            continue
        path = ""
        for part in error["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part not in TAGS:
                path += f".{part}" if path else str(part)
        lines.append(f"{path or '(top level)'}: {_message(error)}")
    return lines


def _message(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "spec":
        return error["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        model = _model_at(error["loc"][:-1])
        fields = list(model.model_fields) if model is not None else []
        return f"unknown field{hint(str(error['loc'][-1]), fields)}"
    if kind == "subscription_kind":
        return _kind_problem(value)
    if kind == "too_short":
        return "must not be empty"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {describe(value)}"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _kind_problem(value: object) -> str:
    if not isinstance(value, Mapping):
        return f"expected a mapping (a subscription), got {describe(value)}"
    present = [key for key in KIND_KEYS if key in value]
    if len(present) > 1:
        return (
            f"has both {' and '.join(present)}: a subscription covers one kind of entity; "
            "split it in two"
        )
    for key in value:
        near = suggest(str(key), KIND_KEYS)
        if near is not None:
            return (
                f"needs one of queues, users or wrapup_codes (found '{key}': did you mean {near}?)"
            )
    return "needs one of queues, users or wrapup_codes"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    # The model whose fields an unknown key at ``loc`` could have meant.
    model: type[BaseModel] | None = SubscriptionSpec
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        if part in TAGS:
            model = TAGS[part]
            continue
        field = model.model_fields.get(part)
        model = _first_model(field.annotation) if field is not None else None
    return model


def _first_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None
