"""The event engine behind :class:`~pipeline.emulator.simulation.center.ContactCenter`.

See the theory of operation in ``simulation.py``. Everything here is private working state;
positions (ints) index queues, media types, users and wrap-up codes, and a queue-media "slot"
is ``queue * len(media_types) + media``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from heapq import heappop, heappush

from pipeline.core.genesys.metrics import ROUTING_STATUSES, SYSTEM_PRESENCES
from pipeline.emulator.simulation.entities import Agent, Conversation, build_entities
from pipeline.emulator.simulation.log import EmissionLog, SegmentLog, StatAccumulator
from pipeline.emulator.simulation.model import (
    INTERVAL_MS,
    RECORDED_METRICS,
    WRAPUP_METRICS,
    SimulationConfig,
    to_ms,
)
from pipeline.emulator.simulation.routing import RoutingIndex

__all__ = ["KIND_PRESENCE", "KIND_ROUTING", "Engine"]

KIND_ROUTING, KIND_PRESENCE = 0, 1  # segment kinds, see SegmentLog
_ARRIVAL, _ABANDON, _ALERT_END, _HOLD_END, _TALK_END, _ACW_END, _PRESENCE, _NR_END = range(8)
_WAITING, _ALERTING, _CONNECTED, _ACW = range(4)
_ON_QUEUE, _OFFLINE = SYSTEM_PRESENCES.index("ON_QUEUE"), SYSTEM_PRESENCES.index("OFFLINE")
_OFF, _IDLE, _INTERACTING, _NOT_RESPONDING = (
    ROUTING_STATUSES.index(s) for s in ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING")
)
_MC = {name: code for code, name in enumerate(RECORDED_METRICS)}  # metric codes


class Engine:
    """Seeded discrete-event simulation of queues and agents in 1-second ticks.

    Args:
        config: size, seed and behaviour.
        start: aware datetime the simulation starts at (truncated to the second).
    """

    def __init__(self, config: SimulationConfig, start: datetime) -> None:
        self.config = config
        self._rng = rng = random.Random(config.seed)  # noqa: S311 - a simulation, not crypto
        start_ms = to_ms(start) // 1000 * 1000
        self._origin = start - timedelta(microseconds=start.microsecond)
        self._start_s = self._clock_s = start_ms // 1000
        self.media_types: tuple[str, ...] = config.media_types
        entities = build_entities(config, rng, start_ms)
        self.queues, self.users, self.wrapup_codes = entities.queues, entities.users, entities.codes
        self.org_presence_ids: Mapping[str, str] = entities.org_presence_ids
        self.queue_index = {q.id: i for i, q in enumerate(self.queues)}
        self.user_index = {u.id: i for i, u in enumerate(self.users)}
        self.wrapup_index = {w.id: i for i, w in enumerate(self.wrapup_codes)}
        self.emissions = EmissionLog(INTERVAL_MS)
        self.segments = SegmentLog(INTERVAL_MS)
        self._agents = entities.agents
        self._members = entities.members
        self._queue_media = entities.queue_media
        self._queues_by_media = entities.queues_by_media
        m_count = self._m = len(self.media_types)
        slots = config.queues * m_count
        self._profiles = [config.profile(m) for m in self.media_types]
        self._waiting: list[list[tuple[int, int]]] = [[] for _ in range(slots)]
        self._interacting: list[dict[int, int]] = [{} for _ in range(slots)]
        self._alerting = [0] * slots
        self._obs_key: list[tuple[int, ...]] = [(0, 0, 0, -1, -1)] * slots
        self._obs_at = [start_ms] * slots
        self._obs_mut = [start_ms] * slots
        self._routable = RoutingIndex(self._queue_media, m_count)
        self._presence_counts = entities.presence_counts
        self._routing_counts = entities.routing_counts
        self._agents_key = [self._agents_state(q) for q in range(config.queues)]
        self._agents_at = [start_ms] * config.queues
        self._agents_mut = [start_ms] * config.queues
        self._dirty_obs: set[int] = set()
        self._dirty_agents: set[int] = set()
        self._convs: dict[int, Conversation] = {}
        self._cids = itertools.count()
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = itertools.count()
        self._interval_start = start_ms - start_ms % INTERVAL_MS
        self._agg_queue: dict[int, dict[int, StatAccumulator]] = {}
        self._agg_wrapup: dict[int, dict[int, dict[int, StatAccumulator]]] = {}
        self._agg_user: dict[int, dict[int, StatAccumulator]] = {}
        self._handlers: tuple[Callable[[int, int, int], None], ...] = (
            self._on_arrival, self._on_abandon, self._on_alert_end, self._on_hold_end,
            self._on_talk_end, self._on_acw_end, self._on_presence, self._on_nr_end,
        )  # fmt: skip
        self._off_names = tuple(config.off_queue_presences)
        self._off_weights = tuple(w for w, _ in config.off_queue_presences.values())
        rate = config.arrival_rate_per_queue_per_min / 60.0
        self._arrival_mean_s = [0.0] * slots
        for q, medias in enumerate(self._queue_media):
            weights = [self._profiles[m].weight for m in medias]
            for m, weight in zip(medias, weights, strict=True):
                share = rate * weight / sum(weights) if sum(weights) > 0 else 0.0
                if share > 1e-9:  # below one arrival in ~30 years: none at all
                    self._arrival_mean_s[q * m_count + m] = 1.0 / share
                    self._push(start_ms + self._exp_ms(1.0 / share), _ARRIVAL, q * m_count + m)
        for agent in self._agents:
            if agent.presence == _ON_QUEUE:
                self._routable.add(agent)
            self._push(start_ms + self._exp_ms(self._presence_mean(agent.presence)), _PRESENCE,
                       agent.idx, agent.presence_gen)  # fmt: skip

    def advance(self, now: datetime) -> None:
        """Simulate whole seconds up to ``now`` (aware); earlier ``now`` values do nothing."""
        target = to_ms(now) // 1000
        while self._clock_s < target:
            self._tick(self._clock_s * 1000)
            self._clock_s += 1

    # ------------------------------------------------------------------ clock
    def _tick(self, t0: int) -> None:
        if t0 >= self._interval_start + INTERVAL_MS:
            self._roll_interval(t0 - t0 % INTERVAL_MS)
        heap, end, handlers = self._heap, t0 + 1000, self._handlers
        while heap and heap[0][0] < end:
            at, _, kind, a, b = heappop(heap)
            handlers[kind](at, a, b)
        for slot in self._dirty_obs:
            key = self._obs_state(slot)
            if key != self._obs_key[slot]:
                self._obs_key[slot], self._obs_at[slot] = key, self._obs_mut[slot]
        for q in self._dirty_agents:
            state = self._agents_state(q)
            if state != self._agents_key[q]:
                self._agents_key[q], self._agents_at[q] = state, self._agents_mut[q]
        self._dirty_obs.clear()
        self._dirty_agents.clear()

    def _roll_interval(self, boundary: int) -> None:
        for a in self._agents:  # cut open status segments at the boundary
            self._close_segment(a.idx, KIND_ROUTING, a.routing, a.routing_seg, boundary)
            self._close_segment(a.idx, KIND_PRESENCE, a.presence, a.presence_seg, boundary)
            a.routing_seg = a.presence_seg = boundary
        self._agg_queue, self._agg_wrapup, self._agg_user = {}, {}, {}
        self._interval_start = boundary
        self.emissions.prune(boundary - self.config.retention_s * 1000)
        self.segments.prune(boundary - self.config.retention_s * 1000)

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

    # ------------------------------------------------------------------ recording
    def _emit(self, at: int, metric: str, conv: Conversation, user: int, value: int) -> None:
        code, slot = _MC[metric], conv.qm
        wrapup = conv.wrapup if metric in WRAPUP_METRICS else -1
        self.emissions.add(at, code, conv.queue, conv.media, user, wrapup, value)
        accs = self._agg_queue.setdefault(slot, {})
        (accs.get(code) or accs.setdefault(code, StatAccumulator())).add(value)
        if wrapup >= 0:
            waccs = self._agg_wrapup.setdefault(wrapup, {}).setdefault(slot, {})
            (waccs.get(code) or waccs.setdefault(code, StatAccumulator())).add(value)

    def _close_segment(self, user: int, kind: int, qualifier: int, start: int, end: int) -> None:
        if end > start:
            self.segments.add(user, kind, qualifier, start, end)
            accs = self._agg_user.setdefault(user, {})
            key = kind * 16 + qualifier
            (accs.get(key) or accs.setdefault(key, StatAccumulator())).add(end - start)

    def _obs_state(self, slot: int) -> tuple[int, ...]:
        waiting, talking = self._waiting[slot], self._interacting[slot]
        oldest_talk = next(iter(talking.values())) if talking else -1
        return (len(waiting), len(talking), self._alerting[slot],
                waiting[0][0] if waiting else -1, oldest_talk)  # fmt: skip

    def _agents_state(self, q: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self._presence_counts[q]), tuple(self._routing_counts[q])

    def _touch(self, slot: int, at: int) -> None:
        self._obs_mut[slot] = at
        self._dirty_obs.add(slot)

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
        self._convs[cid] = conv
        self._emit(at, "nOffered", conv, -1, 1)
        patience = self._profiles[media].patience_mean_s
        if patience is not None:
            self._push(at + self._exp_ms(patience), _ABANDON, cid)
        self._enqueue(conv, at)
        self._route(conv, at)

    def _route(self, conv: Conversation, at: int) -> None:
        agent = self._routable.pick(conv.queue, conv.qm)
        if agent is not None:
            self._offer(conv, self._agents[agent], at)

    def _enqueue(self, conv: Conversation, at: int) -> None:
        conv.state, conv.agent = _WAITING, -1
        insort(self._waiting[conv.qm], (conv.entry_ms, conv.cid))
        self._touch(conv.qm, at)

    def _dequeue(self, conv: Conversation) -> None:
        waiting = self._waiting[conv.qm]
        del waiting[bisect_left(waiting, (conv.entry_ms, conv.cid))]

    def _offer(self, conv: Conversation, agent: Agent, at: int) -> None:
        self._dequeue(conv)
        conv.state, conv.agent, conv.alert_ms = _ALERTING, agent.idx, at
        conv.gen += 1
        self._alerting[conv.qm] += 1
        self._touch(conv.qm, at)
        agent.alerting = conv.cid
        self._routable.remove(agent)
        self._refresh_routing(agent, at)
        cfg, rng = self.config, self._rng
        conv.not_responding = rng.random() < cfg.not_responding_probability
        seconds = cfg.alert_timeout_s if conv.not_responding else rng.uniform(
            cfg.alert_min_s, cfg.alert_max_s)  # fmt: skip
        self._push(at + int(seconds * 1000), _ALERT_END, conv.cid, conv.gen)

    def _on_alert_end(self, at: int, cid: int, gen: int) -> None:
        conv = self._convs.get(cid)
        if conv is None or conv.gen != gen:
            return
        agent = self._agents[conv.agent]
        self._alerting[conv.qm] -= 1
        self._touch(conv.qm, at)
        agent.alerting = -1
        self._emit(at, "tAlert", conv, agent.idx, at - conv.alert_ms)
        conv.gen += 1
        if conv.not_responding:
            self._emit(at, "tNotResponding", conv, agent.idx, at - conv.alert_ms)
            agent.not_responding, agent.nr_gen = True, agent.nr_gen + 1
            self._push(at + self._exp_ms(self.config.not_responding_mean_s), _NR_END,
                       agent.idx, agent.nr_gen)  # fmt: skip
            self._enqueue(conv, at)  # back in the queue at its original position
            self._release(agent, at)
            self._route(conv, at)
            return
        wait, queue = at - conv.entry_ms, self.queues[conv.queue]
        for metric in ("tAnswered", "tAcd", "tWait"):
            self._emit(at, metric, conv, agent.idx if metric == "tAnswered" else -1, wait)
        self._emit(at, "nConnected", conv, agent.idx, 1)
        self._emit(at, "oServiceLevel", conv, -1, int(wait <= queue.service_level_duration_ms))
        if wait > queue.service_level_duration_ms:
            self._emit(at, "nOverSla", conv, -1, 1)
        conv.state, conv.connect_ms = _CONNECTED, at
        self._interacting[conv.qm][cid] = at
        agent.load, agent.media = agent.load + 1, conv.media
        profile, rng = self._profiles[conv.media], self._rng
        conv.wrapup = rng.randrange(len(self.wrapup_codes))
        conv.talk_ms = self._gamma_ms(profile.talk_mean_s)
        conv.hold_ms = 0
        if rng.random() < profile.hold_probability:
            conv.hold_ms = self._gamma_ms(profile.hold_mean_s)
            self._push(at + conv.talk_ms // 2 + conv.hold_ms, _HOLD_END, cid, conv.gen)
        self._push(at + conv.talk_ms + conv.hold_ms, _TALK_END, cid, conv.gen)
        self._settle(agent, at)

    def _on_hold_end(self, at: int, cid: int, gen: int) -> None:
        conv = self._convs[cid]
        self._emit(at, "tHeld", conv, conv.agent, conv.hold_ms)

    def _on_talk_end(self, at: int, cid: int, gen: int) -> None:
        conv = self._convs[cid]
        self._emit(at, "tTalk", conv, conv.agent, conv.talk_ms)
        del self._interacting[conv.qm][cid]
        self._touch(conv.qm, at)
        targets = self._queues_by_media[conv.media]
        if (
            len(targets) > 1
            and self._rng.random() < self._profiles[conv.media].transfer_probability
        ):
            self._emit(at, "nTransferred", conv, conv.agent, 1)
            pick = self._rng.randrange(len(targets) - 1)
            pick += pick >= bisect_left(targets, conv.queue)
            self._admit(targets[pick], conv.media, at, conv.uuid)  # same conversation id
        conv.state = _ACW
        self._push(at + self._gamma_ms(self._profiles[conv.media].acw_mean_s), _ACW_END, cid)

    def _on_acw_end(self, at: int, cid: int, _: int) -> None:
        conv = self._convs.pop(cid)
        self._emit(at, "tAcw", conv, conv.agent, at - conv.connect_ms - conv.talk_ms - conv.hold_ms)
        self._emit(at, "tHandle", conv, conv.agent, at - conv.connect_ms)
        agent = self._agents[conv.agent]
        self._routable.remove(agent)
        agent.load -= 1
        if agent.load == 0:
            agent.media = -1
        self._release(agent, at)

    def _on_abandon(self, at: int, cid: int, _: int) -> None:
        conv = self._convs.get(cid)
        if conv is None or conv.state not in (_WAITING, _ALERTING):
            return
        del self._convs[cid]
        if conv.state == _WAITING:
            self._dequeue(conv)
        else:  # the customer hung up while an agent's phone was ringing
            agent = self._agents[conv.agent]
            self._alerting[conv.qm] -= 1
            agent.alerting = -1
            self._emit(at, "tAlert", conv, agent.idx, at - conv.alert_ms)
            self._release(agent, at)
        self._touch(conv.qm, at)
        wait, queue = at - conv.entry_ms, self.queues[conv.queue]
        for metric in ("tAbandon", "tAcd", "tWait"):
            self._emit(at, metric, conv, -1, wait)
        if wait < self.config.short_abandon_s * 1000:
            self._emit(at, "tShortAbandon", conv, -1, wait)
        self._emit(at, "oServiceLevel", conv, -1, 0)
        if wait > queue.service_level_duration_ms:
            self._emit(at, "nOverSla", conv, -1, 1)

    # ------------------------------------------------------------------ agents
    def _on_presence(self, at: int, idx: int, gen: int) -> None:
        agent = self._agents[idx]
        if gen != agent.presence_gen:
            return
        if agent.presence != _ON_QUEUE:
            self._change_presence(agent, _ON_QUEUE, at)
            return
        name = self._rng.choices(self._off_names, self._off_weights)[0]
        agent.pending = SYSTEM_PRESENCES.index(name)
        self._release(agent, at)  # goes now if free, else after the current work

    def _on_nr_end(self, at: int, idx: int, gen: int) -> None:
        agent = self._agents[idx]
        if gen == agent.nr_gen and agent.not_responding:
            agent.not_responding = False
            self._release(agent, at)

    def _release(self, agent: Agent, at: int) -> None:
        if agent.pending >= 0 and agent.load == 0 and agent.alerting < 0:
            self._change_presence(agent, agent.pending, at)
        else:
            self._settle(agent, at)

    def _change_presence(self, agent: Agent, presence: int, at: int) -> None:
        self._close_segment(agent.idx, KIND_PRESENCE, agent.presence, agent.presence_seg, at)
        old = agent.presence
        for q in agent.queues:
            counts, routing = self._presence_counts[q], self._routing_counts[q]
            counts[old] -= 1
            counts[presence] += 1
            if old == _OFFLINE and presence != _OFFLINE:
                routing[agent.routing] += 1
            elif old != _OFFLINE and presence == _OFFLINE:
                routing[agent.routing] -= 1
            self._agents_mut[q] = at
            self._dirty_agents.add(q)
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
        self._close_segment(agent.idx, KIND_ROUTING, agent.routing, agent.routing_seg, at)
        if agent.presence != _OFFLINE:
            for q in agent.queues:
                self._routing_counts[q][agent.routing] -= 1
                self._routing_counts[q][status] += 1
                self._agents_mut[q] = at
                self._dirty_agents.add(q)
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
            medias = self._queue_media[q] if agent.load == 0 else (agent.media,)
            for m in medias:
                waiting = self._waiting[q * m_count + m]
                if waiting and (best is None or waiting[0] < best):
                    best = waiting[0]
        if best is not None:
            self._offer(self._convs[best[1]], agent, at)
        else:
            self._routable.add(agent)
