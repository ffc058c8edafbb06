"""The simulated contact centre: deterministic, conserving, and shaped like Genesys frames."""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from pipeline.core.genesys.metrics import (
    CONVERSATION_AGGREGATE_METRICS,
    QUEUE_OBSERVATION_METRICS,
    ROUTING_STATUSES,
    SYSTEM_PRESENCES,
    USER_AGGREGATE_METRICS,
)
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import (
    INTERVAL_MS,
    RECORDED_METRICS,
    MediaProfile,
    SimulationConfig,
    format_interval,
    iso_ms,
    to_ms,
)
from pipeline.emulator.simulation.topics import SUPPORTED_TOPIC_TEMPLATES, bodies_for_topic

START = datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SMALL = SimulationConfig(queues=4, agents=30, seed=11)


def run(config: SimulationConfig = SMALL, minutes: float = 60) -> ContactCenter:
    cc = ContactCenter(config, START)
    cc.advance(START + timedelta(minutes=minutes))
    return cc


def topic_bodies(cc: ContactCenter, topic: str) -> list[Any]:
    """A topic's bodies, typed loosely so assertions can index into them."""
    return bodies_for_topic(cc, topic)


def all_topics(cc: ContactCenter) -> list[str]:
    topics = [f"v2.analytics.queues.{q.id}.observations" for q in cc.queues]
    topics += [f"v2.routing.queues.{q.id}.users" for q in cc.queues]
    topics += [f"v2.analytics.wrapup.{w.id}.aggregates" for w in cc.wrapup_codes]
    for u in cc.users:
        topics += [f"v2.analytics.users.{u.id}.aggregates", f"v2.users.{u.id}.presence",
                   f"v2.users.{u.id}.routingStatus", f"v2.users.{u.id}.activity"]  # fmt: skip
    return topics


def snapshot(cc: ContactCenter) -> dict[str, list[dict[str, object]]]:
    return {topic: topic_bodies(cc, topic) for topic in all_topics(cc)}


def cumulative(cc: ContactCenter) -> dict[tuple[int, int, str], list[int]]:
    """(queue, media, metric) → [count, sum] over every retained emission."""
    totals: dict[tuple[int, int, str], list[int]] = {}
    for chunk in cc.emissions.chunks(0, 2**62):
        for i in range(len(chunk.time)):
            key = (chunk.queue[i], chunk.media[i], RECORDED_METRICS[chunk.metric[i]])
            acc = totals.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += chunk.value[i]
    return totals


# ----------------------------------------------------------------------------- organisation
def test_organisation_has_uuid_ids_names_and_memberships() -> None:
    cc = ContactCenter(SimulationConfig(queues=20, agents=200), START)
    assert len(cc.queues) == 20
    assert len(cc.users) == 200
    assert len(cc.wrapup_codes) == 12
    ids = [q.id for q in cc.queues] + [u.id for u in cc.users] + [w.id for w in cc.wrapup_codes]
    ids += list(cc.org_presence_ids.values())
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert uuid.UUID(value).version == 4
    assert cc.queues[0].name == "Support 01"
    assert cc.users[0].name == "Agent 001"
    assert set(cc.org_presence_ids) == set(SYSTEM_PRESENCES)
    for user in cc.users:
        assert 1 <= len(user.queue_ids) <= 3
        assert len(set(user.queue_ids)) == len(user.queue_ids)
    for q, queue in enumerate(cc.queues):
        assert queue.media_types[0] == "voice"
        assert set(queue.media_types) <= set(cc.media_types)
        assert 0 < queue.service_level_percentage < 1
        assert queue.service_level_duration_ms > 0
        members = {cc.users[u].id for u in cc.members(q)}
        assert members, "every queue has members when agents >= queues"
        assert members == {u.id for u in cc.users if queue.id in u.queue_ids}


