"""A deterministic, seeded contact centre that the emulator streams and queries.

:class:`ContactCenter` is assembled from plain parts, each in its own module:

* the organisation (``entities.py``): queues, users, wrap-up codes, drawn from the seed;
* the :class:`~.floor.Floor`: who waits, rings and talks right now, and the committed values;
* the :class:`~.recorder.Recorder`: completed metrics and status segments, and the totals of
  the current 30-minute interval;
* the :class:`~.engine.Engine`: the schedule of events that moves the floor, tick by tick;
* its history (``history.py``): the simulation starts before the given start and is run up to
  it when the centre is built, so past intervals hold data like a real org's.

The topic bodies built from it are in ``topics.py``; the analytics queries over it are in
``pipeline.emulator.analytics``.

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

Metrics are recorded when they complete (docs/genesys-api.md §7.2, FORUM-AGG): nOffered at arrival,
tAlert/tNotResponding/nAlertExpired when an alert times out, tAnswered/tAcd/tWait/tAlert/
nConnected/oServiceLevel at answer, tAbandon/tAcd/tWait/
oServiceLevel at abandon, tHeld at hold end, tTalk/nTransferred at end of talk, tAcw/tHandle
at end of after-call work. tHandle = talk + hold + after-call work (UNVERIFIED composition).
Status time (routing status, presence) is recorded per finished segment and every segment is
cut at each 30-minute boundary so it lands in the interval it belongs to.

Observation and agent-state values are committed at the end of each tick; a body's instant
(``interval`` "T/T") only moves when a value really changed, so callers can compare bodies to
send on change (§6.1: at most one notification per second).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from pipeline.core.genesys.metrics import SYSTEM_PRESENCES
from pipeline.emulator.simulation.engine import Engine
from pipeline.emulator.simulation.entities import build_entities
from pipeline.emulator.simulation.floor import Floor
from pipeline.emulator.simulation.history import history_start_ms
from pipeline.emulator.simulation.log import EmissionLog, SegmentLog, StatAccumulator
from pipeline.emulator.simulation.model import (
    AgentStateSnapshot,
    MediaObservation,
    SimulationConfig,
    UserSnapshot,
    to_ms,
)
from pipeline.emulator.simulation.recorder import Recorder

__all__ = ["ContactCenter"]


class ContactCenter:
    """The simulated organisation: queues, agents, wrap-up codes and their live state.

    Positions (``queue``, ``media``, ``user``, ``wrapup`` integers) index :attr:`queues`,
    :attr:`media_types`, :attr:`users` and :attr:`wrapup_codes`; use :attr:`queue_index` etc.
    to map ids to positions. The read methods return snapshots or read-only views.

    Args:
        config: size, seed and behaviour.
        start: aware datetime the simulation starts at (truncated to the second).
    """

    def __init__(self, config: SimulationConfig, start: datetime) -> None:
        self.config = config
        # One generator for everything, consumed in a fixed order: the org first, then events.
        rng = random.Random(config.seed)  # noqa: S311 - a simulation, not crypto
        live_ms = to_ms(start) // 1000 * 1000
        start_ms = history_start_ms(config, live_ms)  # the past is simulated too (history.py)
        self._origin = start - timedelta(
            microseconds=start.microsecond, milliseconds=live_ms - start_ms
        )
        self._start_s = start_ms // 1000
        self.live_start_ms = live_ms
        """The ``start`` given (epoch ms, whole second): history ends, the live part begins."""
        entities = build_entities(config, rng, start_ms)
        self.media_types: tuple[str, ...] = config.media_types
        self.queues, self.users, self.wrapup_codes = entities.queues, entities.users, entities.codes
        self.org_presence_ids: Mapping[str, str] = entities.org_presence_ids
        self.queue_index = {q.id: i for i, q in enumerate(self.queues)}
        self.user_index = {u.id: i for i, u in enumerate(self.users)}
        self.wrapup_index = {w.id: i for i, w in enumerate(self.wrapup_codes)}
        self.floor = Floor(entities, config.media_types, start_ms)
        self.recorder = Recorder(start_ms, config.retention_s)
        self.engine = Engine(
            config,
            self.floor,
            self.recorder,
            rng,
            queues=self.queues,
            wrapup_codes=len(self.wrapup_codes),
            start_ms=start_ms,
        )
        self.engine.advance(start)  # simulate the history, if any, up to the start

    # ------------------------------------------------------------------ time

    def advance(self, now: datetime) -> None:
        """Simulate whole seconds up to ``now`` (aware); earlier ``now`` values do nothing."""
        self.engine.advance(now)

    def now(self) -> datetime:
        """The simulated instant reached: everything before it has happened."""
        return self._origin + timedelta(seconds=self.engine.clock_s - self._start_s)

    def now_ms(self) -> int:
        """:meth:`now` in epoch milliseconds."""
        return self.engine.clock_s * 1000

    @property
    def start_ms(self) -> int:
        """The instant the simulation started (epoch ms, whole second): the start of its history,
        or :attr:`live_start_ms` when it has none."""
        return self._start_s * 1000

    @property
    def history_ms(self) -> int:
        """How much past was simulated before :attr:`live_start_ms` (ms)."""
        return self.live_start_ms - self.start_ms

    @property
    def interval_start_ms(self) -> int:
        """Start of the current 30-minute aggregate interval (epoch ms)."""
        return self.recorder.interval_start

    # ------------------------------------------------------------------ the organisation

    def members(self, queue: int) -> tuple[int, ...]:
        """User positions of a queue's members."""
        return self.floor.members[queue]

    def former_members(self, queue: int) -> tuple[int, ...]:
        """User positions of those who left the queue (:meth:`remove_member`)."""
        return self.floor.former_members[queue]

    def remove_member(self, queue_id: str, user_id: str) -> bool:
        """An admin takes a user out of a queue now; False when not a member.

        Raises:
            KeyError: no such queue or user.
        """
        return self.engine.leave_queue(self.user_index[user_id], self.queue_index[queue_id])

    def set_presence(self, user_id: str, presence: str) -> None:
        """An admin sets a user's system presence now (``AVAILABLE``, ``ON_QUEUE`` ...).

        Raises:
            KeyError: no such user.
            ValueError: not a system presence.
        """
        if presence not in SYSTEM_PRESENCES:
            raise ValueError(f"{presence!r} is not a system presence: {list(SYSTEM_PRESENCES)}")
        self.engine.set_presence(self.user_index[user_id], SYSTEM_PRESENCES.index(presence))

    def has_entity(self, kind: str, entity_id: str) -> bool:
        """True when the org has this queue, user or wrap-up code.

        Kinds the simulation does not model (flows, conversations ...) are taken on trust:
        every id exists.
        """
        index = {
            "queue": self.queue_index,
            "user": self.user_index,
            "wrapup": self.wrapup_index,
        }.get(kind)
        return True if index is None else entity_id in index

    # ------------------------------------------------------------------ live state

    def queue_observation(self, queue: int, media: int) -> MediaObservation:
        """Waiting / interacting / alerting counts of a queue and media, as committed."""
        return self.floor.queue_observation(queue, media)

    def observation_details(self, queue: int, media: int, metric: str) -> list[tuple[int, str]]:
        """(observationDate ms, conversation id) of each conversation behind an o-metric.

        Args:
            queue: queue position.
            media: media position.
            metric: ``oWaiting``, ``oInteracting`` or ``oAlerting``.

        Returns:
            One pair per conversation.
        """
        return self.floor.observation_details(queue, media, metric)

    def agent_state(self, queue: int) -> AgentStateSnapshot:
        """Member counts of a queue by presence and routing status, as committed."""
        return self.floor.agent_state(queue)

    def user_snapshot(self, user: int) -> UserSnapshot:
        """Presence and routing status of one agent."""
        return self.floor.user_snapshot(user)

    # ------------------------------------------------------------------ what was recorded

    @property
    def emissions(self) -> EmissionLog:
        """Every completed conversation metric within the retention."""
        return self.recorder.emissions

    @property
    def segments(self) -> SegmentLog:
        """Every finished stretch of time in a routing status or presence, within retention."""
        return self.recorder.segments

    def current_queue_stats(self, queue: int, media: int) -> Mapping[int, StatAccumulator]:
        """Metric code → stats of the current interval for a queue and media."""
        return self.recorder.slot_stats(queue * len(self.media_types) + media)

    def current_wrapup_stats(self, wrapup: int) -> Mapping[int, Mapping[int, StatAccumulator]]:
        """Queue-media slot (queue * len(media_types) + media) → metric code → stats."""
        return self.recorder.wrapup_stats(wrapup)

    def current_user_stats(self, user: int) -> Mapping[int, StatAccumulator]:
        """``kind * 16 + qualifier`` → time-in-status stats of the current interval."""
        return self.recorder.user_stats(user)
