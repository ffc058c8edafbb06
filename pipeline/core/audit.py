"""The audit vocabulary: every kind of lifecycle fact, with the detail fields it carries.

An :class:`AuditEvent` is a fact worth keeping (a channel was created, a socket dropped, a
dashboard refused a batch). The channel session, the producer service and the workers return
or build them; the shells publish them to ``<prefix>.audit`` as
:class:`~pipeline.core.contract.records.AuditRecord` values. ``kind`` is an
:class:`AuditKind`, a ``StrEnum``: its value is the plain dotted string on the wire.

:data:`AUDIT_KINDS` declares, per kind, what it means, who writes it and its detail fields
(name, type, meaning). ``docs/kafka-contract.md`` shows the same table, and
``tests/unit/test_audit.py`` keeps the two equal.

Spelling of detail keys (one spelling per meaning, everywhere):

- counts are plain plural nouns: ``topics``, ``channels``, ``values``, ``failures``; a
  ``topics`` count also fills the record's ``topic_count`` column;
- durations are seconds and end in ``_s`` (``wait_s``, ``retry_in_s``, ``silent_s``);
  ``expires_in`` (``token.issued``) is the one older exception, kept so its records stay;
- instants are epoch seconds when named ``<x>_at`` (the session's clock) and epoch
  milliseconds when named ``<x>_ms`` (like the record columns);
- ``status`` is an HTTP status (null: no answer), ``reason`` a short safe text, never a
  token, header or body.

Checking: :func:`check_details` lists how a mapping departs from its kind's declaration.
:class:`AuditEvent` runs it when built and issues an :class:`AuditDetailsWarning` for a
mismatch: the test suite turns warnings into errors, so every event any test builds is
checked, while a running service only warns instead of failing over a malformed fact.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "AUDIT_KINDS",
    "AuditDetailsWarning",
    "AuditEvent",
    "AuditKind",
    "DetailField",
    "FieldType",
    "KindSpec",
    "check_details",
]


class AuditKind(enum.StrEnum):
    """What happened; the value is the ``kind`` string of the audit record."""

    # the producer service
    SUBSCRIPTION_VALIDATED = "subscription.validated"
    SUBSCRIPTION_PLANNED = "subscription.planned"
    AVAILABILITY_REPORT = "availability.report"
    TOKEN_ISSUED = "token.issued"  # noqa: S105 - a kind, not a password
    THROTTLED = "throttled"
    PUBLISH_FAILED = "publish.failed"
    PRODUCER_REPLACED = "producer.replaced"
    PRODUCER_HEARTBEAT = "producer.heartbeat"
    AUDIT_SUPPRESSED = "audit.suppressed"
    CHANNEL_RESTARTED = "channel.restarted"
    # the channel session
    TOKEN_REFRESHED = "token.refreshed"  # noqa: S105 - a kind, not a password
    TOKEN_FAILED = "token.failed"  # noqa: S105 - a kind, not a password
    TOKEN_REJECTED = "token.rejected"  # noqa: S105 - a kind, not a password
    CHANNEL_CREATED = "channel.created"
    CHANNEL_CREATE_FAILED = "channel.create.failed"
    CHANNEL_CREATE_REJECTED = "channel.create.rejected"
    CHANNEL_RECREATE_EXHAUSTED = "channel.recreate_exhausted"
    CHANNEL_SUBSCRIBED = "channel.subscribed"
    SUBSCRIBE_FAILED = "subscribe.failed"
    SUBSCRIBE_REJECTED = "subscribe.rejected"
    SUBSCRIPTION_REJECTED = "subscription.rejected"
    CHANNEL_EXTENDED = "channel.extended"
    CHANNEL_EXTEND_FAILED = "channel.extend.failed"
    CHANNEL_CHECK_FAILED = "channel.check.failed"
    CHANNEL_GONE = "channel.gone"
    CHANNEL_ROLLED_OVER = "channel.rolled_over"
    SOCKET_CONNECTED = "socket.connected"
    SOCKET_REPLACED = "socket.replaced"
    SOCKET_OPEN_FAILED = "socket.open_failed"
    SOCKET_CLOSING = "socket.closing"
    SOCKET_DISCONNECTED = "socket.disconnected"
    HEARTBEAT_TIMEOUT = "heartbeat.timeout"
    SYSTEM_NO_LONGER_SUBSCRIBED = "system.no_longer_subscribed"
    SYSTEM_TOKEN_REVOKED = "system.token_revoked"  # noqa: S105 - a kind, not a password
    SYSTEM_SUBSCRIPTION_CHANGED = "system.subscription_changed"
    SYSTEM_UNKNOWN = "system.unknown"
    GAP_OPENED = "gap.opened"
    GAP_CLOSED = "gap.closed"
    BACKFILL_FAILED = "backfill.failed"
    BACKFILL_FINISHED = "backfill.finished"
    BACKFILL_ABANDONED = "backfill.abandoned"
    SESSION_STOPPED = "session.stopped"
    # the workers
    FRESHNESS_SLO_BREACHED = "freshness.slo_breached"
    FRESHNESS_SLO_RECOVERED = "freshness.slo_recovered"
    DASHBOARD_REJECTED = "dashboard.rejected"
    SERVICE_DEGRADED = "service.degraded"
    SERVICE_RECOVERED = "service.recovered"


FieldType = Literal["int", "float", "str", "bool", "list"]
"""A detail's JSON type; ``float`` also takes an int, no type takes a bool but ``bool``."""


