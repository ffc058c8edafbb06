"""The subscription plan: spec + directory → topics → shards → channels, deterministically (pure).

Theory of operation
-------------------
1. **Resolve** (:mod:`pipeline.core.subscription.resolution`, re-exported here). Each subscription's
   references become entity ids. Explicit ids are used as they are; names, and the members
   of ``members_of_queues``, come from a :class:`ResolvedEntities` the shell fetched from the
   REST API (``plan``). An offline ``validate`` passes an empty one: names stay unresolved
   and are reported (:func:`unresolved_references`), never guessed.
2. **Expand** (:func:`expand_topics`). Entity × topic family → concrete topic. An entity asked
   for by several subscriptions gives each topic once; :attr:`PlannedTopic.subscriptions`
   says who asked. Output is sorted by topic name.
3. **Shard** (:func:`plan_shards`). Rendezvous (highest-random-weight) hashing on the *entity*
   (``kind:id``): the entity goes to the shard ``s`` with the largest
   ``blake2b("shard:{s}:{entity}")``. All topics of one entity land on one shard, so its
   events keep their order on one connection. The hash is ``hashlib.blake2b``, stable across
   processes and Python versions (``hash()`` is salted per process).
4. **Pack** each shard into channels of at most ``max_topics_per_channel`` topics (and, if
   given, ``max_request_bytes`` of PUT body): entities in the stable order
   ``(blake2b("channel:{entity}"), entity)``, each entity's topics together and sorted, a new
   channel when the next entity does not fit. An entity larger than a channel (only with
   tiny test limits) spills over into the next channel.

Stability
---------
- An entity's shard depends on its own key and the shard count only. Adding or removing
  other entities moves **no** existing topic to another shard. Going from N to N+1 shards
  moves only the entities whose new shard wins, about 1/(N+1) of them.
- Within a shard, a new entity of k topics is inserted at a pseudo-random place in the channel
  order; channels before it are untouched. Each later channel boundary shifts by k plus the
  difference in the space left unused at the ends of the channels before it (at most
  ``largest entity - 1`` per channel). So only the entities near each later boundary move
  one channel on: a few dozen topics per channel, never a reshuffle.

The REST side (metric availability queries and their report) lives in
:mod:`pipeline.core.subscription.availability` and is re-exported here, as is resolution.

Limits: 1,000 topics per channel and 20 channels per OAuth client (docs/genesys-api.md §5.4,
VERIFIED). Shards that share one OAuth client share its 20 channels; a 21st channel silently
evicts the least recently used one, so the plan refuses it (``client_per_shard=False``, the
default). The size limit of a subscription PUT body is not documented (UNVERIFIED): 1,000 topics of
~70 characters make ~82 KB, which real clients send; ``max_request_bytes`` lets the shell
split channels further should a limit show up.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.core.genesys.topics import (
    MAX_CHANNELS_PER_CLIENT,
    MAX_TOPICS_PER_CHANNEL,
    EntityKind,
    TopicName,
    family,
)
from pipeline.core.subscription.availability import (
    AvailabilityQuery,
    AvailabilityReport,
    availability_query_bodies,
    availability_report,
)
from pipeline.core.subscription.resolution import (
    Lookups,
    ResolvedEntities,
    SubscriptionEntities,
    lookups_needed,
    resolve_subscriptions,
    unresolved_references,
)
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.errors import SubscriptionError

__all__ = [
    "AvailabilityQuery",
    "AvailabilityReport",
    "ChannelPlan",
    "Lookups",
    "Plan",
    "PlannedTopic",
    "ResolvedEntities",
    "ShardPlan",
    "SubscriptionEntities",
    "availability_query_bodies",
    "availability_report",
    "expand_topics",
    "lookups_needed",
    "plan_shards",
    "render_plan_text",
    "resolve_subscriptions",
    "shard_for",
    "unresolved_references",
]


@dataclass(frozen=True, slots=True)
class PlannedTopic:
    """A concrete topic to subscribe to.

    Attributes:
        topic: the topic name.
        family: its template, e.g. ``v2.analytics.queues.{id}.observations``.
        entity_kind: what its id names.
        entity_id: the id.
        subscriptions: names of the subscriptions that asked for it, spec order.
    """

    topic: TopicName
    family: str
    entity_kind: EntityKind
    entity_id: str
    subscriptions: tuple[str, ...] = ()

    @property
    def entity_key(self) -> str:
        """``kind:id``: the unit of sharding."""
        return f"{self.entity_kind}:{self.entity_id}"


def expand_topics(spec: SubscriptionSpec, directory: ResolvedEntities) -> list[PlannedTopic]:
    """Every concrete topic the spec asks for, once each, sorted by topic name.

    Unresolved references are left out; see :func:`unresolved_references`.
    """
    asked: dict[TopicName, tuple[str, EntityKind, str, list[str]]] = {}
    for entry in resolve_subscriptions(spec, directory):
        sub = entry.subscription
        for entity_id in entry.entity_ids:
            for key in sub.topics:
                fam = family(sub.kind, key)
                topic = fam.topic(entity_id)
                names = asked.setdefault(topic, (fam.template, fam.entity_kind, entity_id, []))[3]
                if sub.name not in names:
                    names.append(sub.name)
    return [
        PlannedTopic(topic, template, kind, entity_id, tuple(names))
        for topic, (template, kind, entity_id, names) in sorted(asked.items())
    ]


# ----------------------------------------------------------------------------- shards


def _weight(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def shard_for(entity_key: str, shards: int) -> int:
    """The shard an entity belongs to: rendezvous hashing over ``range(shards)``.

    Args:
        entity_key: ``kind:id`` (:attr:`PlannedTopic.entity_key`).
        shards: how many shards, at least 1.
    """
    return max(range(shards), key=lambda s: (_weight(f"shard:{s}:{entity_key}"), s))


def _topic_bytes(topic: str) -> int:
    # One item of the PUT body as json.dumps writes it: {"id": "<topic>"} plus ", ".
    return len(topic) + 12


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One notification channel of a shard: at most ``max_topics_per_channel`` topics.

    Attributes:
        index: position within the shard.
        topics: the topics, entity by entity.
    """

    index: int
    topics: tuple[PlannedTopic, ...]

    @property
    def topic_names(self) -> tuple[TopicName, ...]:
        """The topic names, in plan order."""
        return tuple(t.topic for t in self.topics)

    @property
    def entity_count(self) -> int:
        """How many entities have topics here."""
        return len({t.entity_key for t in self.topics})

    def subscribe_body(self) -> list[dict[str, str]]:
        """The ``PUT …/channels/{id}/subscriptions`` body: ``[{"id": topic}, …]`` (§5.1)."""
        return [{"id": t.topic} for t in self.topics]

    @property
    def request_bytes(self) -> int:
        """Size of :meth:`subscribe_body` as ``json.dumps`` writes it."""
        return len(json.dumps(self.subscribe_body()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "index": self.index,
            "topic_count": len(self.topics),
            "entity_count": self.entity_count,
            "request_bytes": self.request_bytes,
            "topics": list(self.topic_names),
        }


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """What one producer process subscribes to.

    Attributes:
        index: the shard number, 0-based.
        channels: its channels.
    """

    index: int
    channels: tuple[ChannelPlan, ...]

    @property
    def topic_count(self) -> int:
        """Topics over all channels."""
        return sum(len(c.topics) for c in self.channels)

    @property
    def entity_count(self) -> int:
        """Entities over all channels."""
        return len({t.entity_key for c in self.channels for t in c.topics})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "index": self.index,
            "topic_count": self.topic_count,
            "entity_count": self.entity_count,
            "channels": [c.to_dict() for c in self.channels],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Every topic on exactly one shard and one channel.

    Attributes:
        shards: one entry per shard (a shard may be empty).
        max_topics_per_channel: the channel limit used.
        max_channels_per_client: the OAuth client limit used.
        client_per_shard: whether each shard runs with its own OAuth client.
    """

    shards: tuple[ShardPlan, ...]
    max_topics_per_channel: int = MAX_TOPICS_PER_CHANNEL
    max_channels_per_client: int = MAX_CHANNELS_PER_CLIENT
    client_per_shard: bool = False

    @property
    def topic_count(self) -> int:
        """Topics over all shards."""
        return sum(s.topic_count for s in self.shards)

    @property
    def entity_count(self) -> int:
        """Entities over all shards."""
        return sum(s.entity_count for s in self.shards)

    @property
    def channel_count(self) -> int:
        """Channels over all shards."""
        return sum(len(s.channels) for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``plan --json`` prints)."""
        return {
            "limits": {
                "max_topics_per_channel": self.max_topics_per_channel,
                "max_channels_per_client": self.max_channels_per_client,
                "client_per_shard": self.client_per_shard,
            },
            "totals": {
                "shards": len(self.shards),
                "channels": self.channel_count,
                "topics": self.topic_count,
                "entities": self.entity_count,
            },
            "shards": [s.to_dict() for s in self.shards],
        }


def _pack(
    groups: list[list[PlannedTopic]], cap: int, max_bytes: int | None
) -> list[tuple[PlannedTopic, ...]]:
    channels: list[tuple[PlannedTopic, ...]] = []
    current: list[PlannedTopic] = []
    used = 0

    def fits(count: int, size: int) -> bool:
        return len(current) + count <= cap and (max_bytes is None or used + size <= max_bytes)

    for group in groups:
        if current and not fits(len(group), sum(_topic_bytes(t.topic) for t in group)):
            channels.append(tuple(current))
            current, used = [], 0
        for topic in group:  # the whole group fits, unless it is larger than a channel
            if current and not fits(1, _topic_bytes(topic.topic)):
                channels.append(tuple(current))
                current, used = [], 0
            current.append(topic)
            used += _topic_bytes(topic.topic)
    if current:
        channels.append(tuple(current))
    return channels


def plan_shards(
    topics: Iterable[PlannedTopic],
    shards: int = 1,
    max_topics_per_channel: int = MAX_TOPICS_PER_CHANNEL,
    max_channels_per_client: int = MAX_CHANNELS_PER_CLIENT,
    *,
    client_per_shard: bool = False,
    max_request_bytes: int | None = None,
) -> Plan:
    """Assign every topic to one shard and one channel (see the module docstring).

    Args:
        topics: the topics (a topic given twice is planned once, first one wins).
        shards: how many producer processes, at least 1.
        max_topics_per_channel: channel capacity (§5.4: 1,000).
        max_channels_per_client: channels per OAuth client (§5.4: 20).
        client_per_shard: each shard has its own OAuth client; otherwise all shards share one
            and the 20-channel limit applies to their sum.
        max_request_bytes: optional cap on a channel's PUT body.

    Raises:
        ValueError: a count below 1.
        SubscriptionError: a shard needs more channels than a client holds, or shards that
            share a client need more than it holds together; every such line, with numbers.
    """
    if min(shards, max_topics_per_channel, max_channels_per_client) < 1:
        raise ValueError("shards and limits must be at least 1")
    by_entity: dict[str, list[PlannedTopic]] = {}
    seen: set[str] = set()
    for topic in topics:
        if topic.topic not in seen:
            seen.add(topic.topic)
            by_entity.setdefault(topic.entity_key, []).append(topic)
    keys_of: list[list[str]] = [[] for _ in range(shards)]
    for key in by_entity:
        keys_of[shard_for(key, shards)].append(key)
    plans: list[ShardPlan] = []
    for index, keys in enumerate(keys_of):
        keys.sort(key=lambda k: (_weight(f"channel:{k}"), k))
        groups = [sorted(by_entity[k], key=lambda t: t.topic) for k in keys]
        packed = _pack(groups, max_topics_per_channel, max_request_bytes)
        channels = tuple(ChannelPlan(i, c) for i, c in enumerate(packed))
        plans.append(ShardPlan(index, channels))
    plan = Plan(tuple(plans), max_topics_per_channel, max_channels_per_client, client_per_shard)
    problems = _capacity_problems(plan)
    if problems:
        raise SubscriptionError(problems)
    return plan


def _capacity_problems(plan: Plan) -> list[str]:
    cap, most = plan.max_topics_per_channel, plan.max_channels_per_client
    per_client = cap * most
    # Suggest enough shards for the topics with 10 % headroom for hash imbalance.
    enough = max(len(plan.shards) + 1, math.ceil(plan.topic_count * 1.1 / per_client))
    problems = [
        f"shard {shard.index}: needs {len(shard.channels)} channels for {shard.topic_count:,} "
        f"topics, but an OAuth client holds at most {most} channels of {cap:,} topics "
        f"(docs/genesys-api.md §5.4); use --shards {enough} or more, with one OAuth client "
        "per shard"
        for shard in plan.shards
        if len(shard.channels) > most
    ]
    if not plan.client_per_shard and plan.channel_count > most and len(plan.shards) > 1:
        problems.append(
            f"plan: {len(plan.shards)} shards need {plan.channel_count} channels in total, but "
            f"they share one OAuth client, which holds at most {most} (another channel evicts "
            "the least recently used one, docs/genesys-api.md §5.4); give each shard its own "
            "OAuth client"
        )
    return problems


def render_plan_text(plan: Plan) -> str:
    """A compact human summary: totals, then per shard and per channel."""
    sharing = "one OAuth client per shard" if plan.client_per_shard else "one shared OAuth client"
    lines = [
        f"plan: {plan.topic_count:,} topics for {plan.entity_count:,} entities in "
        f"{len(plan.shards)} shard{'s' if len(plan.shards) != 1 else ''}, "
        f"{plan.channel_count} channel{'s' if plan.channel_count != 1 else ''} "
        f"(limits: {plan.max_topics_per_channel:,} topics per channel, "
        f"{plan.max_channels_per_client} channels per client; {sharing})"
    ]
    for shard in plan.shards:
        lines.append(
            f"shard {shard.index}: {shard.topic_count:,} topics, {shard.entity_count:,} "
            f"entities, {len(shard.channels)} channel{'s' if len(shard.channels) != 1 else ''}"
        )
        for channel in shard.channels:
            lines.append(
                f"  channel {channel.index}: {len(channel.topics):>5,} topics, "
                f"{channel.entity_count:>5,} entities, "
                f"PUT body {channel.request_bytes / 1024:.1f} KiB"
            )
    return "\n".join(lines)
