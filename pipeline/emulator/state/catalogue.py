"""The notification topic catalogue: templates, topic matching, ``availabletopics`` (pure).

A topic template has one entity slot, ``{id}``: ``v2.analytics.queues.{id}.observations``.
A concrete topic fills it with an id of letters, digits, ``-`` and ``_`` (real ids are UUIDs;
how strictly Genesys checks an id's form is UNVERIFIED). A compound request
``v2.users.<id>?presence&routingStatus`` stands for ``v2.users.<id>.presence`` and
``v2.users.<id>.routingStatus`` (``docs/genesys-api.md`` §5.2, VERIFIED usage; each
counts as one topic toward the cap, UNVERIFIED).

Template names are VERIFIED (§6.1, DOTNET-TOPICS). Everything a real org would answer in
``availabletopics`` beyond field names is UNVERIFIED: permission strings, ``topicParameters``
names, ``publicApiTemplateUriPaths``, descriptions and the tiny JSON schemas here (which only
name the top-level keys of each event body, §6). Fields listed in the ``expand`` enum (§5.1)
appear only when asked for; ``id`` and the four ``requires*`` booleans always appear
(UNVERIFIED). Every key and value type matches the SDK's ``AvailableTopic`` model.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NewType

from pipeline.emulator.errors import invalid_query_param, invalid_topic

__all__ = [
    "DEFAULT_TEMPLATES",
    "EXPAND_FIELDS",
    "EntityKind",
    "TopicCatalogue",
    "TopicMatch",
    "TopicName",
    "TopicTemplate",
    "expand_compound",
]

TopicName = NewType("TopicName", str)
"""A concrete notification topic, e.g. ``v2.users.6a1b….presence``."""

EntityKind = Literal["queue", "user", "wrapup", "flow", "flowoutcome", "conversation"]

EXPAND_FIELDS: Final = (
    "description",
    "enforced",
    "schema",
    "visibility",
    "transports",
    "publicApiTemplateUriPaths",
    "requiresPermissions",
    "permissionDetails",
    "topicParameters",
)
"""The ``expand`` enum of ``GET /api/v2/notifications/availabletopics`` (SPEC, VERIFIED)."""

_SLOT: Final = "{id}"
_ID_PATTERN: Final = r"[A-Za-z0-9_-]+"


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """One topic family of the catalogue.

    Args:
        name: The template, with exactly one ``{id}``.
        entity_kind: What ``{id}`` names (for the server's entity check).
        parameter: The ``topicParameters`` name of ``{id}``.
        description: Human text.
        permissions: ``requiresPermissions``.
        schema: A small JSON schema of the event body (copied on output).
        api_paths: ``publicApiTemplateUriPaths``.
        visibility: ``Public`` or ``Preview``.
        enforced: Whether permissions are enforced.
        requires_current_user_or_permission: User topics: no permission needed for oneself.
    """

    name: str
    entity_kind: EntityKind
    parameter: str
    description: str
    permissions: tuple[str, ...]
    schema: Mapping[str, Any] = field(compare=False)
    api_paths: tuple[str, ...] = ()
    visibility: Literal["Public", "Preview"] = "Public"
    enforced: bool = True
    requires_current_user_or_permission: bool = False

    def __post_init__(self) -> None:
        if self.name.count(_SLOT) != 1:
            raise ValueError(f"a topic template needs exactly one {_SLOT}: {self.name!r}")

    def topic(self, entity_id: str) -> TopicName:
        """The concrete topic for ``entity_id``."""
        return TopicName(self.name.replace(_SLOT, entity_id))

    def to_json(self, expand: frozenset[str]) -> dict[str, Any]:
        """This template as an ``AvailableTopic``, with the ``expand`` fields only."""
        out: dict[str, Any] = {
            "id": self.name,
            "requiresCurrentUser": False,
            "requiresCurrentUserOrPermission": self.requires_current_user_or_permission,
            "requiresDivisionPermissions": False,
            "requiresAnyValidator": False,
        }
        optional: dict[str, Any] = {
            "description": self.description,
            "enforced": self.enforced,
            "schema": copy.deepcopy(dict(self.schema)),
            "visibility": self.visibility,
            "transports": ["All"],
            "publicApiTemplateUriPaths": list(self.api_paths),
            "requiresPermissions": list(self.permissions),
            "permissionDetails": [
                {
                    "type": "requiresPermissions",
                    "permissions": list(self.permissions),
                    "allowsCurrentUser": self.requires_current_user_or_permission,
                    "enforced": self.enforced,
                }
            ],
            "topicParameters": [self.parameter],
        }
        out.update({key: value for key, value in optional.items() if key in expand})
        return out


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """A concrete topic recognised by the catalogue."""

    topic: TopicName
    template: TopicTemplate
    entity_id: str

    @property
    def entity_kind(self) -> EntityKind:
        """What the topic's id names."""
        return self.template.entity_kind


def expand_compound(requested: str) -> list[str]:
    """Expand ``base?a&b`` to ``[base.a, base.b]``; a plain topic comes back alone.

    Empty parts (``base?``, ``base?a&&b``) are kept as ``base.`` so validation rejects them.
    """
    base, sep, rest = requested.partition("?")
    if not sep:
        return [requested]
    return [f"{base}.{part}" for part in rest.split("&")]


# ---------------------------------------------------------------------------- default catalogue


def _obj(*keys: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {} for key in keys}}


