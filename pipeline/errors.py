"""The exception tree of the pipeline.

::

    PipelineError
    ├── ConfigError            ours: bad configuration, raised before anything starts
    │   └── SubscriptionError  a subscription file that does not validate
    ├── InfrastructureError    local broker / registry could not start or answer
    ├── GenesysError           theirs: the Genesys Cloud API said no
    ├── FrameError             a notification frame we cannot parse (goes to the DLQ)
    ├── PublishError           Kafka refused or lost a record
    ├── SchemaError            a schema is missing, invalid or incompatible
    └── DashboardError         the external dashboard refused a push

Every class says whether retrying can help (``retriable``). Messages are built from safe
fields only: never from request bodies, headers, tokens or secrets.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConfigError",
    "DashboardError",
    "FrameError",
    "GenesysError",
    "InfrastructureError",
    "PipelineError",
    "PublishError",
    "SchemaError",
    "SubscriptionError",
]


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""

    retriable: ClassVar[bool] = False


class ConfigError(PipelineError):
    """The configuration is wrong; fix it and start again."""


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


class FrameError(PipelineError):
    """A notification frame could not be parsed; it carries what its dead letter needs."""

    def __init__(self, reason: str, raw: bytes, topic: str | None = None) -> None:
        self.reason = reason
        self.raw = raw
        self.topic = topic
        super().__init__(reason if topic is None else f"{reason} (topic {topic})")


class PublishError(PipelineError):
    """Kafka refused a record or could not be reached."""

    retriable = True


class SchemaError(PipelineError):
    """An Avro schema is missing, invalid, or incompatible with the registered one."""


class DashboardError(PipelineError):
    """The external dashboard refused a push."""
