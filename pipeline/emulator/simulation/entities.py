"""The simulation's mutable inner records and the seeded construction of the organisation.

:class:`Agent` and :class:`Conversation` are the engine's working state (mutable, slotted,
never handed out: the public read model is in ``model``). :func:`build_entities`
draws queues, users, memberships, wrap-up codes and org presence ids from the seeded random
generator, in a fixed order, so the same seed always yields the same organisation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.model import (
    QueueInfo,
    SimulationConfig,
    UserInfo,
    WrapupCodeInfo,
)

__all__ = [
    "ACW",
    "ALERTING",
    "CONNECTED",
    "WAITING",
    "Agent",
    "Conversation",
    "Entities",
    "build_entities",
    "new_id",
]

# What a conversation is doing (Conversation.state).
WAITING, ALERTING, CONNECTED, ACW = range(4)

_QUEUE_NAMES = ("Support", "Sales", "Billing", "Claims", "Retention", "Technical", "Orders")
_WRAPUP_NAMES = (
    "Resolved",
    "Escalated",
    "Follow-up required",
    "Callback scheduled",
    "Information given",
    "Complaint",
    "Sale completed",
    "No action needed",
    "Wrong queue",
    "Duplicate contact",
    "Billing adjusted",
    "Technical fix",
)
_ON_QUEUE = SYSTEM_PRESENCES.index("ON_QUEUE")
_OFFLINE = SYSTEM_PRESENCES.index("OFFLINE")


def new_id(rng: random.Random) -> str:
    """A UUID-shaped id drawn from ``rng`` (deterministic for a seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Agent:
    """Live state of one agent (positions index the simulation's tables)."""

    __slots__ = (
        "alerting",
        "idx",
        "indexed",
        "load",
        "media",
        "not_responding",
        "nr_gen",
        "pending",
        "presence",
        "presence_gen",
        "presence_ms",
        "presence_seg",
        "queues",
        "routing",
        "routing_ms",
        "routing_seg",
    )

    def __init__(self, idx: int, queues: tuple[int, ...], presence: int, at: int) -> None:
        self.idx = idx
        self.queues = queues
        self.presence = presence
        self.presence_ms = self.presence_seg = at  # last change / open segment start
        self.routing = ROUTING_STATUSES.index("IDLE" if presence == _ON_QUEUE else "OFF_QUEUE")
        self.routing_ms = self.routing_seg = at
        self.load = 0  # conversations connected or in after-call work
        self.media = -1  # media of those conversations (agents do not mix media)
        self.alerting = -1  # conversation ringing on this agent
        self.pending = -1  # presence to take once the current work is done
        self.not_responding = False
        self.nr_gen = 0
        self.presence_gen = 0
        self.indexed = -2  # -2 not routable, -1 in the idle index, m in the partial index


class Conversation:
    """Live state of one conversation leg in one queue."""

    __slots__ = (
        "agent",
        "alert_ms",
        "cid",
        "connect_ms",
        "entry_ms",
        "gen",
        "hold_ms",
        "media",
        "not_responding",
        "qm",
        "queue",
        "state",
        "talk_ms",
        "uuid",
        "wrapup",
    )

    def __init__(self, cid: int, queue: int, media: int, qm: int, entry: int, uid: str) -> None:
        self.cid = cid
        self.queue = queue
        self.media = media
        self.qm = qm  # queue * len(media_types) + media
        self.entry_ms = entry
        self.uuid = uid
        self.state = WAITING
        self.agent = -1
        self.alert_ms = self.connect_ms = self.talk_ms = self.hold_ms = 0
        self.wrapup = -1
        self.gen = 0  # bumps on each transition so stale timer events are ignored
        self.not_responding = False


@dataclass(frozen=True, slots=True)
class Entities:
    """Everything :func:`build_entities` draws (tables are the engine's, mutable)."""

    queues: list[QueueInfo]
    users: list[UserInfo]
    codes: list[WrapupCodeInfo]
    org_presence_ids: Mapping[str, str]
    agents: list[Agent]
    members: list[tuple[int, ...]]
    queue_media: list[tuple[int, ...]]
    queues_by_media: list[list[int]]
    presence_counts: list[list[int]]
    routing_counts: list[list[int]]


def build_entities(config: SimulationConfig, rng: random.Random, start_ms: int) -> Entities:
    """Draw the organisation for ``config`` from ``rng``.

    Every queue serves the first configured media type plus each other one with
    ``queue_media_probability``. User ``i`` is a member of queue ``i % queues`` (so no queue is
    empty while agents >= queues) and of up to two more queues.
    """
    org_presence_ids = MappingProxyType({p: new_id(rng) for p in SYSTEM_PRESENCES})
    width = max(2, len(str(config.queues)))
    queues: list[QueueInfo] = []
    queue_media: list[tuple[int, ...]] = []
    for q in range(config.queues):
        optional = [m for m in range(1, len(config.media_types))
                    if rng.random() < config.queue_media_probability]  # fmt: skip
        medias = (0, *optional)
        name = f"{_QUEUE_NAMES[q % len(_QUEUE_NAMES)]} {q + 1:0{width}d}"
        queues.append(QueueInfo(
            new_id(rng), name, tuple(config.media_types[m] for m in medias),
            rng.choice((0.7, 0.8, 0.9)), rng.choice((20_000, 30_000, 60_000)),
        ))  # fmt: skip
        queue_media.append(medias)
    queues_by_media = [
        [q for q, medias in enumerate(queue_media) if m in medias]
        for m in range(len(config.media_types))
    ]
    user_width = max(3, len(str(config.agents)))
    off_names = tuple(config.off_queue_presences)
    off_weights = tuple(w for w, _ in config.off_queue_presences.values())
    members: list[list[int]] = [[] for _ in range(config.queues)]
    users: list[UserInfo] = []
    agents: list[Agent] = []
    presence_counts = [[0] * len(SYSTEM_PRESENCES) for _ in range(config.queues)]
    routing_counts = [[0] * len(ROUTING_STATUSES) for _ in range(config.queues)]
    for u in range(config.agents):
        mine = [u % config.queues]
        for _ in range(2):
            extra = rng.randrange(config.queues)
            if rng.random() < config.extra_queue_probability and extra not in mine:
                mine.append(extra)
        if rng.random() < config.initial_on_queue_fraction:
            presence = _ON_QUEUE
        else:
            presence = SYSTEM_PRESENCES.index(rng.choices(off_names, off_weights)[0])
        users.append(UserInfo(new_id(rng), f"Agent {u + 1:0{user_width}d}",
                              tuple(queues[q].id for q in mine)))  # fmt: skip
        agent = Agent(u, tuple(mine), presence, start_ms)
        agents.append(agent)
        for q in mine:
            members[q].append(u)
            presence_counts[q][presence] += 1
            if presence != _OFFLINE:
                routing_counts[q][agent.routing] += 1
    codes = [
        WrapupCodeInfo(
            new_id(rng),
            _WRAPUP_NAMES[i] if i < len(_WRAPUP_NAMES) else f"Wrap-up {i + 1:02d}",
        )
        for i in range(config.wrapup_codes)
    ]
    return Entities(
        queues, users, codes, org_presence_ids, agents, [tuple(m) for m in members],
        queue_media, queues_by_media, presence_counts, routing_counts,
    )  # fmt: skip
