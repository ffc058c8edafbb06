"""Topic administration with confluent-kafka's AdminClient."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # admin re-exports it without __all__

from pipeline.errors import PublishError

__all__ = ["TopicSpec", "ensure_topics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create if it is missing."""

    name: str
    partitions: int = 3
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


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
