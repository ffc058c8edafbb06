"""A deterministic, seeded contact centre that the emulator streams and queries.

Theory of operation
-------------------
The centre lives in simulated epoch-milliseconds and moves only when the caller says so:
``advance(now)`` runs fixed 1-second ticks up to ``now``. A tick pops every scheduled event
due before its end from one heap ordered by ``(time_ms, sequence)`` and handles it; all
randomness comes from one ``random.Random(seed)`` consumed in that order. So the state at a
given instant depends only on the seed and the start, never on how often ``advance`` was
called, and the cost of a tick is the number of events in it, not the size of the centre.

Events: a Poisson arrival per (queue, media type) → the conversation waits in the queue
(FIFO by queue-entry time) with an abandon timer drawn from the media's patience → it is
offered to the longest-idle on-queue member (or a member with spare capacity for that media)
→ alerting for a few seconds, or, with a small probability, until the alert timeout, after
which the agent goes NOT_RESPONDING for a while and the conversation returns to the queue →
talk, maybe one hold → maybe a transfer to another queue (a new offer there) → after-call
work with a wrap-up code → the agent takes the oldest waiting conversation it can. Agents
leave the queue for breaks, meals, meetings, OFFLINE … and come back; an agent with work
finishes it first (no new offers meanwhile).

Metrics are recorded when they complete (reference §7.2, FORUM-AGG): nOffered at arrival,
tAnswered/tAcd/tWait/tAlert/nConnected/oServiceLevel at answer, tAbandon/tAcd/tWait/
oServiceLevel at abandon, tHeld at hold end, tTalk/nTransferred at end of talk, tAcw/tHandle
at end of after-call work. tHandle = talk + hold + after-call work (UNVERIFIED composition).
Status time (routing status, presence) is recorded per finished segment and every segment is
cut at each 30-minute boundary so it lands in the interval it belongs to.

Observation and agent-state values are committed at the end of each tick; a body's instant
(``interval`` "T/T") only moves when a value really changed, so callers can compare bodies to
send on change (§6.1: at most one notification per second).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.engine import KIND_PRESENCE, KIND_ROUTING, Engine
from pipeline.emulator.simulation.log import StatAccumulator
from pipeline.emulator.simulation.model import (
    AgentStateSnapshot,
    MediaObservation,
    MediaProfile,
    QueueInfo,
    SimulationConfig,
    UserInfo,
    UserSnapshot,
    WrapupCodeInfo,
)
from pipeline.emulator.simulation.topics import bodies_for_topic, is_supported_topic

__all__ = [
    "KIND_PRESENCE",
    "KIND_ROUTING",
    "ContactCenter",
    "MediaProfile",
    "QueueInfo",
    "SimulationConfig",
    "UserInfo",
    "WrapupCodeInfo",
]

_ALERTING = 1


class ContactCenter(Engine):
    """The simulated organisation: queues, agents, wrap-up codes and their live state.

    Positions (``queue``, ``media``, ``user``, ``wrapup`` integers) index :attr:`queues`,
    :attr:`media_types`, :attr:`users` and :attr:`wrapup_codes`; use :attr:`queue_index` etc.
    to map ids to positions. The read methods return snapshots or read-only views.

    Args:
        config: size, seed and behaviour.
        start: aware datetime the simulation starts at (truncated to the second).
    """

    def now(self) -> datetime:
        """The simulated instant reached: everything before it has happened."""
        return self._origin + timedelta(seconds=self._clock_s - self._start_s)

    def now_ms(self) -> int:
        """:meth:`now` in epoch milliseconds."""
        return self._clock_s * 1000

    @property
    def start_ms(self) -> int:
        """The instant the simulation started (epoch ms, whole second)."""
        return self._start_s * 1000

    @property
    def interval_start_ms(self) -> int:
        """Start of the current 30-minute aggregate interval (epoch ms)."""
        return self._interval_start

    def supported_topic(self, topic: str) -> bool:
        """True when ``topic`` is one of the templates this simulation feeds (ids unchecked)."""
        return is_supported_topic(topic)

    def topic_bodies(self, topic: str) -> list[dict[str, object]]:
        """The current ``eventBody`` dicts for a concrete topic ([] for an unknown entity)."""
        return bodies_for_topic(self, topic)

    def queue_observation(self, queue: int, media: int) -> MediaObservation:
        """Waiting / interacting / alerting counts of a queue and media, as committed."""
        slot = queue * self._m + media
        waiting, interacting, alerting, oldest_wait, oldest_talk = self._obs_key[slot]
        return MediaObservation(
            waiting, interacting, alerting, None if oldest_wait < 0 else oldest_wait,
            None if oldest_talk < 0 else oldest_talk, self._obs_at[slot],
        )  # fmt: skip

    def observation_details(self, queue: int, media: int, metric: str) -> list[tuple[int, str]]:
        """(observationDate ms, conversation id) of each conversation behind an o-metric.

        Args:
            queue: queue position. media: media position.
            metric: ``oWaiting``, ``oInteracting`` or ``oAlerting``.
        """
        slot = queue * self._m + media
        if metric == "oWaiting":
            return [(entry, self._convs[cid].uuid) for entry, cid in self._waiting[slot]]
        if metric == "oInteracting":
            return [(at, self._convs[cid].uuid) for cid, at in self._interacting[slot].items()]
        return sorted(
            (c.alert_ms, c.uuid) for c in self._convs.values()
            if c.qm == slot and c.state == _ALERTING
        )  # fmt: skip

    def agent_state(self, queue: int) -> AgentStateSnapshot:
        """Member counts of a queue by presence and routing status, as committed."""
        presence, routing = self._agents_key[queue]
        return AgentStateSnapshot(presence, routing, len(self._members[queue]),
                                  self._agents_at[queue])  # fmt: skip

    def members(self, queue: int) -> tuple[int, ...]:
        """User positions of a queue's members."""
        return self._members[queue]

    def user_snapshot(self, user: int) -> UserSnapshot:
        """Presence and routing status of one agent."""
        a = self._agents[user]
        media = self.media_types[a.media] if a.media >= 0 else None
        return UserSnapshot(SYSTEM_PRESENCES[a.presence], a.presence_ms,
                            ROUTING_STATUSES[a.routing], a.routing_ms, a.load, media)  # fmt: skip

    def current_queue_stats(self, queue: int, media: int) -> Mapping[int, StatAccumulator]:
        """Metric code → stats of the current interval for a queue and media."""
        return MappingProxyType(self._agg_queue.get(queue * self._m + media, {}))

    def current_wrapup_stats(self, wrapup: int) -> Mapping[int, Mapping[int, StatAccumulator]]:
        """Queue-media slot (queue * len(media_types) + media) → metric code → stats."""
        return MappingProxyType(self._agg_wrapup.get(wrapup, {}))

    def current_user_stats(self, user: int) -> Mapping[int, StatAccumulator]:
        """``kind * 16 + qualifier`` → time-in-status stats of the current interval."""
        return MappingProxyType(self._agg_user.get(user, {}))