_STATS = _obj("group", "data")
_QUEUE = ("/api/v2/routing/queues/{id}",)
_USER = ("/api/v2/users/{id}",)
_CONVERSATION = ("/api/v2/conversations/{id}",)

_DETAIL_EVENTS: Final = (
    "acd.start",
    "acd.end",
    "acw",
    "attributes",
    "contact",
    "customer.start",
    "customer.end",
    "flow.start",
    "flow.end",
    "flow.outcome",
    "outbound",
    "user.start",
    "user.end",
    "voicemail.start",
    "voicemail.end",
    "wrapup",
)
_QUEUE_MEDIA: Final = (
    "conversations",
    "conversations.calls",
    "conversations.callbacks",
    "conversations.chats",
    "conversations.emails",
    "conversations.messages",
)
_CONVERSATION_BODY = _obj("id", "participants", "maxParticipants", "recordingState", "divisions")


def _default_templates() -> tuple[TopicTemplate, ...]:
    t = TopicTemplate
    out = [
        t(
            "v2.analytics.queues.{id}.observations",
            "queue",
            "queueId",
            "Queue observations and 30-minute conversation aggregates of a queue.",
            ("analytics:queueObservation:view",),
            _STATS,
            _QUEUE,
        ),
        t(
            "v2.analytics.queues.{id}.activity",
            "queue",
            "queueId",
            "Counts of conversation observation metrics of a queue per media type.",
            ("analytics:queueObservation:view",),
            _obj("results"),
            _QUEUE,
        ),
        t(
            "v2.analytics.users.{id}.aggregates",
            "user",
            "userId",
            "30-minute user aggregates (routing status and presence durations).",
            ("analytics:userAggregate:view",),
            _STATS,
            _USER,
        ),
        t(
            "v2.analytics.wrapup.{id}.aggregates",
            "wrapup",
            "wrapupCodeId",
            "30-minute conversation aggregates of a wrap-up code.",
            ("analytics:conversationAggregate:view",),
            _STATS,
            ("/api/v2/routing/wrapupcodes/{id}",),
        ),
        t(
            "v2.analytics.flow.{id}.aggregates",
            "flow",
            "flowId",
            "30-minute flow aggregates.",
            ("analytics:flowAggregate:view",),
            _STATS,
            ("/api/v2/flows/{id}",),
        ),
        t(
            "v2.analytics.flowoutcome.{id}.aggregates",
            "flowoutcome",
            "flowOutcomeId",
            "30-minute flow outcome aggregates.",
            ("analytics:flowAggregate:view",),
            _STATS,
            ("/api/v2/flows/outcomes/{id}",),
        ),
        t(
            "v2.analytics.conversation.{id}.metrics",
            "conversation",
            "conversationId",
            "Metrics of one conversation as they are emitted.",
            ("analytics:conversationDetail:view",),
            _obj("conversationId", "metrics"),
            _CONVERSATION,
        ),
        t(
            "v2.routing.queues.{id}.users",
            "queue",
            "queueId",
            "Members joining and leaving a queue.",
            ("routing:queueMember:view",),
            _obj("id", "user", "queueId", "joined"),
            _QUEUE,
        ),
        t(
            "v2.users.{id}.presence",
            "user",
            "userId",
            "Presence changes of a user.",
            ("user:presence:view",),
            _obj("source", "presenceDefinition", "primary", "message", "modifiedDate"),
            _USER,
            requires_current_user_or_permission=True,
        ),
        t(
            "v2.users.{id}.routingStatus",
            "user",
            "userId",
            "Routing status changes of a user.",
            ("routing:agent:view",),
            _obj("id", "routingStatus"),
            _USER,
            requires_current_user_or_permission=True,
        ),
        t(
            "v2.users.{id}.activity",
            "user",
            "userId",
            "Presence, routing status, out-of-office and active queues of a user.",
            ("routing:agent:view",),
            _obj("id", "routingStatus", "presence", "outOfOffice", "activeQueueIds"),
            _USER,
            requires_current_user_or_permission=True,
        ),
        t(
            "v2.users.{id}.conversations",
            "user",
            "userId",
            "Active conversations of a user.",
            ("conversation:communication:view",),
            _CONVERSATION_BODY,
            _USER,
            requires_current_user_or_permission=True,
        ),
    ]
    for suffix in _QUEUE_MEDIA:
        out.append(
            t(
                f"v2.routing.queues.{{id}}.{suffix}",
                "queue",
                "queueId",
                f"Active {suffix.replace('conversations.', '')} of a queue.",
                ("routing:queue:view", "conversation:communication:view"),
                _CONVERSATION_BODY,
                _QUEUE,
            )
        )
    for event in _DETAIL_EVENTS:
        out.append(
            t(
                f"v2.detail.events.conversation.{{id}}.{event}",
                "conversation",
                "conversationId",
                f"Analytics detail event '{event}' of one conversation.",
                ("analytics:conversationDetail:view",),
                _obj("eventTime", "conversationId", "participantId", "sessionId", "mediaType"),
                _CONVERSATION,
            )
        )
    return tuple(out)


