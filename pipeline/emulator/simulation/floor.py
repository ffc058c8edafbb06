"""The contact-center floor: who is waiting, ringing, talking, and in which state, right now.

The :class:`Floor` holds the live tables the :class:`~.engine.Engine` changes (conversations
waiting per queue-media slot, conversations connected, agents with their presence and routing
status, member counts per queue) and the *committed* values the outside reads.

Committing is what makes "send on change" work (docs/genesys-api.md §6.1): the engine marks a slot
or a queue as touched when it changes something, and at the end of each tick :meth:`Floor.commit`
compares the touched ones with their last committed value. Only a real change moves a value
and its instant, so a body built from committed values is equal (``==``) to the previous one
until something really changed.

A queue-media *slot* is ``queue * media_count + media``; positions index the org's tables.
"""

from __future__ import annotations

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.entities import ALERTING, Agent, Conversation, Entities
from pipeline.emulator.simulation.model import (
    AgentStateSnapshot,
    MediaObservation,
    UserSnapshot,
)

__all__ = ["Floor"]

_ObservationKey = tuple[int, int, int, int, int]  # waiting, interacting, alerting, oldest ×2
_AgentsKey = tuple[tuple[int, ...], tuple[int, ...]]  # presence counts, routing counts


class Floor:
    """The live state of the simulated contact center, and its committed view.

    Args:
        entities: the drawn organisation (its agent and count tables become the floor's).
        media_types: the simulated media types, in position order.
        start_ms: the simulation's start (epoch ms): the instant of every initial value.
    """

    def __init__(self, entities: Entities, media_types: tuple[str, ...], start_ms: int) -> None:
        self.media_types = media_types
        self.media_count = m = len(media_types)
        queues = len(entities.queues)
        slots = queues * m
        # the organisation's shape
        self.agents: list[Agent] = entities.agents
        self.members: list[tuple[int, ...]] = entities.members
        self.former_members: list[tuple[int, ...]] = [() for _ in range(queues)]
        self.queue_media: list[tuple[int, ...]] = entities.queue_media
        self.queues_by_media: list[list[int]] = entities.queues_by_media
        # live: conversations by id, and per slot who waits (entry ms, id), talks, rings
        self.conversations: dict[int, Conversation] = {}
        self.waiting: list[list[tuple[int, int]]] = [[] for _ in range(slots)]
        self.interacting: list[dict[int, int]] = [{} for _ in range(slots)]
        self.alerting = [0] * slots
        # live: member counts per queue by presence (all) and routing status (not OFFLINE)
        self.presence_counts: list[list[int]] = entities.presence_counts
        self.routing_counts: list[list[int]] = entities.routing_counts
        # committed: value, the instant it took effect, and the last mutation since
        self._obs_key: list[_ObservationKey] = [(0, 0, 0, -1, -1)] * slots
        self._obs_at = [start_ms] * slots
        self._obs_mut = [start_ms] * slots
        self._agents_key = [self._agents_now(q) for q in range(queues)]
        self._agents_at = [start_ms] * queues
        self._agents_mut = [start_ms] * queues
        self._dirty_slots: set[int] = set()
        self._dirty_queues: set[int] = set()

    # ------------------------------------------------------------------ changes

    def touch_slot(self, slot: int, at: int) -> None:
        """The conversation counts of ``slot`` may have changed at ``at``."""
        self._obs_mut[slot] = at
        self._dirty_slots.add(slot)

    def touch_queue(self, queue: int, at: int) -> None:
        """The member counts of ``queue`` may have changed at ``at``."""
        self._agents_mut[queue] = at
        self._dirty_queues.add(queue)

    def commit(self) -> None:
        """End of tick: publish the touched values that really changed, with their instant."""
        for slot in self._dirty_slots:
            key = self._observation_now(slot)
            if key != self._obs_key[slot]:
                self._obs_key[slot], self._obs_at[slot] = key, self._obs_mut[slot]
        for q in self._dirty_queues:
            state = self._agents_now(q)
            if state != self._agents_key[q]:
                self._agents_key[q], self._agents_at[q] = state, self._agents_mut[q]
        self._dirty_slots.clear()
        self._dirty_queues.clear()

    # ------------------------------------------------------------------ committed reads

    def queue_observation(self, queue: int, media: int) -> MediaObservation:
        """Waiting / interacting / alerting counts of a queue and media, as committed."""
        slot = queue * self.media_count + media
        waiting, interacting, alerting, oldest_wait, oldest_talk = self._obs_key[slot]
        return MediaObservation(
            waiting, interacting, alerting, None if oldest_wait < 0 else oldest_wait,
            None if oldest_talk < 0 else oldest_talk, self._obs_at[slot],
        )  # fmt: skip

    def agent_state(self, queue: int) -> AgentStateSnapshot:
        """Member counts of a queue by presence and routing status, as committed."""
        presence, routing = self._agents_key[queue]
        return AgentStateSnapshot(presence, routing, len(self.members[queue]),
                                  self._agents_at[queue])  # fmt: skip

    # ------------------------------------------------------------------ live reads

    def observation_details(self, queue: int, media: int, metric: str) -> list[tuple[int, str]]:
        """(observationDate ms, conversation id) of each conversation behind an o-metric.

        Args:
            queue: queue position.
            media: media position.
            metric: ``oWaiting``, ``oInteracting`` or ``oAlerting``.

        Returns:
            One pair per conversation, oldest first for ``oWaiting`` and ``oAlerting``.
        """
        slot = queue * self.media_count + media
        convs = self.conversations
        if metric == "oWaiting":
            return [(entry, convs[cid].uuid) for entry, cid in self.waiting[slot]]
        if metric == "oInteracting":
            return [(at, convs[cid].uuid) for cid, at in self.interacting[slot].items()]
        return sorted(
            (c.alert_ms, c.uuid) for c in convs.values() if c.qm == slot and c.state == ALERTING
        )

    def user_snapshot(self, user: int) -> UserSnapshot:
        """Presence and routing status of one agent."""
        a = self.agents[user]
        media = self.media_types[a.media] if a.media >= 0 else None
        return UserSnapshot(SYSTEM_PRESENCES[a.presence], a.presence_ms,
                            ROUTING_STATUSES[a.routing], a.routing_ms, a.load, media)  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _observation_now(self, slot: int) -> _ObservationKey:
        waiting, talking = self.waiting[slot], self.interacting[slot]
        oldest_talk = next(iter(talking.values())) if talking else -1
        return (len(waiting), len(talking), self.alerting[slot],
                waiting[0][0] if waiting else -1, oldest_talk)  # fmt: skip

    def _agents_now(self, q: int) -> _AgentsKey:
        return tuple(self.presence_counts[q]), tuple(self.routing_counts[q])
