"""The notification topic-name grammar: build, parse and validate concrete topics (pure).

A topic *family* is a template with one entity slot, ``v2.analytics.queues.{id}.observations``;
a concrete topic fills the slot with an entity id (``docs/genesys-api.md`` §5.2,
VERIFIED). The families here are the §6.1 table, spelt exactly as the emulator's catalogue
(``pipeline/emulator/catalogue.py``) spells them, plus the §6.1 queue media variants the
emulator does not offer (``cobrowseSessions``, ``screenshares``, ``socialexpressions``,
``videos``) and ``v2.detail.events.agent.{id}.state``.

An id is letters, digits, ``-`` and ``_`` (the emulator's rule). Real Genesys ids are UUIDs;
this module does not insist on that, the subscription spec does (:func:`is_uuid`). An id can
never contain ``.``, ``?`` or ``&``, so a concrete topic parses to at most one family.

Compound form (§5.2, VERIFIED usage): ``v2.users.<id>?presence&routingStatus`` stands for
``v2.users.<id>.presence`` and ``v2.users.<id>.routingStatus``. Whether it counts as one topic
or N toward the 1,000-per-channel cap is UNVERIFIED; the planner assumes N and subscribes the
expanded names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, NewType

__all__ = [
    "FAMILIES",
    "MAX_CHANNELS_PER_CLIENT",
    "MAX_TOPICS_PER_CHANNEL",
    "EntityKind",
    "QueueId",
    "TopicFamily",
    "TopicName",
    "TopicRef",
    "UserId",
    "WrapupCodeId",
    "compound_topic",
    "expand_compound",
    "family",
    "is_uuid",
    "parse_topic",
    "queue_activity",
    "queue_conversations",
    "queue_observations",
    "queue_users",
    "user_activity",
    "user_aggregates",
    "user_conversations",
    "user_presence",
    "user_routing_status",
    "wrapup_aggregates",
]

TopicName = NewType("TopicName", str)
"""A concrete notification topic, e.g. ``v2.users.6a1b….presence``."""
QueueId = NewType("QueueId", str)
"""A routing queue id (a UUID)."""
UserId = NewType("UserId", str)
"""A user (agent) id (a UUID)."""
WrapupCodeId = NewType("WrapupCodeId", str)
"""A wrap-up code id (a UUID)."""

EntityKind = Literal["queue", "user", "wrapup", "flow", "flowoutcome", "conversation"]
"""What a topic's ``{id}`` names (the same literals as the emulator's catalogue)."""

# §5.4, VERIFIED (FORUM-LIMITS quoting the official limits page).
MAX_TOPICS_PER_CHANNEL: Final = 1000
"""Topics one notification channel may hold; more is HTTP 400 too.many.subscriptions."""
MAX_CHANNELS_PER_CLIENT: Final = 20
"""Channels one OAuth client may hold; creating a 21st evicts the least recently used one."""

_SLOT: Final = "{id}"
_ID: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII
)


@dataclass(frozen=True, slots=True)
class TopicFamily:
    """One topic template.

    Attributes:
        template: the template with exactly one ``{id}``, e.g.
            ``v2.analytics.queues.{id}.observations``.
        entity_kind: what ``{id}`` names.
        key: the family's short name within its entity kind: the template text after
            ``{id}.`` (``observations``, ``routingStatus``, ``conversations.calls``). The
            subscription spec's ``topics`` list uses these keys.
    """

    template: str
    entity_kind: EntityKind
    key: str

    def topic(self, entity_id: str) -> TopicName:
        """The concrete topic of this family for ``entity_id``.

        Raises:
            ValueError: the id is empty or holds a character other than letters, digits,
                ``-`` and ``_`` (which would make a different, or an invalid, topic).
        """
        if not _ID.fullmatch(entity_id):
            raise ValueError(f"not a valid entity id for a topic: {entity_id!r}")
        return TopicName(self.template.replace(_SLOT, entity_id))

    @property
    def prefix(self) -> str:
        """The template text before ``{id}``."""
        return self.template.partition(_SLOT)[0]

    @property
    def suffix(self) -> str:
        """The template text after ``{id}`` (starts with a dot)."""
        return self.template.partition(_SLOT)[2]


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A concrete topic taken apart.

    Attributes:
        family: the family's template, e.g. ``v2.users.{id}.presence``.
        entity_kind: what the id names.
        entity_id: the id in the topic.
    """

    family: str
    entity_kind: EntityKind
    entity_id: str

    @property
    def topic(self) -> TopicName:
        """The concrete topic again."""
        return TopicName(self.family.replace(_SLOT, self.entity_id))


