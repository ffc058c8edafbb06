"""Topics Genesys refused to subscribe, read from a subscription answer (§5.6).

The session subscribes with ``ignoreErrors=true``: a topic the OAuth client may not see (its
roles lack the permission, or the queue sits in a division they do not reach) then comes back
as a ``ChannelTopic`` with ``state: "Rejected"``, ``rejectionReason`` and
``missingPermissions`` instead of failing the whole call with 403, and the permitted topics
are subscribed (docs/genesys-api.md §5.6: the model and the whole-call 403 are VERIFIED, the
``Rejected`` entries BELIEF). :func:`rejected_topics` also counts a requested topic the answer
does not mention at all as refused (the practical rule of §5.6: diff the answer against the
request), except compound ``base?a&b`` requests, whose answer names the expanded topics.

Pure: takes the decoded answer, returns values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_LISTED", "RejectedTopic", "rejected_topics", "rejection_details"]

MAX_LISTED: Final = 20
"""Rejected topic names an audit event lists (the count is always complete)."""
NOT_IN_ANSWER: Final = "not in the subscription answer"


@dataclass(frozen=True, slots=True)
class RejectedTopic:
    """One topic Genesys did not subscribe.

    Attributes:
        topic: the topic name.
        reason: its ``rejectionReason`` (empty when the answer gave none).
        missing_permissions: its ``missingPermissions``.
    """

    topic: str
    reason: str = ""
    missing_permissions: tuple[str, ...] = ()


def rejected_topics(requested: Sequence[str], answer: object) -> tuple[RejectedTopic, ...]:
    """The requested topics a ``ChannelTopicEntityListing`` answer did not subscribe.

    Args:
        requested: the topics sent.
        answer: the decoded answer (anything: a malformed one refuses nothing).

    Returns:
        The ``Rejected`` entries in answer order, then the requested plain topics the answer
        does not name, in request order.
    """
    entities = answer.get("entities") if isinstance(answer, Mapping) else None
    if not isinstance(entities, list):
        return ()
    named: set[str] = set()
    refused: list[RejectedTopic] = []
    for entity in entities:
        if not isinstance(entity, Mapping) or not isinstance(entity.get("id"), str):
            continue
        topic = str(entity["id"])
        named.add(topic)
        if entity.get("state") == "Rejected":
            refused.append(_rejected(topic, entity))
    missing = [t for t in requested if t not in named and "?" not in t]
    return (*refused, *(RejectedTopic(t, NOT_IN_ANSWER) for t in dict.fromkeys(missing)))


def rejection_details(rejected: Sequence[RejectedTopic], call: str) -> dict[str, Any]:
    """The details of a ``subscription.rejected`` audit event.

    Args:
        rejected: the refused topics (at least one).
        call: ``subscribe`` or ``channel.extend``.

    Returns:
        ``topics``, ``topic_names`` (the first :data:`MAX_LISTED`), ``reason``,
        ``missing_permissions`` and ``call``.
    """
    return {
        "topics": len(rejected),
        "topic_names": [r.topic for r in rejected[:MAX_LISTED]],
        "reason": "; ".join(_distinct(r.reason for r in rejected if r.reason)),
        "missing_permissions": _distinct(p for r in rejected for p in r.missing_permissions),
        "call": call,
    }


def _rejected(topic: str, entity: Mapping[str, Any]) -> RejectedTopic:
    reason = entity.get("rejectionReason")
    permissions = entity.get("missingPermissions")
    listed = permissions if isinstance(permissions, list) else []
    return RejectedTopic(
        topic,
        reason if isinstance(reason, str) else "",
        tuple(p for p in listed if isinstance(p, str)),
    )


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