@dataclass(frozen=True, slots=True)
class DetailField:
    """One key of an audit event's ``details``.

    Attributes:
        name: the key.
        type: its JSON type.
        meaning: what it says, with its unit.
        nullable: whether it may be null.
    """

    name: str
    type: FieldType
    meaning: str
    nullable: bool = False

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has this field's type (or is None for a nullable field)."""
        if value is None:
            return self.nullable
        if isinstance(value, bool):
            return self.type == "bool"
        return isinstance(value, _PYTHON_TYPES[self.type])


_PYTHON_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "int": int,
    "float": (int, float),
    "str": str,
    "bool": bool,
    "list": (list, tuple),
}


@dataclass(frozen=True, slots=True)
class KindSpec:
    """The declaration of one :class:`AuditKind`.

    Attributes:
        meaning: what happened.
        writer: who writes it (``session``, ``producer``, ``freshness worker`` ...).
        fields: the keys of ``details``, all present in every event of the kind.
        columns: the :class:`~pipeline.core.contract.records.AuditRecord` columns besides
            ``details_json`` that it fills (``topic_count``, ``gap_seconds``).
    """

    meaning: str
    writer: str
    fields: tuple[DetailField, ...] = ()
    columns: tuple[str, ...] = ()


# Fields several kinds carry, declared once so they read the same wherever they appear.
_STATUS = DetailField(
    "status", "int", "HTTP status of the answer; null when there was none (network, timeout)",
    nullable=True,
)  # fmt: skip
_FAILURE = DetailField("reason", "str", "what failed, in a short safe text")
_RETRY_IN = DetailField("retry_in_s", "float", "seconds until the next attempt")
_SOCKET_ID = DetailField("socket_id", "int", "the session's number of the socket (1, 2, ...)")
_EXPIRES_AT = DetailField("expires_at", "float", "when the channel expires (epoch seconds)")
_SYSTEM_REASON = DetailField(
    "reason", "str", "the message body's `reason`, if it had one", nullable=True
)
_BACKFILL = DetailField("backfill", "str", "which backfill: `gap` or `initial`")
_BACKFILL_REASON = DetailField("reason", "str", "why the last attempt failed (empty when ok)")
_TOPICS = DetailField("topics", "int", "how many Genesys topics (also in `topic_count`)")
_SLO = (
    DetailField("slo", "str", "the objective: `latency_p95` or `stale_keys`"),
    DetailField("family", "str", "metric family (`observation`, `aggregate` ...)"),
    DetailField("entity_type", "str", "`queue`, `user` or `wrapup`"),
    DetailField("value", "float", "the p95 in seconds, or the number of stale keys"),
    DetailField("threshold", "float", "the limit it is held to"),
    DetailField("window_start_ms", "int", "start of the window that showed it (epoch ms)"),
    DetailField("window_end_ms", "int", "end of that window (epoch ms); also `at`"),
)
_REST_FAILED = (_STATUS, _FAILURE, _RETRY_IN)
_REJECTED = (_STATUS, _FAILURE)
_BACKFILL_DONE = (
    _BACKFILL,
    _BACKFILL_REASON,
    DetailField("failures", "int", "failed attempts before this outcome"),
)

_DEGRADATION = (
    DetailField("reason", "str", "which upstream: `genesys`, `kafka` or `dashboard`"),
    DetailField("detail", "str", "what was seen, in a short safe text"),
)

_PRODUCER, _SESSION = "producer", "session"

