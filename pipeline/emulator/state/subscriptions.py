"""Subscription requests and answers of a notification channel (pure).

A subscriptions call (``docs/genesys-api.md`` §5.1) sends ``[{"id": topic}, ...]``;
:func:`parse_subscription_body` checks that shape and :func:`validate_topics` checks the topics,
in this order, failing the whole call at the first problem:

1. every requested topic (compound ``base?a&b`` expanded, §5.2) must fit a catalogue template,
   else 400 ``notification.invalid.topic``;
2. the id inside it must pass the optional ``entity_exists(kind, id)`` check, else the same 400
   (UNVERIFIED: the real service may accept unknown ids or answer 403);
3. the client must be allowed to see it: neither its template denied (the client's roles
   lack the permission) nor its entity restricted (a queue in a division the client's roles do
   not reach), else 403 ``notification.unauthorized.topic`` for the whole request, nothing
   applied (§5.6 VERIFIED; the code is the probable one, BELIEF) — or, with
   ``ignoreErrors=true``, a ``Rejected`` entry with ``rejectionReason`` and
   ``missingPermissions`` while the permitted topics are subscribed (§5.6 BELIEF, inferred
   from the model and the parameter's description "prevent throwing of errors for failed
   permissions checks").

The 1,000-topic cap is the channel's business (it needs the channel's current list), see
:mod:`pipeline.emulator.state.channels`. Answers are ``ChannelTopicEntityListing`` values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass
from typing import Any, Final, Literal

from pipeline.emulator.errors import bad_request, invalid_topic, unauthorized_topic
from pipeline.emulator.state.catalogue import EntityKind, TopicCatalogue, TopicMatch, TopicName

__all__ = [
    "REJECTION_REASON",
    "ChannelTopic",
    "EntityCheck",
    "SubscriptionResult",
    "TopicValidation",
    "parse_subscription_body",
    "self_uri",
    "validate_topics",
]

EntityCheck = Callable[[EntityKind, str], bool]
"""The shell's answer to "does this queue/user/wrap-up/... id exist?"."""

REJECTION_REASON: Final = "Not authorized for this topic."
"""``rejectionReason`` of a ``Rejected`` entry (UNVERIFIED wording; the 403 text is SPEC)."""


def self_uri(channel_id: str, topic: str) -> str:
    """``selfUri`` of a subscription (format UNVERIFIED, §5.1)."""
    return f"/api/v2/notifications/channels/{channel_id}/subscriptions/{topic}"


@dataclass(frozen=True, slots=True)
class ChannelTopic:
    """One entry of a ``ChannelTopicEntityListing`` (§5.1)."""

    id: TopicName
    state: Literal["Permitted", "Rejected"]
    self_uri: str
    rejection_reason: str | None = None
    missing_permissions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``ChannelTopic`` model; rejection fields only on ``Rejected`` (UNVERIFIED)."""
        out: dict[str, Any] = {"id": self.id, "state": self.state, "selfUri": self.self_uri}
        if self.state == "Rejected":
            out["rejectionReason"] = self.rejection_reason
            out["missingPermissions"] = list(self.missing_permissions)
        return out


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """The answer of a subscription call: ``ChannelTopicEntityListing``."""

    entities: tuple[ChannelTopic, ...]

    @classmethod
    def of(
        cls, channel_id: str, topics: Iterable[TopicName], rejected: Iterable[TopicMatch] = ()
    ) -> SubscriptionResult:
        """The channel's ``Permitted`` topics, then the ``Rejected`` ones."""
        permitted = [ChannelTopic(t, "Permitted", self_uri(channel_id, t)) for t in topics]
        refused = [
            ChannelTopic(
                m.topic,
                "Rejected",
                self_uri(channel_id, m.topic),
                REJECTION_REASON,
                m.template.permissions,
            )
            for m in rejected
        ]
        return cls(tuple(permitted + refused))

    def to_json(self) -> dict[str, Any]:
        """``{"entities": [...]}``."""
        return {"entities": [entity.to_json() for entity in self.entities]}


@dataclass(frozen=True, slots=True)
class TopicValidation:
    """Outcome of :func:`validate_topics`: concrete topics to subscribe, and refused ones."""

    permitted: tuple[TopicName, ...]
    rejected: tuple[TopicMatch, ...]


def parse_subscription_body(body: Any) -> list[str]:
    """Topic ids of a subscriptions request body ``[{"id": "..."}, ...]``.

    Raises:
        EmulatorError: 400 ``bad.request`` unless the body is a list of objects with a
            non-empty string ``id`` (plain strings are refused: the model is ``ChannelTopic``).
    """
    if not isinstance(body, list):
        raise bad_request("The request body must be a list of ChannelTopic objects.")
    topics: list[str] = []
    for item in body:
        topic = item.get("id") if isinstance(item, dict) else None
        if not isinstance(topic, str) or not topic:
            raise bad_request("Each ChannelTopic needs a string 'id'.")
        topics.append(topic)
    return topics


def validate_topics(
    catalogue: TopicCatalogue,
    requested: Iterable[str],
    *,
    denied: Set[str] = frozenset(),
    restricted: Set[str] = frozenset(),
    entity_exists: EntityCheck | None = None,
    ignore_errors: bool = False,
) -> TopicValidation:
    """Check requested topics as the module docstring describes.

    Args:
        catalogue: Templates the org offers.
        requested: Topic ids from the request body (compound forms allowed).
        denied: Template names the client lacks permission for.
        restricted: Entity ids (queues, users ...) the client may not see.
        entity_exists: Optional id check; ``None`` accepts every id.
        ignore_errors: The ``ignoreErrors`` query parameter.

    Returns:
        Permitted concrete topics (deduplicated, request order) and rejected matches.

    Raises:
        EmulatorError: 400 ``notification.invalid.topic`` or 403
            ``notification.unauthorized.topic``.
    """
    matches: list[TopicMatch] = []
    for topic in requested:
        for found in catalogue.resolve(topic):
            if entity_exists is not None and not entity_exists(found.entity_kind, found.entity_id):
                raise invalid_topic(found.topic)
            matches.append(found)
    permitted: dict[TopicName, None] = {}
    rejected: dict[TopicName, TopicMatch] = {}
    for found in matches:
        if found.template.name not in denied and found.entity_id not in restricted:
            permitted[found.topic] = None
        elif ignore_errors:
            rejected[found.topic] = found
        else:
            raise unauthorized_topic(found.topic)
    return TopicValidation(tuple(permitted), tuple(rejected.values()))