DEFAULT_TEMPLATES: Final = _default_templates()
"""At least the §6.1 topics the pipeline uses, plus the conversation detail events."""


class TopicCatalogue:
    """The set of topic templates the emulated org offers.

    Args:
        templates: Templates to offer; defaults to :data:`DEFAULT_TEMPLATES`.

    Raises:
        ValueError: Two templates share a name.
    """

    def __init__(self, templates: Iterable[TopicTemplate] = DEFAULT_TEMPLATES) -> None:
        self._templates: dict[str, TopicTemplate] = {}
        self._patterns: list[tuple[re.Pattern[str], TopicTemplate]] = []
        for template in templates:
            if template.name in self._templates:
                raise ValueError(f"duplicate topic template {template.name!r}")
            self._templates[template.name] = template
            prefix, _, suffix = template.name.partition(_SLOT)
            pattern = re.compile(
                f"{re.escape(prefix)}(?P<id>{_ID_PATTERN}){re.escape(suffix)}", re.ASCII
            )
            self._patterns.append((pattern, template))

    @property
    def templates(self) -> tuple[TopicTemplate, ...]:
        """All templates, in catalogue order."""
        return tuple(self._templates.values())

    def template(self, name: str) -> TopicTemplate | None:
        """The template called ``name`` (e.g. ``v2.users.{id}.presence``), if offered."""
        return self._templates.get(name)

    def match(self, topic: str) -> TopicMatch | None:
        """Recognise one concrete topic; ``None`` if no template fits it."""
        for pattern, template in self._patterns:
            found = pattern.fullmatch(topic)
            if found is not None:
                return TopicMatch(TopicName(topic), template, found["id"])
        return None

    def resolve(self, requested: str) -> list[TopicMatch]:
        """Validate a requested topic, expanding the compound form.

        Raises:
            EmulatorError: 400 ``notification.invalid.topic`` naming the first part no template
                fits.
        """
        out: list[TopicMatch] = []
        for topic in expand_compound(requested):
            found = self.match(topic)
            if found is None:
                raise invalid_topic(topic)
            out.append(found)
        return out

    def available_topics(
        self, expand: Iterable[str] = (), include_preview: bool = True
    ) -> dict[str, Any]:
        """Answer ``GET /api/v2/notifications/availabletopics`` (§5.1).

        Args:
            expand: Fields to include, from :data:`EXPAND_FIELDS`.
            include_preview: Whether ``Preview`` topics are listed (SPEC default true).

        Returns:
            ``AvailableTopicEntityListing`` JSON: ``{"entities": [...]}``.

        Raises:
            EmulatorError: 400 ``invalid.query.param.value`` for an unknown ``expand`` value.
        """
        wanted = frozenset(expand)
        for value in sorted(wanted - set(EXPAND_FIELDS)):
            raise invalid_query_param(value, "expand", list(EXPAND_FIELDS))
        return {
            "entities": [
                template.to_json(wanted)
                for template in self._templates.values()
                if include_preview or template.visibility != "Preview"
            ]
        }