AUDIT_KINDS: Final[Mapping[AuditKind, KindSpec]] = {
    AuditKind.SUBSCRIPTION_VALIDATED: KindSpec(
        "a producer process started with a valid subscription file", _PRODUCER,
        (DetailField("subscriptions", "int", "subscriptions in the file"),),
    ),
    AuditKind.SUBSCRIPTION_PLANNED: KindSpec(
        "the producer's shard of the plan", _PRODUCER,
        (
            DetailField("shard", "int", "this instance's shard (0-based)"),
            DetailField("shards", "int", "shards in the plan"),
            DetailField("channels", "int", "notification channels of this shard"),
            _TOPICS,
        ),
        ("topic_count",),
    ),
    AuditKind.AVAILABILITY_REPORT: KindSpec(
        "which metrics returned data for which entities", _PRODUCER,
        (DetailField("metrics", "list", "per metric: subscription, metric, with_data, "
                     "without_data (entity ids)"),),
    ),
    AuditKind.TOKEN_ISSUED: KindSpec(
        "the login service issued an access token", _PRODUCER,
        (DetailField("expires_in", "float", "seconds the token is valid"),),
    ),
    AuditKind.THROTTLED: KindSpec(
        "Genesys answered 429; the call waits", _PRODUCER,
        (
            DetailField("path", "str", "the request path (`/oauth/token` for the login)"),
            DetailField("wait_s", "float", "seconds waited before the retry"),
        ),
    ),
    AuditKind.PUBLISH_FAILED: KindSpec(
        "Kafka did not acknowledge records in time; they are sent again (at most one fact per "
        "topic a minute)", _PRODUCER,
        (
            DetailField("topic", "str", "the Kafka topic"),
            DetailField("error", "str", "librdkafka's error text"),
            DetailField("retrying", "bool", "whether the records are sent again"),
            DetailField("records", "int", "failed deliveries to the topic since the last fact"),
        ),
    ),
    AuditKind.PRODUCER_REPLACED: KindSpec(
        "the Kafka producer hit a fatal error and was recreated", _PRODUCER,
        (
            DetailField("reason", "str", "the fatal error"),
            DetailField("resent", "int", "unacknowledged records sent again"),
        ),
    ),
    AuditKind.PRODUCER_HEARTBEAT: KindSpec(
        "the producer is alive (every `PIPELINE_HEARTBEAT_S`)", _PRODUCER,
        (
            DetailField("channels", "int", "notification channels"),
            DetailField("channels_live", "int", "channels with a streaming socket"),
            DetailField("in_flight", "int", "records sent, not yet acknowledged"),
            DetailField("delivered", "int", "records acknowledged since start"),
            DetailField("dead_letters", "int", "dead letters since start"),
            DetailField("dead_letters_since_last", "int", "dead letters since the last heartbeat"),
        ),
    ),
    AuditKind.AUDIT_SUPPRESSED: KindSpec(
        "the producer's own facts overflowed their bounded queue (Kafka down) and were only "
        "counted", _PRODUCER,
        (
            DetailField("facts", "int", "facts not written"),
            DetailField("kinds", "list", "`kind=count` per kind not written"),
        ),
    ),
    AuditKind.CHANNEL_RESTARTED: KindSpec(
        "a channel stream crashed (or gave up creating channels) and runs again with a new "
        "channel", _PRODUCER,
        (
            DetailField("reason", "str", "what ended it, in a short safe text"),
            DetailField("restarts", "int", "restarts of this channel stream since start"),
            _RETRY_IN,
        ),
    ),
    AuditKind.TOKEN_REFRESHED: KindSpec(
        "the session got a token", _SESSION,
        (DetailField("forced", "bool", "the cached token was refused (401, token_revoked)"),),
    ),
    AuditKind.TOKEN_FAILED: KindSpec("getting a token failed; retried", _SESSION, _REST_FAILED),
    AuditKind.TOKEN_REJECTED: KindSpec(
        "the login service refused the credentials for good (4xx); the session stops", _SESSION,
        _REJECTED,
    ),
    AuditKind.CHANNEL_CREATED: KindSpec(
        "a notification channel was created", _SESSION, (_EXPIRES_AT,)
    ),
    AuditKind.CHANNEL_CREATE_FAILED: KindSpec(
        "creating a channel failed; retried", _SESSION, _REST_FAILED
    ),
    AuditKind.CHANNEL_CREATE_REJECTED: KindSpec(
        "creating a channel was refused for good (4xx); the session stops", _SESSION, _REJECTED
    ),
    AuditKind.CHANNEL_RECREATE_EXHAUSTED: KindSpec(
        "channels kept failing before going live; the session stops", _SESSION,
        (DetailField("channels_created", "int", "channels created in a row"),),
    ),
    AuditKind.CHANNEL_SUBSCRIBED: KindSpec(
        "the channel's topics were subscribed", _SESSION, (_TOPICS,), ("topic_count",)
    ),
    AuditKind.SUBSCRIBE_FAILED: KindSpec("subscribing failed; retried", _SESSION, _REST_FAILED),
    AuditKind.SUBSCRIBE_REJECTED: KindSpec(
        "a call was refused for good (4xx other than a channel create); the session stops",
        _SESSION, _REJECTED,
    ),
    AuditKind.SUBSCRIPTION_REJECTED: KindSpec(
        "Genesys refused some topics of a subscribe or extension (permissions, §5.6); the "
        "channel streams the rest", _SESSION,
        (
            _TOPICS,
            DetailField("topic_names", "list", "the refused topics, at most the first 20"),
            DetailField("reason", "str", "the distinct `rejectionReason`s, `; `-joined"),
            DetailField("missing_permissions", "list", "the distinct permissions Genesys named"),
            DetailField("call", "str", "`subscribe` or `channel.extend`"),
        ),
        ("topic_count",),
    ),
    AuditKind.CHANNEL_EXTENDED: KindSpec(
        "re-subscribing extended the channel's life", _SESSION, (_EXPIRES_AT,)
    ),
    AuditKind.CHANNEL_EXTEND_FAILED: KindSpec(
        "extending the channel failed; retried", _SESSION, _REST_FAILED
    ),
    AuditKind.CHANNEL_CHECK_FAILED: KindSpec(
        "checking whether the channel exists failed; retried", _SESSION, _REST_FAILED
    ),
    AuditKind.CHANNEL_GONE: KindSpec("the channel no longer exists (HEAD 404)", _SESSION),
    AuditKind.CHANNEL_ROLLED_OVER: KindSpec(
        "a new channel streams in place of an old one", _SESSION,
        (DetailField("previous", "str", "the channel id it replaced"),),
    ),
    AuditKind.SOCKET_CONNECTED: KindSpec("a WebSocket streams", _SESSION, (_SOCKET_ID,)),
    AuditKind.SOCKET_REPLACED: KindSpec(
        "a new socket on the same channel replaced the old one (after socket_closing)",
        _SESSION,
        (DetailField("previous_socket_id", "int", "the socket it replaced"),),
    ),
    AuditKind.SOCKET_OPEN_FAILED: KindSpec(
        "a WebSocket did not open", _SESSION,
        (_SOCKET_ID, _STATUS, _FAILURE),
    ),
    AuditKind.SOCKET_CLOSING: KindSpec(
        "the server announced it will close the socket", _SESSION,
        (_SOCKET_ID, DetailField("replacing", "bool", "a replacement socket is being opened")),
    ),
    AuditKind.SOCKET_DISCONNECTED: KindSpec(
        "the streaming socket was lost", _SESSION,
        (
            _SOCKET_ID,
            DetailField("cause", "str", "`socket.dropped`, `heartbeat.timeout`, ..."),
            DetailField("code", "int", "the WebSocket close code, if any", nullable=True),
            DetailField("reason", "str", "the close reason (may be empty)"),
        ),
    ),
    AuditKind.HEARTBEAT_TIMEOUT: KindSpec(
        "no heartbeat or pong in time; the socket is closed", _SESSION,
        (DetailField("silent_s", "float", "seconds since the socket's last frame"),),
    ),
    AuditKind.SYSTEM_NO_LONGER_SUBSCRIBED: KindSpec(
        "Genesys ended the channel's subscriptions", _SESSION, (_SYSTEM_REASON,)
    ),
    AuditKind.SYSTEM_TOKEN_REVOKED: KindSpec(
        "Genesys revoked the token the channel was made with", _SESSION, (_SYSTEM_REASON,)
    ),
    AuditKind.SYSTEM_SUBSCRIPTION_CHANGED: KindSpec(
        "Genesys changed the channel's subscriptions (audited only)", _SESSION,
        (_SYSTEM_REASON,),
    ),
    AuditKind.SYSTEM_UNKNOWN: KindSpec(
        "a `v2.system.*` message of a kind we do not know (audited only)", _SESSION,
        (_SYSTEM_REASON, DetailField("system_kind", "str", "the word after `v2.system.`")),
    ),
    AuditKind.GAP_OPENED: KindSpec(
        "the stream stopped being live", _SESSION,
        (DetailField("started_at", "float", "the last frame before the loss (epoch seconds)"),),
    ),
    AuditKind.GAP_CLOSED: KindSpec(
        "the stream is live again; written from the session's `Gap`", "producer (from the Gap)",
        (
            DetailField("started_at_ms", "int", "the last frame before the loss (epoch ms)"),
            DetailField("ended_at_ms", "int", "when a socket streamed again (epoch ms); `at`"),
            DetailField("reason", "str", "what broke it: `socket.dropped`, ..."),
        ),
        ("gap_seconds", "topic_count"),
    ),
    AuditKind.BACKFILL_FAILED: KindSpec(
        "a snapshot backfill failed; retried", _SESSION, (_BACKFILL, _BACKFILL_REASON, _RETRY_IN)
    ),
    AuditKind.BACKFILL_FINISHED: KindSpec("a snapshot backfill finished", _SESSION, _BACKFILL_DONE),
    AuditKind.BACKFILL_ABANDONED: KindSpec(
        "a snapshot backfill failed too often and was given up", _SESSION, _BACKFILL_DONE
    ),
    AuditKind.SESSION_STOPPED: KindSpec(
        "the session ended (stop requested, or a failure it cannot recover from)", _SESSION,
        (DetailField("reason", "str", "`stop requested` or the failure's kind"),),
    ),
    AuditKind.FRESHNESS_SLO_BREACHED: KindSpec(
        "a freshness objective was breached", "freshness worker", _SLO
    ),
    AuditKind.FRESHNESS_SLO_RECOVERED: KindSpec(
        "a breached freshness objective is met again", "freshness worker", _SLO
    ),
    AuditKind.DASHBOARD_REJECTED: KindSpec(
        "the dashboard refused a batch for good (4xx); it went to the DLQ", "dashboard worker",
        (
            _STATUS,
            DetailField("idempotency_key", "str", "the batch's `Idempotency-Key`"),
            DetailField("values", "int", "values in the batch"),
        ),
    ),
    AuditKind.SERVICE_DEGRADED: KindSpec(
        "an upstream went away; the service keeps running and stays ready (metric "
        "`genesys_pipeline_degraded{reason}` is 1)", "producer, dashboard worker", _DEGRADATION,
    ),
    AuditKind.SERVICE_RECOVERED: KindSpec(
        "an upstream that was away is back (`genesys_pipeline_degraded{reason}` is 0)",
        "producer, dashboard worker", _DEGRADATION,
    ),
}  # fmt: skip
"""Every kind's declaration, in the order of :class:`AuditKind`."""