def test_membership_topic_lists_every_member_once() -> None:
    cc = run(minutes=1)
    queue = cc.queues[0]
    bodies = topic_bodies(cc, f"v2.routing.queues.{queue.id}.users")
    assert {b["id"] for b in bodies} == {u.id for u in cc.users if queue.id in u.queue_ids}
    for body in bodies:
        assert body == {"id": body["id"], "user": {"id": body["id"]}, "queueId": queue.id,
                        "joined": True}  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"queues": 0},
        {"agents": 0},
        {"media_types": ("voice", "fax")},
        {"media_types": ()},
        {"off_queue_presences": {"ON_QUEUE": (1.0, 60.0)}},
        {"alert_min_s": 9.0},
        {"retention_s": 60},
        {"wrapup_codes": 0},
        {"arrival_rate_per_queue_per_min": float("nan")},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        SimulationConfig(**kwargs)


@pytest.mark.parametrize(
    "args",
    [
        (1.0, 0, 60.0, 0.0, 0.0, 10.0, 60.0, 0.0),  # no capacity
        (1.0, 1, 60.0, 1.5, 0.0, 10.0, 60.0, 0.0),  # probability above 1
        (1.0, 1, 0.0, 0.0, 0.0, 10.0, 60.0, 0.0),  # zero talk time
        (1.0, 1, 60.0, 0.0, 0.0, 10.0, 0.0, 0.0),  # zero patience
    ],
)
def test_media_profile_rejects_nonsense(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        MediaProfile(*args)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ContactCenter(SMALL, datetime(2026, 5, 4, 9, 0))  # noqa: DTZ001 - the point of the test


# ----------------------------------------------------------------------------- clock
def test_clock_moves_in_whole_seconds_and_never_backwards() -> None:
    cc = ContactCenter(SMALL, START + timedelta(milliseconds=700))
    assert cc.now() == START
    cc.advance(START + timedelta(seconds=10, milliseconds=999))
    assert cc.now() == START + timedelta(seconds=10)
    cc.advance(START)
    assert cc.now() == START + timedelta(seconds=10)
    assert cc.now_ms() == to_ms(START) + 10_000


def test_clock_keeps_the_callers_time_zone() -> None:
    paris = timezone(timedelta(hours=2))
    cc = ContactCenter(SMALL, START.astimezone(paris))
    cc.advance(START + timedelta(seconds=5))
    assert cc.now() == START + timedelta(seconds=5)


@pytest.mark.parametrize("steps", ["seconds", "jump", "random"])
def test_same_seed_gives_identical_state_however_it_is_advanced(steps: str) -> None:
    reference = run(minutes=45)
    cc = ContactCenter(SMALL, START)
    end = START + timedelta(minutes=45)
    if steps == "seconds":
        moment = START
        while moment < end:
            moment += timedelta(seconds=1)
            cc.advance(moment)
    elif steps == "jump":
        cc.advance(end)
    else:
        rng = random.Random(3)
        moment = START
        while moment < end:
            moment = min(end, moment + timedelta(milliseconds=rng.randrange(1, 200_000)))
            cc.advance(moment)
    assert cc.now() == reference.now()
    assert snapshot(cc) == snapshot(reference)
    assert cumulative(cc) == cumulative(reference)


def test_different_seed_gives_a_different_centre() -> None:
    one = run(SimulationConfig(queues=4, agents=30, seed=1), minutes=20)
    two = run(SimulationConfig(queues=4, agents=30, seed=2), minutes=20)
    assert one.queues[0].id != two.queues[0].id
    assert cumulative(one) != cumulative(two)


def test_bodies_are_equal_between_calls_when_nothing_changed() -> None:
    cc = run(minutes=30)
    first = snapshot(cc)
    assert snapshot(cc) == first
    cc.advance(cc.now())  # no time passes
    assert snapshot(cc) == first


def test_observation_instant_moves_only_when_a_value_changes() -> None:
    cc = run(minutes=30)
    queue = cc.queues[0]
    topic = f"v2.analytics.queues.{queue.id}.observations"
    instants: list[int] = []
    fixed = len(queue.media_types) + 1  # observation + agent-state bodies come first
    previous = topic_bodies(cc, topic)[:fixed]
    for _ in range(600):
        before_ms = cc.now_ms()
        cc.advance(cc.now() + timedelta(seconds=1))
        current = topic_bodies(cc, topic)[:fixed]
        for before, after in zip(previous, current, strict=True):
            if before["data"][0]["interval"] != after["data"][0]["interval"]:
                assert before["data"][0]["metrics"] != after["data"][0]["metrics"]
                start = after["data"][0]["interval"].split("/")[0]
                instant = to_ms(datetime.fromisoformat(start))
                # the change happened during this step, at the event's own millisecond
                assert before_ms <= instant < cc.now_ms()
                if "mediaType" in after["group"]:
                    instants.append(instant)
            else:
                assert before == after
        previous = current
    assert len(instants) > 10
    assert len({i % 1000 for i in instants}) > 5  # event times, not tick times


def test_handle_time_is_talk_plus_hold_plus_after_call_work() -> None:
    cc = run(SimulationConfig(queues=3, agents=15, media_types=("voice",), seed=4), minutes=90)
    parts: dict[int, int] = {}
    checked = 0
    rows = []
    for chunk in cc.emissions.chunks(0, 2**62):
        for i in range(len(chunk.time)):
            rows.append((chunk.time[i], RECORDED_METRICS[chunk.metric[i]], chunk.user[i],
                         chunk.value[i]))  # fmt: skip
    for _, metric, user, value in rows:  # voice: one conversation per agent at a time
        if metric in ("tTalk", "tHeld", "tAcw"):
            parts[user] = parts.get(user, 0) + value
        elif metric == "tHandle":
            assert value == parts.pop(user)
            checked += 1
    assert checked > 100


def test_every_timed_out_alert_counts_one_alert_expired_for_the_agent() -> None:
    cc = run(minutes=120)
    totals = cumulative(cc)
    expired = {(q, m): v for (q, m, name), v in totals.items() if name == "nAlertExpired"}
    timed_out = {(q, m): v[0] for (q, m, name), v in totals.items() if name == "tNotResponding"}
    assert expired
    assert {key: count for key, (count, _) in expired.items()} == timed_out
    assert all(total == count for count, total in expired.values())  # each row counts 1
    code = RECORDED_METRICS.index("nAlertExpired")
    users = {
        chunk.user[i]
        for chunk in cc.emissions.chunks(0, 2**62)
        for i in range(len(chunk.time))
        if chunk.metric[i] == code
    }
    assert -1 not in users  # an agent-side metric: it carries the agent's userId


# ----------------------------------------------------------------------------- invariants
def check_invariants(cc: ContactCenter) -> None:
    totals = cumulative(cc)
    within_target: Counter[tuple[int, int]] = Counter()  # answered within the queue's target
    for chunk in cc.emissions.chunks(0, 2**62):
        for i in range(len(chunk.time)):
            queue = cc.queues[chunk.queue[i]]
            if (RECORDED_METRICS[chunk.metric[i]] == "tAnswered"
                    and chunk.value[i] <= queue.service_level_duration_ms):  # fmt: skip
                within_target[chunk.queue[i], chunk.media[i]] += 1
    for q, queue in enumerate(cc.queues):
        for media in queue.media_types:
            m = cc.media_types.index(media)
            obs = cc.queue_observation(q, m)

            def count(metric: str, q: int = q, m: int = m) -> int:
                return totals.get((q, m, metric), [0, 0])[0]

            # Conservation: every offered conversation is waiting, ringing, answered or gone.
            assert count("nOffered") == (
                count("tAnswered") + count("tAbandon") + obs.waiting + obs.alerting
            )
            assert count("tAnswered") == count("nConnected")
            assert count("tAnswered") >= count("tHandle") + obs.interacting
            assert count("oServiceLevel") == count("tAnswered") + count("tAbandon")
            numerator = totals.get((q, m, "oServiceLevel"), [0, 0])[1]
            assert 0 <= numerator <= count("oServiceLevel")
            assert numerator == within_target.get((q, m), 0)
            assert min(obs.waiting, obs.interacting, obs.alerting) >= 0
            if obs.waiting:  # work-conserving: nobody idles while a customer waits
                assert all(cc.user_snapshot(u).routing_status != "IDLE" for u in cc.members(q))
    for u in range(len(cc.users)):
        snap = cc.user_snapshot(u)
        if snap.conversations:
            assert snap.media_type is not None
            assert snap.conversations <= cc.config.profile(snap.media_type).capacity
            # a chat agent who misses a second offer is NOT_RESPONDING with work in hand
            assert snap.routing_status in ("INTERACTING", "NOT_RESPONDING")
        if snap.routing_status in ("IDLE", "INTERACTING", "NOT_RESPONDING"):
            assert snap.presence == "ON_QUEUE"
        if snap.routing_status == "IDLE":
            assert snap.conversations == 0
    for q in range(len(cc.queues)):  # incremental counters agree with a recount
        state = cc.agent_state(q)
        snaps = [cc.user_snapshot(u) for u in cc.members(q)]
        assert state.presence_counts == tuple(
            sum(s.presence == p for s in snaps) for p in SYSTEM_PRESENCES
        )
        assert state.routing_counts == tuple(
            sum(s.routing_status == r and s.presence != "OFFLINE" for s in snaps)
            for r in ROUTING_STATUSES
        )
    interacting = sum(
        cc.queue_observation(q, cc.media_types.index(m)).interacting
        for q, queue in enumerate(cc.queues) for m in queue.media_types
    )  # fmt: skip
    assert interacting <= sum(cc.user_snapshot(u).conversations for u in range(len(cc.users)))


@settings(max_examples=25, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32),
    queues=st.integers(1, 6),
    agents=st.integers(1, 40),
    rate=st.floats(0.0, 6.0),
    minutes=st.integers(1, 90),
)
def test_invariants_hold_for_any_centre(
    seed: int, queues: int, agents: int, rate: float, minutes: int
) -> None:
    config = SimulationConfig(queues=queues, agents=agents, seed=seed,
                              arrival_rate_per_queue_per_min=rate)  # fmt: skip
    cc = ContactCenter(config, START)
    for step in range(1, 4):
        cc.advance(START + timedelta(minutes=minutes * step / 3))
        check_invariants(cc)