_QUEUE_MEDIA: Final = (
    "calls", "callbacks", "chats", "emails", "messages", "cobrowseSessions", "screenshares",
    "socialexpressions", "videos",
)  # fmt: skip
_DETAIL_EVENTS: Final = (
    "acd.start", "acd.end", "acw", "attributes", "contact", "customer.start", "customer.end",
    "flow.start", "flow.end", "flow.outcome", "outbound", "user.start", "user.end",
    "voicemail.start", "voicemail.end", "wrapup",
)  # fmt: skip


def _families() -> tuple[TopicFamily, ...]:
    rows: list[tuple[str, EntityKind]] = [
        ("v2.analytics.queues.{id}.observations", "queue"),
        ("v2.analytics.queues.{id}.activity", "queue"),
        ("v2.routing.queues.{id}.users", "queue"),
        ("v2.routing.queues.{id}.conversations", "queue"),
    ]
    for media in _QUEUE_MEDIA:
        rows.append((f"v2.routing.queues.{{id}}.conversations.{media}", "queue"))
    rows += [
        ("v2.analytics.users.{id}.aggregates", "user"),
        ("v2.users.{id}.presence", "user"),
        ("v2.users.{id}.routingStatus", "user"),
        ("v2.users.{id}.activity", "user"),
        ("v2.users.{id}.conversations", "user"),
        ("v2.detail.events.agent.{id}.state", "user"),
        ("v2.analytics.wrapup.{id}.aggregates", "wrapup"),
        ("v2.analytics.flow.{id}.aggregates", "flow"),
        ("v2.analytics.flowoutcome.{id}.aggregates", "flowoutcome"),
        ("v2.analytics.conversation.{id}.metrics", "conversation"),
    ]
    for event in _DETAIL_EVENTS:
        rows.append((f"v2.detail.events.conversation.{{id}}.{event}", "conversation"))
    return tuple(TopicFamily(t, kind, t.partition(_SLOT + ".")[2]) for t, kind in rows)


FAMILIES: Final = _families()
"""Every family this module knows, §6.1 order."""

_BY_KIND_KEY: Final = {(f.entity_kind, f.key): f for f in FAMILIES}
_BY_TEMPLATE: Final = {f.template: f for f in FAMILIES}