class AuditDetailsWarning(UserWarning):
    """An :class:`AuditEvent` does not match its kind's declaration (a bug in its writer)."""


def check_details(kind: object, details: Mapping[str, Any]) -> list[str]:
    """How ``details`` departs from the declaration of ``kind``.

    Args:
        kind: the event's kind (an :class:`AuditKind`; anything else is one problem).
        details: the event's details.

    Returns:
        One line per problem (missing key, unexpected key, wrong type); empty when it fits.
    """
    if not isinstance(kind, AuditKind):
        return [f"kind {kind!r} is not an AuditKind"]
    declared = {f.name: f for f in AUDIT_KINDS[kind].fields}
    problems = [f"{kind}: missing {name!r}" for name in declared if name not in details]
    for name, value in details.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(f"{kind}: unexpected {name!r}")
        elif not spec.accepts(value):
            want = f"{spec.type} or null" if spec.nullable else spec.type
            problems.append(f"{kind}: {name!r} is {type(value).__name__}, declared {want}")
    return problems


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A lifecycle fact worth keeping: no secrets in ``details``, ever.

    Building one checks ``details`` against :data:`AUDIT_KINDS` and issues an
    :class:`AuditDetailsWarning` on a mismatch (see the module docstring).

    Attributes:
        kind: what happened.
        at: when (epoch seconds).
        channel_id: the channel concerned, if any.
        details: the kind's detail fields (JSON-able: numbers, strings, lists).
    """

    kind: AuditKind
    at: float
    channel_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = check_details(self.kind, self.details)
        if problems:
            warnings.warn("; ".join(problems), AuditDetailsWarning, stacklevel=3)