def test_default_centre_is_busy_but_serves_most_customers() -> None:
    cc = run(SimulationConfig(), minutes=120)
    check_invariants(cc)
    totals = Counter[str]()
    for (_, _, metric), (count, _) in cumulative(cc).items():
        totals[metric] += count
    assert totals["nOffered"] > 1000
    assert totals["tAnswered"] > 0.8 * totals["nOffered"]
    assert 0 < totals["tAbandon"] < 0.2 * totals["nOffered"]
    for metric in ("tHeld", "nTransferred", "tNotResponding", "tShortAbandon", "nOverSla"):
        assert totals[metric] > 0, metric
    assert set(totals) <= CONVERSATION_AGGREGATE_METRICS
    statuses = {cc.user_snapshot(u).routing_status for u in range(len(cc.users))}
    assert {"IDLE", "INTERACTING", "OFF_QUEUE"} <= statuses


def test_retention_drops_old_chunks() -> None:
    cc = run(SimulationConfig(queues=3, agents=20, retention_s=1800), minutes=180)
    oldest = min(min(c.time) for c in cc.emissions.chunks(0, 2**62) if len(c.time))
    assert oldest >= to_ms(START) + 120 * 60_000 - INTERVAL_MS
    assert len(cc.emissions) > 0
    assert len(cc.segments) > 0


