"""The event engine: what happens on the contact-center floor, one simulated second at a time.

See the theory of operation in ``center.py``. The engine owns the schedule (one heap of
timed events), the random generator and the routing index; it changes the
:class:`~.floor.Floor` and tells the :class:`~.recorder.Recorder` what completed. Positions
(ints) index queues, media types, users and wrap-up codes, and a queue-media "slot" is
``queue * len(media_types) + media``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from datetime import datetime
from heapq import heappop, heappush

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.entities import (
    ACW,
    ALERTING,
    CONNECTED,
    WAITING,
    Agent,
    Conversation,
)
from pipeline.emulator.simulation.floor import Floor
from pipeline.emulator.simulation.model import INTERVAL_MS, QueueInfo, SimulationConfig, to_ms
from pipeline.emulator.simulation.recorder import KIND_PRESENCE, KIND_ROUTING, Recorder
from pipeline.emulator.simulation.routing import RoutingIndex

__all__ = ["Engine"]

# Kinds of scheduled events (the third field of a heap entry).
_ARRIVAL, _ABANDON, _ALERT_END, _HOLD_END, _TALK_END, _ACW_END, _PRESENCE, _NR_END = range(8)
_ON_QUEUE, _OFFLINE = SYSTEM_PRESENCES.index("ON_QUEUE"), SYSTEM_PRESENCES.index("OFFLINE")
_OFF, _IDLE, _INTERACTING, _NOT_RESPONDING = (
    ROUTING_STATUSES.index(s) for s in ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING")
)


class Engine:
    """Seeded discrete-event simulation of queues and agents in 1-second ticks.

    Args:
        config: size, seed and behaviour.
        floor: the live state it changes.
        recorder: where completed metrics and status segments go.
        rng: the one random generator (already used to draw the org; consumed in event order).
        queues: the queues (for their service-level targets).
        wrapup_codes: how many wrap-up codes agents pick from.
        start_ms: the simulation's start, epoch ms on a whole second.
    """

    def __init__(
        self,
        config: SimulationConfig,
        floor: Floor,
        recorder: Recorder,
        rng: random.Random,
        *,
        queues: Sequence[QueueInfo],
        wrapup_codes: int,
        start_ms: int,
    ) -> None:
        self.config = config
        self.floor = floor
        self.recorder = recorder
        self.clock_s = start_ms // 1000
        """The second simulated next: everything before it has happened."""
        self._rng = rng
        self._queues = queues
        self._wrapup_codes = wrapup_codes
        self._m = m_count = floor.media_count
        self._profiles = [config.profile(m) for m in floor.media_types]
        self._routable = RoutingIndex(floor.queue_media, m_count)
        self._cids = itertools.count()
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = itertools.count()
        self._handlers: tuple[Callable[[int, int, int], None], ...] = (
            self._on_arrival, self._on_abandon, self._on_alert_end, self._on_hold_end,
            self._on_talk_end, self._on_acw_end, self._on_presence, self._on_nr_end,
        )  # fmt: skip
        self._off_names = tuple(config.off_queue_presences)
        self._off_weights = tuple(w for w, _ in config.off_queue_presences.values())
        rate = config.arrival_rate_per_queue_per_min / 60.0
        self._arrival_mean_s = [0.0] * (len(queues) * m_count)
        for q, medias in enumerate(floor.queue_media):
            weights = [self._profiles[m].weight for m in medias]
            for m, weight in zip(medias, weights, strict=True):
                share = rate * weight / sum(weights) if sum(weights) > 0 else 0.0
                if share > 1e-9:  # below one arrival in ~30 years: none at all
                    self._arrival_mean_s[q * m_count + m] = 1.0 / share
                    self._push(start_ms + self._exp_ms(1.0 / share), _ARRIVAL, q * m_count + m)
        for agent in floor.agents:
            if agent.presence == _ON_QUEUE:
                self._routable.add(agent)
            self._push(start_ms + self._exp_ms(self._presence_mean(agent.presence)), _PRESENCE,
                       agent.idx, agent.presence_gen)  # fmt: skip

    def advance(self, now: datetime) -> None:
        """Simulate whole seconds up to ``now`` (aware); earlier ``now`` values do nothing."""
        target = to_ms(now) // 1000
        while self.clock_s < target:
            self._tick(self.clock_s * 1000)
            self.clock_s += 1

    # ------------------------------------------------------------------ clock
    def _tick(self, t0: int) -> None:
        if t0 >= self.recorder.interval_start + INTERVAL_MS:
            self._roll_interval(t0 - t0 % INTERVAL_MS)
        heap, end, handlers = self._heap, t0 + 1000, self._handlers
        while heap and heap[0][0] < end:
            at, _, kind, a, b = heappop(heap)
            handlers[kind](at, a, b)
        self.floor.commit()

    def _roll_interval(self, boundary: int) -> None:
        close = self.recorder.close_segment
        for a in self.floor.agents:  # cut open status segments at the boundary
            close(a.idx, KIND_ROUTING, a.routing, a.routing_seg, boundary)
            close(a.idx, KIND_PRESENCE, a.presence, a.presence_seg, boundary)
            a.routing_seg = a.presence_seg = boundary
        self.recorder.start_interval(boundary)

    def _push(self, at: int, kind: int, a: int, b: int = 0) -> None:
        heappush(self._heap, (at, next(self._seq), kind, a, b))

    def _exp_ms(self, mean_s: float) -> int:
        return 1 + int(self._rng.expovariate(1.0 / mean_s) * 1000)

    def _gamma_ms(self, mean_s: float) -> int:
        return 1 + int(self._rng.gammavariate(2.0, mean_s / 2.0) * 1000)

    def _presence_mean(self, presence: int) -> float:
        if presence == _ON_QUEUE:
            return self.config.on_queue_mean_s
        return self.config.off_queue_presences[SYSTEM_PRESENCES[presence]][1]

    # ------------------------------------------------------------------ conversations
    def _on_arrival(self, at: int, slot: int, _: int) -> None:
        self._admit(slot // self._m, slot % self._m, at)
        self._push(at + self._exp_ms(self._arrival_mean_s[slot]), _ARRIVAL, slot)

    def _admit(self, queue: int, media: int, at: int, uid: str | None = None) -> None:
        """A conversation enters a queue: new (``uid`` None) or transferred in."""
        cid = next(self._cids)
        if uid is None:
            uid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        conv = Conversation(cid, queue, media, queue * self._m + media, at, uid)
        self.floor.conversations[cid] = conv
        self.recorder.emit(at, "nOffered", conv, -1, 1)
        patience = self._profiles[media].patience_mean_s
        if patience is not None:
            self._push(at + self._exp_ms(patience), _ABANDON, cid)
        self._enqueue(conv, at)
        self._route(conv, at)

    def _route(self, conv: Conversation, at: int) -> None:
        agent = self._routable.pick(conv.queue, conv.qm)
        if agent is not None:
            self._offer(conv, self.floor.agents[agent], at)

    def _enqueue(self, conv: Conversation, at: int) -> None:
        conv.state, conv.agent = WAITING, -1
        insort(self.floor.waiting[conv.qm], (conv.entry_ms, conv.cid))
        self.floor.touch_slot(conv.qm, at)

    def _dequeue(self, conv: Conversation) -> None:
        waiting = self.floor.waiting[conv.qm]
        del waiting[bisect_left(waiting, (conv.entry_ms, conv.cid))]

    def _offer(self, conv: Conversation, agent: Agent, at: int) -> None:
        self._dequeue(conv)
        conv.state, conv.agent, conv.alert_ms = ALERTING, agent.idx, at
        conv.gen += 1
        self.floor.alerting[conv.qm] += 1
        self.floor.touch_slot(conv.qm, at)
        agent.alerting = conv.cid
        self._routable.remove(agent)
        self._refresh_routing(agent, at)
        cfg, rng = self.config, self._rng
        conv.not_responding = rng.random() < cfg.not_responding_probability
        seconds = cfg.alert_timeout_s if conv.not_responding else rng.uniform(
            cfg.alert_min_s, cfg.alert_max_s)  # fmt: skip
        self._push(at + int(seconds * 1000), _ALERT_END, conv.cid, conv.gen)

    def _on_alert_end(self, at: int, cid: int, gen: int) -> None:
        emit = self.recorder.emit
        conv = self.floor.conversations.get(cid)
        if conv is None or conv.gen != gen:
            return
        agent = self.floor.agents[conv.agent]
        self.floor.alerting[conv.qm] -= 1
        self.floor.touch_slot(conv.qm, at)
        agent.alerting = -1
        emit(at, "tAlert", conv, agent.idx, at - conv.alert_ms)
        conv.gen += 1
        if conv.not_responding:
            emit(at, "tNotResponding", conv, agent.idx, at - conv.alert_ms)
            emit(at, "nAlertExpired", conv, agent.idx, 1)
            agent.not_responding, agent.nr_gen = True, agent.nr_gen + 1
            self._push(at + self._exp_ms(self.config.not_responding_mean_s), _NR_END,
                       agent.idx, agent.nr_gen)  # fmt: skip
            self._enqueue(conv, at)  # back in the queue at its original position
            self._release(agent, at)
            self._route(conv, at)
            return
        wait, queue = at - conv.entry_ms, self._queues[conv.queue]
        for metric in ("tAnswered", "tAcd", "tWait"):
            emit(at, metric, conv, agent.idx if metric == "tAnswered" else -1, wait)
        emit(at, "nConnected", conv, agent.idx, 1)
        emit(at, "oServiceLevel", conv, -1, int(wait <= queue.service_level_duration_ms))
        if wait > queue.service_level_duration_ms:
            emit(at, "nOverSla", conv, -1, 1)
        conv.state, conv.connect_ms = CONNECTED, at
        self.floor.interacting[conv.qm][cid] = at
        agent.load, agent.media = agent.load + 1, conv.media
        profile, rng = self._profiles[conv.media], self._rng
        conv.wrapup = rng.randrange(self._wrapup_codes)
        conv.talk_ms = self._gamma_ms(profile.talk_mean_s)
        conv.hold_ms = 0
        if rng.random() < profile.hold_probability:
            conv.hold_ms = self._gamma_ms(profile.hold_mean_s)
            self._push(at + conv.talk_ms // 2 + conv.hold_ms, _HOLD_END, cid, conv.gen)
        self._push(at + conv.talk_ms + conv.hold_ms, _TALK_END, cid, conv.gen)
        self._settle(agent, at)

    def _on_hold_end(self, at: int, cid: int, gen: int) -> None:
        conv = self.floor.conversations[cid]
        self.recorder.emit(at, "tHeld", conv, conv.agent, conv.hold_ms)

    def _on_talk_end(self, at: int, cid: int, gen: int) -> None:
        conv = self.floor.conversations[cid]
        self.recorder.emit(at, "tTalk", conv, conv.agent, conv.talk_ms)
        del self.floor.interacting[conv.qm][cid]
        self.floor.touch_slot(conv.qm, at)
        targets = self.floor.queues_by_media[conv.media]
        if (
            len(targets) > 1
            and self._rng.random() < self._profiles[conv.media].transfer_probability
        ):
            self.recorder.emit(at, "nTransferred", conv, conv.agent, 1)
            pick = self._rng.randrange(len(targets) - 1)
            pick += pick >= bisect_left(targets, conv.queue)
            self._admit(targets[pick], conv.media, at, conv.uuid)  # same conversation id
        conv.state = ACW
        self._push(at + self._gamma_ms(self._profiles[conv.media].acw_mean_s), _ACW_END, cid)

    def _on_acw_end(self, at: int, cid: int, _: int) -> None:
        emit = self.recorder.emit
        conv = self.floor.conversations.pop(cid)
        emit(at, "tAcw", conv, conv.agent, at - conv.connect_ms - conv.talk_ms - conv.hold_ms)
        emit(at, "tHandle", conv, conv.agent, at - conv.connect_ms)
        agent = self.floor.agents[conv.agent]
        self._routable.remove(agent)
        agent.load -= 1
        if agent.load == 0:
            agent.media = -1
        self._release(agent, at)

    def _on_abandon(self, at: int, cid: int, _: int) -> None:
        emit = self.recorder.emit
        conv = self.floor.conversations.get(cid)
        if conv is None or conv.state not in (WAITING, ALERTING):
            return
        del self.floor.conversations[cid]
        if conv.state == WAITING:
            self._dequeue(conv)
        else:  # the customer hung up while an agent's phone was ringing
            agent = self.floor.agents[conv.agent]
            self.floor.alerting[conv.qm] -= 1
            agent.alerting = -1
            emit(at, "tAlert", conv, agent.idx, at - conv.alert_ms)
            self._release(agent, at)
        self.floor.touch_slot(conv.qm, at)
        wait, queue = at - conv.entry_ms, self._queues[conv.queue]
        for metric in ("tAbandon", "tAcd", "tWait"):
            emit(at, metric, conv, -1, wait)
        if wait < self.config.short_abandon_s * 1000:
            emit(at, "tShortAbandon", conv, -1, wait)
        emit(at, "oServiceLevel", conv, -1, 0)
        if wait > queue.service_level_duration_ms:
            emit(at, "nOverSla", conv, -1, 1)

    # ------------------------------------------------------------------ agents
    def _on_presence(self, at: int, idx: int, gen: int) -> None:
        agent = self.floor.agents[idx]
        if gen != agent.presence_gen:
            return
        if agent.presence != _ON_QUEUE:
            self._change_presence(agent, _ON_QUEUE, at)
            return
        name = self._rng.choices(self._off_names, self._off_weights)[0]
        agent.pending = SYSTEM_PRESENCES.index(name)
        self._release(agent, at)  # goes now if free, else after the current work

    def _on_nr_end(self, at: int, idx: int, gen: int) -> None:
        agent = self.floor.agents[idx]
        if gen == agent.nr_gen and agent.not_responding:
            agent.not_responding = False
            self._release(agent, at)

    def _release(self, agent: Agent, at: int) -> None:
        if agent.pending >= 0 and agent.load == 0 and agent.alerting < 0:
            self._change_presence(agent, agent.pending, at)
        else:
            self._settle(agent, at)

    def _change_presence(self, agent: Agent, presence: int, at: int) -> None:
        floor, old = self.floor, agent.presence
        self.recorder.close_segment(agent.idx, KIND_PRESENCE, old, agent.presence_seg, at)
        for q in agent.queues:
            counts, routing = floor.presence_counts[q], floor.routing_counts[q]
            counts[old] -= 1
            counts[presence] += 1
            if old == _OFFLINE and presence != _OFFLINE:
                routing[agent.routing] += 1
            elif old != _OFFLINE and presence == _OFFLINE:
                routing[agent.routing] -= 1
            floor.touch_queue(q, at)
        agent.presence, agent.presence_ms, agent.presence_seg = presence, at, at
        agent.pending, agent.not_responding = -1, False
        agent.presence_gen += 1
        self._push(at + self._exp_ms(self._presence_mean(presence)), _PRESENCE, agent.idx,
                   agent.presence_gen)  # fmt: skip
        self._settle(agent, at)

    def _refresh_routing(self, agent: Agent, at: int) -> None:
        if agent.presence != _ON_QUEUE:
            status = _OFF
        elif agent.not_responding:
            status = _NOT_RESPONDING
        else:
            status = _INTERACTING if agent.load or agent.alerting >= 0 else _IDLE
        if status == agent.routing:
            return
        self.recorder.close_segment(agent.idx, KIND_ROUTING, agent.routing, agent.routing_seg, at)
        if agent.presence != _OFFLINE:
            for q in agent.queues:
                counts = self.floor.routing_counts[q]
                counts[agent.routing] -= 1
                counts[status] += 1
                self.floor.touch_queue(q, at)
        agent.routing, agent.routing_ms, agent.routing_seg = status, at, at

    def _settle(self, agent: Agent, at: int) -> None:
        """Recompute routing status, then take the oldest waiting work or wait in the index."""
        self._routable.remove(agent)
        self._refresh_routing(agent, at)
        if (
            agent.presence != _ON_QUEUE
            or agent.not_responding
            or agent.alerting >= 0
            or agent.pending >= 0
            or (agent.load and agent.load >= self._profiles[agent.media].capacity)
        ):
            return  # fmt: skip
        best: tuple[int, int] | None = None
        m_count = self._m
        for q in agent.queues:
            medias = self.floor.queue_media[q] if agent.load == 0 else (agent.media,)
            for m in medias:
                waiting = self.floor.waiting[q * m_count + m]
                if waiting and (best is None or waiting[0] < best):
                    best = waiting[0]
        if best is not None:
            self._offer(self.floor.conversations[best[1]], agent, at)
        else:
            self._routable.add(agent)

    # ------------------------------------------------------------------ admin changes
    def set_presence(self, user: int, presence: int) -> None:
        """Put agent ``user`` in system presence ``presence`` now (an admin's change)."""
        agent = self.floor.agents[user]
        if agent.presence != presence:
            self._change_presence(agent, presence, self.clock_s * 1000)
            self.floor.commit()

    def leave_queue(self, user: int, queue: int) -> bool:
        """Take agent ``user`` out of ``queue`` now; False when it was not a member."""
        floor, agent, at = self.floor, self.floor.agents[user], self.clock_s * 1000
        if queue not in agent.queues:
            return False
        self._routable.remove(agent)
        floor.presence_counts[queue][agent.presence] -= 1
        if agent.presence != _OFFLINE:
            floor.routing_counts[queue][agent.routing] -= 1
        agent.queues = tuple(q for q in agent.queues if q != queue)
        floor.members[queue] = tuple(u for u in floor.members[queue] if u != user)
        floor.former_members[queue] = (*floor.former_members[queue], user)
        floor.touch_queue(queue, at)
        self._settle(agent, at)  # routable again through its other queues, if any
        floor.commit()
        return True
