"""The exception tree of the pipeline.

::

    PipelineError
    ├── ConfigError            ours: bad configuration (found before start, or by an answer)
    │   ├── SubscriptionError  a subscription file that does not validate
    │   └── DashboardConfigError  (also a DashboardError, below)
    ├── InfrastructureError    local broker / registry could not start or answer
    ├── GenesysError           theirs: the Genesys Cloud API said no
    │   ├── AuthError          the login service refused our client credentials
    │   ├── RateLimitedError   429 after the retries we allow (``retry_after`` seconds)
    │   ├── PagingError        a listing's ``nextUri`` loops, leaves the API or never ends
    │   ├── ApiError           any other error answer (status, code, correlation id)
    │   └── ChannelFailedError a notification channel failed for good (refused, not retried)
    ├── FrameError             a notification frame we cannot parse (goes to the DLQ)
    ├── DecodeError            a Kafka record value a worker cannot decode (bytes, where, why)
    ├── EncodeError            a record value the Avro encoder cannot write (a long > 64 bits)
    ├── PublishError           Kafka refused or lost a record
    │   └── RecordRejectedError  Kafka will never take this record (too large, invalid)
    ├── SchemaError            a schema is missing, invalid or incompatible
    │   └── RegistryUnavailableError  the registry could not be asked (down, hung, 5xx)
    └── DashboardError         the external dashboard refused a push
        └── DashboardConfigError  it refuses every push: a wrong URL or secret

Every class says whether retrying can help (``retriable``) and, when the server said so,
after how long (``retry_after``, seconds; None: use your backoff). For answers from an HTTP
server both follow the one table of :mod:`pipeline.core.http_policy`. Messages are built from
safe fields only: never from request bodies, headers, tokens or secrets.
"""

from __future__ import annotations

from typing import ClassVar

from pipeline.core.http_policy import is_retriable

__all__ = [
    "ApiError",
    "AuthError",
    "ChannelFailedError",
    "ConfigError",
    "DashboardConfigError",
    "DashboardError",
    "DecodeError",
    "EncodeError",
    "FrameError",
    "GenesysError",
    "InfrastructureError",
    "PagingError",
    "PipelineError",
    "PublishError",
    "RateLimitedError",
    "RegistryUnavailableError",
    "SchemaError",
    "SubscriptionError",
]


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""

    retriable: ClassVar[bool] = False
    retry_after: float | None = None


class ConfigError(PipelineError):
    """The configuration is wrong; fix it and start again.

    Raised before anything starts, or when a running service learns it from an answer that
    no retry can change (:class:`DashboardConfigError`).
    """


class SubscriptionError(ConfigError):
    """A subscription file failed validation; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InfrastructureError(PipelineError):
    """Local infrastructure (broker, registry, emulator) could not start or answer."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(message if not log_tail else f"{message}\n--- log ---\n{log_tail}")


class GenesysError(PipelineError):
    """Genesys Cloud answered with an error."""