# ----------------------------------------------------------------------------- body shapes
def check_stats(metric: str, stats: dict[str, float]) -> None:
    if metric == "oServiceLevel":
        assert set(stats) == {"ratio", "numerator", "denominator", "target"}
        assert 0 <= stats["numerator"] <= stats["denominator"]
        assert stats["ratio"] == stats["numerator"] / stats["denominator"]
        assert 0 < stats["target"] < 1
    elif metric.startswith("t"):
        assert set(stats) == {"count", "sum", "min", "max"}
        assert stats["count"] >= 1
        assert 0 <= stats["min"] <= stats["sum"] / stats["count"] <= stats["max"]
        assert all(isinstance(v, int) for v in stats.values())
    else:
        assert set(stats) == {"count"}
        assert stats["count"] >= 1


def test_queue_observation_bodies_have_the_three_flavours() -> None:
    cc = run(SimulationConfig(queues=3, agents=40, arrival_rate_per_queue_per_min=4), minutes=75)
    current = format_interval(cc.interval_start_ms, cc.interval_start_ms + INTERVAL_MS)
    for q, queue in enumerate(cc.queues):
        bodies = topic_bodies(cc, f"v2.analytics.queues.{queue.id}.observations")
        observation = [b for b in bodies if b["data"][0]["interval"] != current]
        aggregate = [b for b in bodies if b["data"][0]["interval"] == current]
        assert len(observation) == len(queue.media_types) + 1
        assert [b["group"].get("mediaType") for b in aggregate] == [
            m for m in queue.media_types if cc.current_queue_stats(q, cc.media_types.index(m))
        ]
        for body in bodies:
            assert set(body) == {"group", "data"}
            assert body["group"]["queueId"] == queue.id
            (data,) = body["data"]
            assert set(data) == {"interval", "metrics"}
            start, end = data["interval"].split("/")
            assert ISO_MS.match(start)
            assert ISO_MS.match(end)
            for entry in data["metrics"]:
                assert set(entry) <= {"metric", "qualifier", "stats"}
                assert set(entry) >= {"metric", "stats"}
                assert all(v >= 0 for v in entry["stats"].values())
        for body in observation:
            data = body["data"][0]
            start, end = data["interval"].split("/")
            assert start == end
            names = {e["metric"] for e in data["metrics"]}
            assert names <= QUEUE_OBSERVATION_METRICS
            if "mediaType" in body["group"]:
                assert names == {"oWaiting", "oInteracting", "oAlerting", "oLongestWaiting",
                                 "oLongestInteracting"}  # fmt: skip
            else:
                assert names == {"oOnQueueUsers", "oUserRoutingStatuses", "oUserPresences",
                                 "oActiveUsers", "oMemberUsers", "oOffQueueUsers"}  # fmt: skip
                members = next(e for e in data["metrics"] if e["metric"] == "oMemberUsers")
                assert members["stats"]["count"] == len(cc.members(q))
        for body in aggregate:
            metrics = body["data"][0]["metrics"]
            assert metrics, "aggregate bodies without data are not sent"
            for entry in metrics:
                assert entry["metric"] in CONVERSATION_AGGREGATE_METRICS
                assert "qualifier" not in entry
                check_stats(entry["metric"], entry["stats"])