def family(kind: EntityKind, key: str) -> TopicFamily:
    """The family of ``kind`` called ``key`` (e.g. ``("user", "presence")``).

    Raises:
        KeyError: no such family.
    """
    return _BY_KIND_KEY[(kind, key)]


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in the 8-4-4-4-12 hex form Genesys ids use."""
    return _UUID.fullmatch(text) is not None


def parse_topic(name: str) -> TopicRef | None:
    """Take a concrete topic apart.

    Args:
        name: a topic such as ``v2.analytics.queues.<id>.observations``. A compound
            (``…?a&b``) is not a concrete topic: expand it first (:func:`expand_compound`).

    Returns:
        Its family, entity kind and id; ``None`` if no family fits.
    """
    for fam in FAMILIES:
        prefix, suffix = fam.prefix, fam.suffix
        if (
            len(name) > len(prefix) + len(suffix)
            and name.startswith(prefix)
            and name.endswith(suffix)
            and _ID.fullmatch(name[len(prefix) : len(name) - len(suffix)])
        ):
            entity_id = name[len(prefix) : len(name) - len(suffix)]
            return TopicRef(fam.template, fam.entity_kind, entity_id)
    return None


def expand_compound(requested: str) -> list[TopicName]:
    """Expand ``base?a&b`` to ``[base.a, base.b]``; a plain topic comes back alone.

    The same rule as the emulator's catalogue: empty parts (``base?``, ``base?a&&b``) are kept
    as ``base.``, which :func:`parse_topic` rejects. Nothing is validated here.
    """
    base, sep, rest = requested.partition("?")
    if not sep:
        return [TopicName(requested)]
    return [TopicName(f"{base}.{part}") for part in rest.split("&")]


def compound_topic(topics: Sequence[str]) -> TopicName:
    """Fold topics of one entity that share a base into the compound form.

    ``[v2.users.X.presence, v2.users.X.routingStatus]`` → ``v2.users.X?presence&routingStatus``
    (the inverse of :func:`expand_compound`). A single topic comes back unchanged.

    Raises:
        ValueError: no topics, an unknown topic, or topics that do not share the base (the
            text up to and including the id), e.g. ``v2.users.X.presence`` and
            ``v2.analytics.users.X.aggregates``.
    """
    if not topics:
        raise ValueError("no topics to fold")
    if len(topics) == 1:
        return TopicName(topics[0])
    bases: set[str] = set()
    parts: list[str] = []
    for topic in topics:
        ref = parse_topic(topic)
        if ref is None:
            raise ValueError(f"not a known topic: {topic!r}")
        fam = _BY_TEMPLATE[ref.family]
        bases.add(fam.prefix + ref.entity_id)
        parts.append(fam.key)
    if len(bases) != 1:
        raise ValueError(f"topics do not share one base: {sorted(bases)}")
    return TopicName(f"{bases.pop()}?{'&'.join(parts)}")


def _build(kind: EntityKind, key: str, entity_id: str) -> TopicName:
    return _BY_KIND_KEY[(kind, key)].topic(entity_id)


def queue_observations(queue_id: QueueId) -> TopicName:
    """``v2.analytics.queues.{id}.observations``: observations and 30-min aggregates (§6.2)."""
    return _build("queue", "observations", queue_id)


def queue_activity(queue_id: QueueId) -> TopicName:
    """``v2.analytics.queues.{id}.activity``: o-metric counts per media type (§6.3)."""
    return _build("queue", "activity", queue_id)


def queue_users(queue_id: QueueId) -> TopicName:
    """``v2.routing.queues.{id}.users``: members joining and leaving (§6.1)."""
    return _build("queue", "users", queue_id)


def queue_conversations(queue_id: QueueId) -> TopicName:
    """``v2.routing.queues.{id}.conversations``: active-conversation snapshots (§6.5)."""
    return _build("queue", "conversations", queue_id)


def user_presence(user_id: UserId) -> TopicName:
    """``v2.users.{id}.presence`` (§6.4)."""
    return _build("user", "presence", user_id)


def user_routing_status(user_id: UserId) -> TopicName:
    """``v2.users.{id}.routingStatus`` (§6.4)."""
    return _build("user", "routingStatus", user_id)


def user_activity(user_id: UserId) -> TopicName:
    """``v2.users.{id}.activity``: presence, routing status, OOO and queues in one (§6.4)."""
    return _build("user", "activity", user_id)


def user_conversations(user_id: UserId) -> TopicName:
    """``v2.users.{id}.conversations`` (§6.1)."""
    return _build("user", "conversations", user_id)


def user_aggregates(user_id: UserId) -> TopicName:
    """``v2.analytics.users.{id}.aggregates``: 30-min user aggregates (§6.1, §7.3)."""
    return _build("user", "aggregates", user_id)


def wrapup_aggregates(wrapup_code_id: WrapupCodeId) -> TopicName:
    """``v2.analytics.wrapup.{id}.aggregates``: 30-min aggregates by wrap-up code (§6.1)."""
    return _build("wrapup", "aggregates", wrapup_code_id)
