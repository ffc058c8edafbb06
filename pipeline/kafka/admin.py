"""Topic administration with confluent-kafka's AdminClient, and the contract's topic settings.

:data:`TOPIC_CONFIG` is the one table of the settings the services create the contract's
topics with (deploy/base/topics.yaml mirrors it for Strimzi). The replication factor is the
broker's ``default.replication.factor`` unless configured (``-1`` in CreateTopics, KIP-464).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # admin re-exports it without __all__

from pipeline.errors import PublishError

__all__ = [
    "BROKER_DEFAULT_REPLICATION",
    "SINGLE_PARTITION",
    "TOPIC_CONFIG",
    "TopicSpec",
    "contract_topic_specs",
    "ensure_topics",
]

log = logging.getLogger(__name__)


BROKER_DEFAULT_REPLICATION: Final = -1
"""CreateTopics' "use the broker's ``default.replication.factor``" (KIP-464, Kafka 2.4)."""

_HOUR_MS: Final = 3_600_000
TOPIC_CONFIG: Final[Mapping[str, Mapping[str, str]]] = {
    "metrics": {"cleanup.policy": "delete"},
    # The changelog table: small and hot (the same keys change every second or so).
    "current": {
        "cleanup.policy": "compact",
        # The active segment is never cleaned: roll it hourly, not weekly (the default), so
        # compaction runs on a topic that would fill a 1 GB segment in weeks.
        "segment.ms": str(_HOUR_MS),
        # Clean once a tenth of the log is superseded values (default: half).
        "min.cleanable.dirty.ratio": "0.1",
        # Every change stays readable for a minute before compaction may drop it.
        "min.compaction.lag.ms": "60000",
        # A tombstone stays 7 days after cleaning: a table reader (JDBC sink, ksqlDB) that is
        # down for less than that still sees every delete.
        "delete.retention.ms": str(7 * 24 * _HOUR_MS),
    },
    "audit": {"cleanup.policy": "delete"},
    "dlq": {"cleanup.policy": "delete"},
    "freshness": {"cleanup.policy": "delete"},
}
"""Topic suffix → the topic configuration the services create it with."""

SINGLE_PARTITION: Final = frozenset({"audit", "dlq"})
"""Suffixes created with one partition (one ordered log); the others get the configured count."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create if it is missing (``replication`` -1: the broker's default)."""

    name: str
    partitions: int = 3
    replication: int = BROKER_DEFAULT_REPLICATION
    config: Mapping[str, str] = field(default_factory=dict)


def contract_topic_specs(
    topics: Mapping[str, str],
    suffixes: Sequence[str],
    partitions: int,
    replication: int = BROKER_DEFAULT_REPLICATION,
) -> list[TopicSpec]:
    """The specs of the contract's topics ``suffixes``, with :data:`TOPIC_CONFIG`.

    Args:
        topics: suffix → full topic name (``schemas.topic_names``).
        suffixes: which topics.
        partitions: partitions of each (those in :data:`SINGLE_PARTITION` get one).
        replication: the replication factor; -1 for the broker's default.
    """
    return [
        TopicSpec(
            topics[suffix],
            1 if suffix in SINGLE_PARTITION else partitions,
            replication,
            TOPIC_CONFIG[suffix],
        )
        for suffix in suffixes
    ]


def ensure_topics(
    client: str | Mapping[str, Any], topics: list[TopicSpec], timeout: float = 15.0
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Args:
        client: bootstrap servers, or a full librdkafka client configuration (security).
        topics: what to create.
        timeout: seconds per request.

    Returns:
        The names of the topics this call created.

    Raises:
        PublishError: the broker refused a creation for another reason than "exists".
    """
    config: dict[str, Any] = (
        {"bootstrap.servers": client} if isinstance(client, str) else dict(client)
    )
    # librdkafka's own log lines go through Python logging, not raw to stderr ("%6|...").
    config.setdefault("logger", logging.getLogger("librdkafka"))
    admin = AdminClient(config)
    new = [
        NewTopic(
            t.name,
            num_partitions=t.partitions,
            replication_factor=t.replication,
            config=dict(t.config),
        )
        for t in topics
    ]
    created: list[str] = []
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise PublishError(f"cannot create topic {name}: {error}") from exc
        created.append(name)
        log.info("created topic %s", name)
    return created