def test_longest_waiting_is_the_age_of_the_oldest_customer_at_the_instant() -> None:
    cc = run(SimulationConfig(queues=1, agents=2, arrival_rate_per_queue_per_min=8), minutes=20)
    obs = cc.queue_observation(0, 0)
    assert obs.waiting > 0
    assert obs.oldest_waiting_ms is not None
    body = topic_bodies(cc, f"v2.analytics.queues.{cc.queues[0].id}.observations")[0]
    entries = {e["metric"]: e["stats"] for e in body["data"][0]["metrics"]}
    assert entries["oWaiting"] == {"count": obs.waiting}
    assert entries["oLongestWaiting"] == {
        "count": 1, "calculatedMetricValue": obs.instant_ms - obs.oldest_waiting_ms}  # fmt: skip


def test_user_topic_bodies_match_section_6_4() -> None:
    cc = run(minutes=40)
    for u, user in enumerate(cc.users):
        snap = cc.user_snapshot(u)
        (presence,) = topic_bodies(cc, f"v2.users.{user.id}.presence")
        assert presence == {
            "source": "PURECLOUD",
            "presenceDefinition": {"id": cc.org_presence_ids[snap.presence],
                                   "systemPresence": snap.presence},
            "primary": True, "message": "", "modifiedDate": iso_ms(snap.presence_ms),
        }  # fmt: skip
        (routing,) = topic_bodies(cc, f"v2.users.{user.id}.routingStatus")
        assert routing == {"id": user.id, "routingStatus": {
            "status": snap.routing_status, "startTime": iso_ms(snap.routing_ms)}}  # fmt: skip
        (activity,) = topic_bodies(cc, f"v2.users.{user.id}.activity")
        assert set(activity) == {"id", "routingStatus", "presence", "outOfOffice",
                                 "activeQueueIds", "dateActiveQueuesChanged"}  # fmt: skip
        assert activity["routingStatus"] == routing["routingStatus"]
        assert activity["activeQueueIds"] == list(user.queue_ids)
        assert snap.routing_status in ROUTING_STATUSES


