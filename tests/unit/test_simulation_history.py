"""Simulated history: at its start the centre already has a past, like a real org (§7.5).

Before issue 13 the simulation began at the emulator's start, so a 24-hour aggregate query
right after start answered ``{}`` and the current half-hour started at zero.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.emulator.analytics.queries import query_conversation_aggregates, query_user_aggregates
from pipeline.emulator.config import EmulatorConfig, history_seconds
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.history import history_start_ms, seconds_affordable
from pipeline.emulator.simulation.model import INTERVAL_MS, SimulationConfig, to_ms
from pipeline.emulator.simulation.topics import bodies_for_topic

START = datetime(2026, 5, 4, 9, 47, 13, tzinfo=UTC)  # mid-interval, like a real start
START_MS = to_ms(START)
DAY = 24 * 3600
SMALL = SimulationConfig(queues=4, agents=30, seed=3, history_s=DAY)
PAST_DAY = "2026-05-03T09:30:00.000Z/2026-05-04T09:30:00.000Z"  # 48 past half hours


def aggregates(cc: ContactCenter, **body: Any) -> Any:
    query = {"interval": PAST_DAY, "granularity": "PT30M", "metrics": ["nOffered", "tHandle"]}
    return query_conversation_aggregates(cc, {**query, **body})


@pytest.fixture(scope="module")
def centre() -> ContactCenter:
    return ContactCenter(SMALL, START)


# ----------------------------------------------------------------------------- where it starts
def test_no_history_starts_at_the_start() -> None:
    assert history_start_ms(SimulationConfig(), START_MS) == START_MS


def test_history_starts_on_the_half_hour_at_or_before_the_wanted_past() -> None:
    start = history_start_ms(SMALL, START_MS)
    assert start % INTERVAL_MS == 0
    assert START_MS - DAY * 1000 - INTERVAL_MS < start <= START_MS - DAY * 1000


def test_a_huge_centre_gets_the_history_its_budget_pays_for() -> None:
    huge = SimulationConfig(queues=2000, agents=20_000, history_s=DAY)
    start = history_start_ms(huge, START_MS)
    affordable_ms = seconds_affordable(huge) * 1000
    assert start % INTERVAL_MS == 0  # still whole past intervals
    assert 0 < START_MS - start <= affordable_ms
    assert START_MS - start > affordable_ms - INTERVAL_MS  # the budget is used, not wasted
    assert 10 * 60_000 < START_MS - start < 60 * 60_000  # about 25 minutes by default


def test_a_budget_below_the_current_half_hour_gives_a_partial_history() -> None:
    config = SimulationConfig(queues=2000, agents=20_000, history_s=DAY, history_budget_s=1.0)
    start = history_start_ms(config, START_MS)
    assert start == START_MS - int(seconds_affordable(config)) * 1000
    assert history_start_ms(SimulationConfig(history_s=DAY, history_budget_s=0), START_MS) == (
        START_MS
    )


def test_history_longer_than_the_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="retention"):
        SimulationConfig(history_s=48 * 3600)
    SimulationConfig(history_s=47 * 3600 + 1800)  # the longest that fits


@pytest.mark.parametrize(("text", "seconds"), [("PT24H", DAY), ("P1D", DAY), ("PT0S", 0),
                                               ("PT90M", 5400), ("P1DT2H", 93600)])  # fmt: skip
def test_history_flag_reads_iso_durations(text: str, seconds: int) -> None:
    assert history_seconds(text) == seconds


@pytest.mark.parametrize("text", ["24h", "P", "PT", "P1W", "PT1.5H", ""])
def test_a_bad_history_is_refused_before_anything_starts(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO-8601 duration"):
        EmulatorConfig(history=text)


# ----------------------------------------------------------------------------- what it gives
def test_a_24_hour_query_right_at_start_has_data_in_every_past_bucket(
    centre: ContactCenter,
) -> None:
    assert centre.now() == START  # nothing advanced after building
    answer = aggregates(centre)
    [group] = answer["results"]
    intervals = [bucket["interval"] for bucket in group["data"]]
    assert len(intervals) == 48
    for bucket in group["data"]:
        assert {m["metric"] for m in bucket["metrics"]} == {"nOffered", "tHandle"}
    by_queue = aggregates(centre, groupBy=["queueId"])["results"]
    assert {g["group"]["queueId"] for g in by_queue} == {q.id for q in centre.queues}


def test_user_aggregates_have_a_past_too(centre: ContactCenter) -> None:
    answer = query_user_aggregates(centre, {
        "interval": PAST_DAY, "granularity": "PT30M", "groupBy": ["userId"],
        "metrics": ["tAgentRoutingStatus", "tSystemPresence"],
    })  # fmt: skip
    results: Any = answer["results"]
    assert len(results) == len(centre.users)
    assert all(len(r["data"]) == 48 for r in results)


def test_the_current_half_hour_starts_with_its_partial_totals(centre: ContactCenter) -> None:
    queue = centre.queues[0]
    bodies: Any = bodies_for_topic(centre, f"v2.analytics.queues.{queue.id}.observations")
    aggregate = [b for b in bodies if b["data"][0]["interval"].startswith("2026-05-04T09:30")]
    assert aggregate, "aggregate-flavour bodies for the current interval at the start instant"
    offered = [m for b in aggregate for m in b["data"][0]["metrics"] if m["metric"] == "nOffered"]
    assert sum(m["stats"]["count"] for m in offered) > 0


def test_the_start_is_as_if_the_centre_had_been_running_all_along() -> None:
    with_history = ContactCenter(SMALL, START)
    began = datetime.fromtimestamp(with_history.start_ms / 1000, UTC)
    running = ContactCenter(SimulationConfig(queues=4, agents=30, seed=3), began)
    running.advance(START)
    assert with_history.history_ms == START_MS - with_history.start_ms > DAY * 1000 - 1
    assert aggregates(with_history, groupBy=["queueId"]) == aggregates(running, groupBy=["queueId"])
    for queue in with_history.queues:
        topic = f"v2.analytics.queues.{queue.id}.observations"
        assert bodies_for_topic(with_history, topic) == bodies_for_topic(running, topic)


def test_history_is_deterministic_per_seed(centre: ContactCenter) -> None:
    again = ContactCenter(SMALL, START)
    assert aggregates(again, groupBy=["queueId", "mediaType"]) == aggregates(
        centre, groupBy=["queueId", "mediaType"]
    )
    other = ContactCenter(SimulationConfig(queues=4, agents=30, seed=4, history_s=DAY), START)
    assert aggregates(other, groupBy=["queueId"]) != aggregates(centre, groupBy=["queueId"])


def test_the_live_part_continues_the_current_half_hour() -> None:
    later = ContactCenter(SMALL, START)
    before = later.current_queue_stats(0, later.media_types.index(later.queues[0].media_types[0]))
    offered_at_start = sum(acc.count for acc in before.values())
    later.advance(START + timedelta(minutes=10))  # still inside the 09:30 interval
    after = later.current_queue_stats(0, later.media_types.index(later.queues[0].media_types[0]))
    assert later.interval_start_ms == START_MS - START_MS % INTERVAL_MS
    assert sum(acc.count for acc in after.values()) > offered_at_start > 0