class AuthError(GenesysError):
    """The login service refused the client credentials (never retried: fix the config)."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        self.status = status
        self.error = error
        super().__init__(
            f"login refused ({status} {error}){': ' + description if description else ''}"
        )


class RateLimitedError(GenesysError):
    """Still throttled (429) after the retries we allow."""

    retriable = True

    def __init__(self, path: str, retry_after: float | None) -> None:
        self.path = path
        self.retry_after = retry_after
        super().__init__(f"rate limited on {path} (retry after {retry_after}s)")


class PagingError(GenesysError):
    """A listing could not be read to its end: its ``nextUri`` links loop back, point
    outside ``/api/v2/``, or keep coming past the page cap (docs/genesys-api.md §8.1).

    Args:
        path: the listing's path.
        problem: what went wrong, readable.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ApiError(GenesysError):
    """An error answer from the Platform API, with the fields of its ``ErrorBody``.

    Args:
        status: the HTTP status.
        code: the Genesys error code (``notification.invalid.topic`` ...), if any.
        message: the error's message text (safe: Genesys puts no secrets in it).
        correlation_id: ``ININ-Correlation-Id``, for Genesys support.
        path: the request path (no query string).
        retry_after: the answer's ``Retry-After`` seconds (capped), if any.

    Status 0 stands for "no answer" (refused, reset, timed out at the last attempt).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        correlation_id: str | None,
        path: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.correlation_id = correlation_id
        self.path = path
        self.retry_after = retry_after
        super().__init__(f"{path}: {status} {code}: {message} (correlation id {correlation_id})")

    @property
    def retriable(self) -> bool:  # type: ignore[override]  # per instance, by the status
        """True when the shared table retries this status (transport, 408, 429, most 5xx)."""
        return is_retriable(self.status or None)


class ChannelFailedError(GenesysError):
    """A notification channel's session failed for good: Genesys refused something that
    retrying cannot heal (credentials, a permission, the topic set).

    Args:
        index: the channel's position in the shard (0-based).
        count: channels in the shard.
        failure: the session's one-line cause (its audit kind and facts).
    """

    def __init__(self, index: int, count: int, failure: str) -> None:
        self.index = index
        self.failure = failure
        super().__init__(f"notification channel {index + 1} of {count} failed for good: {failure}")


class FrameError(PipelineError):
    """A notification frame could not be parsed; it carries what its dead letter needs."""

    def __init__(self, reason: str, raw: bytes, topic: str | None = None) -> None:
        self.reason = reason
        self.raw = raw
        self.topic = topic
        super().__init__(reason if topic is None else f"{reason} (topic {topic})")


class DecodeError(PipelineError):
    """A consumed Kafka value that cannot be decoded; it carries what its dead letter needs.

    Raised for anything wrong with the value itself: no value (a tombstone), not Confluent
    framing (too short, a magic byte other than 0), a schema id the registry does not know,
    a writer schema that does not resolve to this build's reader schema, or an Avro body
    that does not match its schema (truncated, garbage, bytes left over). A registry that
    cannot be reached is not the value's fault and raises :class:`SchemaError` instead.

    Args:
        reason: what is wrong, readable (never the value's content beyond a decoder message).
        raw: the value as consumed (``b""`` for a tombstone).
        topic: the Kafka topic it was read from, if known.
        partition: its partition, if known.
        offset: its offset, if known.
    """

    def __init__(
        self,
        reason: str,
        raw: bytes,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.raw = raw
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = "" if topic is None else f"{topic}[{partition}]@{offset}: "
        super().__init__(f"{where}{reason}")


class EncodeError(PipelineError, ValueError):
    """A record holds a value its Avro schema cannot carry (a number outside ``int``/``long``).

    Writing it anyway would put a wrong number in Kafka; the producer dead-letters the record
    (stage ``encode``) instead.
    """


class PublishError(PipelineError):
    """Kafka refused a record or could not be reached."""

    retriable = True


class RecordRejectedError(PublishError):
    """Kafka will never take this record (too large, invalid): retrying cannot help.

    Args:
        record: the record (a ``pipeline.kafka.producer.OutRecord``), for its dead letter.
        error: librdkafka's error text.
    """

    retriable = False

    def __init__(self, record: object, error: str) -> None:
        self.record = record
        self.error = error
        super().__init__(f"Kafka refuses a record for {getattr(record, 'topic', '?')}: {error}")


class SchemaError(PipelineError):
    """An Avro schema is missing, invalid, or incompatible with the registered one."""


class RegistryUnavailableError(SchemaError):
    """The schema registry could not be asked: unreachable, timed out, 5xx, 408 or 429.

    Not a schema problem: nothing is wrong with the values or the contract, so wait and ask
    again (a worker stops fetching meanwhile; nothing goes to the DLQ).
    """

    retriable = True


class DashboardError(PipelineError):
    """The external dashboard refused a push."""


class DashboardConfigError(DashboardError, ConfigError):
    """The dashboard refuses every push for a reason no batch can fix: 401/403 (a wrong
    secret), 404/405 (a wrong URL), a proxy or redirect. The worker stops; nothing goes to
    the DLQ. Also a :class:`ConfigError`, so the command exits with the configuration code."""