def test_user_aggregate_body_accounts_time_in_status() -> None:
    cc = run(minutes=50)
    elapsed = cc.now_ms() - cc.interval_start_ms
    seen = 0
    for user in cc.users:
        for body in topic_bodies(cc, f"v2.analytics.users.{user.id}.aggregates"):
            seen += 1
            assert body["group"] == {"userId": user.id}
            (data,) = body["data"]
            assert data["interval"] == format_interval(
                cc.interval_start_ms, cc.interval_start_ms + INTERVAL_MS
            )
            by_metric: dict[str, int] = Counter()
            for entry in data["metrics"]:
                assert entry["metric"] in USER_AGGREGATE_METRICS
                assert set(entry["stats"]) == {"sum", "count"}
                assert entry["stats"]["count"] >= 1
                assert entry["stats"]["sum"] > 0
                by_metric[entry["metric"]] += entry["stats"]["sum"]
            # finished time in status never exceeds the time elapsed in the interval
            assert all(total <= elapsed for total in by_metric.values())
            assert by_metric["tSystemPresence"] == by_metric["tOrganizationPresence"]
    assert seen > 0


def test_wrapup_bodies_group_by_code_queue_and_media() -> None:
    cc = run(minutes=50)
    seen = 0
    for w, code in enumerate(cc.wrapup_codes):
        for body in topic_bodies(cc, f"v2.analytics.wrapup.{code.id}.aggregates"):
            seen += 1
            group = body["group"]
            assert set(group) == {"wrapUpCode", "queueId", "mediaType"}
            assert group["wrapUpCode"] == code.id
            for entry in body["data"][0]["metrics"]:
                assert entry["metric"] in {"tTalk", "tHeld", "tAcw", "tHandle", "nTransferred"}
                check_stats(entry["metric"], entry["stats"])
        assert cc.current_wrapup_stats(w) is not None
    assert seen > 0


def test_unknown_topics_and_entities() -> None:
    cc = run(minutes=1)
    missing = "00000000-0000-4000-8000-000000000000"
    for template in SUPPORTED_TOPIC_TEMPLATES:
        topic = template.replace("{id}", missing)
        assert topic_bodies(cc, topic) == []
    for topic in (
        "v2.analytics.flow.x.aggregates",
        "v2.users.x.conversations",
        "v2.users.x?presence&routingStatus",
        "nonsense",
        "v2.users..presence",
    ):
        assert topic_bodies(cc, topic) == []


def test_aggregate_bodies_restart_each_half_hour() -> None:
    cc = run(minutes=29)
    assert any(cc.current_queue_stats(0, m) for m in range(len(cc.media_types)))
    boundary = to_ms(START) + INTERVAL_MS
    cc.advance(START + timedelta(minutes=30, seconds=20))
    assert cc.interval_start_ms == boundary
    current = format_interval(boundary, boundary + INTERVAL_MS)
    offered = 0
    for queue in cc.queues:
        for body in topic_bodies(cc, f"v2.analytics.queues.{queue.id}.observations"):
            data = body["data"][0]
            if data["interval"].split("/")[0] != data["interval"].split("/")[1]:
                assert data["interval"] == current
                offered += sum(e["stats"]["count"] for e in data["metrics"]
                               if e["metric"] == "nOffered")  # fmt: skip
    recent = sum(
        1 for c in cc.emissions.chunks(boundary, boundary + INTERVAL_MS)
        for t, code in zip(c.time, c.metric, strict=True)
        if t >= boundary and RECORDED_METRICS[code] == "nOffered"
    )  # fmt: skip
    assert offered == recent
