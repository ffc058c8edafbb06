"""Freshness core: families, stage latencies, percentiles, windows, staleness, SLOs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.core.contract.records import AuditRecord, MetricRecord, audit_record
from pipeline.core.contract.wire import compile_encoder, encode_fastavro
from pipeline.core.workers.family import metric_family
from pipeline.core.workers.freshness import FreshnessMonitor
from pipeline.core.workers.latency import (
    FRESHNESS_FIELDS,
    FreshnessReport,
    LatencyWindows,
    LogHistogram,
    StageLatency,
    freshness_report,
    measure_stages,
)
from pipeline.core.workers.slo import SloChange, SloMonitor, SloSettings
from pipeline.core.workers.staleness import StalenessTracker
from pipeline.kafka.schemas import load_schema
from tests.records import metric_record

SCHEMAS = Path(__file__).parents[2] / "schemas"
T0 = 1_700_000_040.0  # epoch seconds; a multiple of 60 (window aligned)
T0_MS = int(T0 * 1000)
HALF_HOUR_MS = 1_800_000


def record(
    metric: str = "oWaiting",
    *,
    entity_type: str = "queue",
    entity_id: str = "q1",
    event_time: int = T0_MS,
    ingest_time: int | None = None,
    interval: tuple[int, int] | None = None,
    derived: bool = False,
    backfill: bool = False,
    instance: str = "producer-0",
    qualifier: str | None = None,
    media_type: str | None = "voice",
    unit: str = "count",
) -> MetricRecord:
    """A metric record with only the fields these tests care about."""
    start, end = interval if interval else (None, None)
    return metric_record(
        event_id=f"{entity_id}|{metric}|{event_time}",
        source_topic=f"v2.analytics.queues.{entity_id}.observations",
        entity_type=entity_type,
        entity_id=entity_id,
        metric=metric,
        qualifier=qualifier,
        media_type=media_type,
        interval_start=start,
        interval_end=end,
        count=1,
        value=1.0,
        unit=unit,
        derived=derived,
        event_time=event_time,
        ingest_time=event_time if ingest_time is None else ingest_time,
        backfill=backfill,
        producer_instance=instance,
        correlation_id=None,
    )


def audit(kind: str, at_s: float, channel: str | None = "ch-1", **details: Any) -> AuditRecord:
    """An audit record of producer-0 (details as JSON)."""
    return AuditRecord(
        f"id-{kind}-{at_s}",
        kind,
        round(at_s * 1000),
        channel,
        "producer-0",
        details_json=json.dumps(details, sort_keys=True),
    )


INTERVAL = (T0_MS - 600_000, T0_MS - 600_000 + HALF_HOUR_MS)


# ------------------------------------------------------------------------------------ families
@pytest.mark.parametrize(
    ("rec", "family"),
    [
        (record("oWaiting"), "observation"),
        (record("oOnQueueUsers", media_type=None, qualifier="IDLE"), "observation"),
        (record("presence", entity_type="user", unit="state"), "state"),
        (record("routingStatus", entity_type="user", unit="state"), "state"),
        (record("member", qualifier="u1"), "state"),
        (record("nOffered", interval=INTERVAL), "aggregate"),
        (record("tHandle", entity_type="wrapup", interval=INTERVAL), "aggregate"),
        (record("tAgentRoutingStatus", entity_type="user", interval=INTERVAL), "user_aggregate"),
        (record("serviceLevelPercent", interval=INTERVAL, derived=True), "kpi"),
    ],
)
def test_metric_family_sorts_records_by_behaviour_in_time(rec: MetricRecord, family: str) -> None:
    assert metric_family(rec) == family


# ---------------------------------------------------------------------------- stage latencies
def test_live_observation_measures_every_stage() -> None:
    rec = record(event_time=T0_MS - 2000, ingest_time=T0_MS - 1500)

    stages = measure_stages(rec, broker_time_ms=T0_MS - 1000, now=T0)

    assert stages == [
        StageLatency("genesys_to_ingest", 0.5, False),
        StageLatency("ingest_to_broker", 0.5, False),
        StageLatency("broker_to_worker", 1.0, False),
        StageLatency("end_to_end", 2.0, False),
    ]


@pytest.mark.parametrize(
    "rec",
    [
        record("nOffered", interval=INTERVAL),
        record("member", qualifier="u1"),
        dataclasses.replace(record(), source_topic="v2.analytics.queues.q1.activity"),
    ],
    ids=["aggregate", "member", "queue activity"],
)
def test_records_stamped_at_ingest_skip_the_genesys_stage(rec: MetricRecord) -> None:
    stages = [s.stage for s in measure_stages(rec, T0_MS, T0 + 1)]

    assert stages == ["ingest_to_broker", "broker_to_worker", "end_to_end"]


def test_backfill_measures_only_the_pipeline_stages() -> None:
    old_presence = record("presence", entity_type="user", event_time=T0_MS - 3_600_000)
    rec = dataclasses.replace(old_presence, ingest_time=T0_MS, backfill=True)

    stages = [s.stage for s in measure_stages(rec, T0_MS, T0 + 1)]

    assert stages == ["ingest_to_broker", "broker_to_worker"]


def test_missing_broker_time_skips_the_broker_stages() -> None:
    stages = [s.stage for s in measure_stages(record(), None, T0 + 1)]

    assert stages == ["genesys_to_ingest", "end_to_end"]


def test_clock_skew_clamps_to_zero_and_is_flagged() -> None:
    rec = record(event_time=T0_MS + 3000, ingest_time=T0_MS)

    first = measure_stages(rec, None, T0)[0]

    assert first == StageLatency("genesys_to_ingest", 0.0, True)


# ---------------------------------------------------------------------------- percentiles
def exact_quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile of a sample."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


LATENCIES = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(LATENCIES, min_size=1, max_size=300),
    q=st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_histogram_quantile_is_within_bucket_error_of_the_exact_one(
    values: list[float], q: float
) -> None:
    histogram = LogHistogram(relative_error=0.01)
    for value in values:
        histogram.add(value)

    [estimate] = histogram.quantiles([q])
    exact = exact_quantile(values, q)

    assert estimate is not None
    assert abs(estimate - exact) <= 0.01 * exact * (1 + 1e-9) + histogram.min_value


def test_empty_histogram_has_no_quantiles() -> None:
    assert LogHistogram().quantiles((0.5, 0.99)) == [None, None]


@pytest.mark.parametrize("value", [-0.001, math.nan, math.inf])
def test_histogram_refuses_values_that_are_not_latencies(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        LogHistogram().add(value)


def test_histogram_memory_stays_bounded_over_a_wide_range() -> None:
    histogram = LogHistogram(relative_error=0.01)
    for exponent in range(-3, 7):
        for step in range(1, 1000):
            histogram.add(10.0**exponent * step / 100)

    gamma = 1.01 / 0.99  # the bucket growth of relative_error 0.01
    assert len(histogram._buckets) <= math.log(histogram.max / histogram.min_value, gamma) + 2


# ---------------------------------------------------------------------------- windows and reports
def test_window_reports_per_stage_family_and_entity_type_when_it_ends() -> None:
    windows = LatencyWindows(window_s=60.0)
    for delay_ms in (100, 200, 300, 4000):
        rec = record(event_time=T0_MS + 1000 - delay_ms, ingest_time=T0_MS + 1000 - delay_ms)
        windows.add(rec, "observation", None, T0 + 1)

    assert windows.close(T0 + 59.9, "w1") == []
    reports = windows.close(T0 + 60, "w1")

    assert [(r.stage, r.family, r.entity_type, r.count) for r in reports] == [
        ("genesys_to_ingest", "observation", "queue", 4),
        ("end_to_end", "observation", "queue", 4),
    ]
    e2e = reports[1]
    assert (e2e.window_start, e2e.window_end) == (T0_MS, T0_MS + 60_000)
    assert e2e.p50_seconds == pytest.approx(0.2, rel=0.01)
    assert e2e.p99_seconds == e2e.max_seconds == 4.0


def test_window_counts_skewed_samples() -> None:
    windows = LatencyWindows()
    windows.add(record(event_time=T0_MS + 5000), "observation", None, T0 + 1)

    [_, e2e] = windows.close(T0 + 60, "w1")

    assert (e2e.skew_count, e2e.max_seconds) == (1, 0.0)


def test_time_stepping_back_lands_in_the_open_window() -> None:
    windows = LatencyWindows()
    windows.add(record(), "observation", None, T0 + 1)
    windows.close(T0 + 61, "w1")

    windows.add(record(), "observation", None, T0 + 30)  # the clock stepped back
    reports = windows.close(T0 + 120, "w1")

    assert {r.window_start for r in reports} == {T0_MS + 60_000}


def test_stale_family_without_samples_still_gets_a_report() -> None:
    windows = LatencyWindows()
    windows.close(T0 + 1, "w1")  # the worker starts

    [report] = windows.close(T0 + 60, "w1", {("observation", "queue"): 7})

    assert (report.stage, report.count, report.p95_seconds, report.stale_keys) == (
        "end_to_end",
        0,
        None,
        7,
    )


def test_windows_before_the_worker_started_are_not_reported() -> None:
    windows = LatencyWindows()

    assert windows.close(T0 + 90, "w1", {("observation", "queue"): 1}) == []


def test_report_ids_are_deterministic_and_follow_the_content() -> None:
    histogram = LogHistogram()
    histogram.add(1.0)
    group = ("end_to_end", "observation", "queue")
    window = (T0_MS, T0_MS + 60_000)

    one = freshness_report("w1", window, group, histogram)
    again = freshness_report("w1", window, group, histogram)
    other = freshness_report("w1", window, group, histogram, stale_keys=1)

    assert one == again
    assert len(one.event_id) == 32
    assert other.event_id != one.event_id


def test_report_mirrors_the_freshness_schema_in_order() -> None:
    schema = json.loads((SCHEMAS / "freshness.avsc").read_text())

    names = [f["name"] for f in schema["fields"]]

    assert [f.name for f in dataclasses.fields(FreshnessReport)] == names
    assert list(FRESHNESS_FIELDS) == names


def test_report_encodes_with_the_contract_schema() -> None:
    histogram = LogHistogram()
    histogram.add(0.25)
    full = freshness_report(
        "w1", (T0_MS, T0_MS + 60_000), ("end_to_end", "kpi", "queue"), histogram
    )
    empty = freshness_report("w1", (T0_MS, T0_MS + 60_000), ("end_to_end", "kpi", "queue"), None)
    schema = load_schema("freshness")
    encode = compile_encoder(schema)
    parsed = fastavro.parse_schema(schema)

    for report in (full, empty):
        assert encode(report) == encode_fastavro(parsed, report)


# ---------------------------------------------------------------------------- staleness
def test_live_stream_without_changes_is_not_stale() -> None:
    tracker = StalenessTracker()
    tracker.observe_audit(audit("socket.connected", T0))
    tracker.observe(record("oWaiting", entity_id="quiet", event_time=T0_MS))
    for second in range(10, 600, 10):  # another queue keeps the producer visibly alive
        tracker.observe(record("oWaiting", entity_id="busy", event_time=T0_MS + second * 1000))

    changes = tracker.tick(T0 + 600)

    assert changes == []
    assert not tracker.is_stale("quiet|oWaiting||voice")


def test_producer_audits_alone_keep_a_quiet_stream_fresh() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    for second in range(20, 400, 20):
        tracker.observe_audit(audit("producer.heartbeat", T0 + second, None))

    assert tracker.tick(T0 + 400) == []


def test_dead_stream_is_stale_after_three_cadences() -> None:
    tracker = StalenessTracker()
    tracker.observe_audit(audit("socket.connected", T0))
    tracker.observe(record(event_time=T0_MS + 1000))
    tracker.observe_audit(audit("socket.disconnected", T0 + 2))
    tracker.observe_audit(audit("gap.opened", T0 + 2))

    assert tracker.tick(T0 + 62) == []
    [change] = tracker.tick(T0 + 62.01)

    assert (change.key, change.stale, change.reason) == ("q1|oWaiting||voice", True, "stream_down")
    assert tracker.is_stale("q1|oWaiting||voice")


def test_heartbeat_timeout_counts_as_a_dead_stream() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("heartbeat.timeout", T0 + 1))
    for second in range(5, 100, 5):  # the producer is alive, its stream is not
        tracker.observe_audit(audit("socket.open_failed", T0 + second))

    [change] = tracker.tick(T0 + 100)

    assert change.reason == "stream_down"


def test_silent_producer_makes_its_keys_stale() -> None:
    tracker = StalenessTracker()
    tracker.observe_audit(audit("socket.connected", T0))
    tracker.observe(record(event_time=T0_MS))  # then the process dies without a word

    [change] = tracker.tick(T0 + 61)

    assert change.reason == "producer_silent"


def test_short_outage_does_not_make_keys_stale() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("socket.disconnected", T0 + 1))
    tracker.observe_audit(audit("socket.connected", T0 + 20))
    tracker.observe_audit(audit("backfill.finished", T0 + 25))

    assert tracker.tick(T0 + 70) == []


def test_stream_back_live_makes_keys_fresh_again() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("socket.disconnected", T0 + 1))
    tracker.tick(T0 + 100)

    tracker.observe_audit(audit("socket.connected", T0 + 120))
    [change] = tracker.tick(T0 + 121)

    assert (change.stale, change.reason) == (False, None)


def test_gap_closed_on_the_old_channel_ends_its_outage() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("socket.disconnected", T0 + 1, "old"))
    tracker.observe_audit(audit("socket.connected", T0 + 30, "new"))  # a new channel
    tracker.observe_audit(audit("gap.closed", T0 + 30, "old"))

    assert tracker.tick(T0 + 80) == []


def test_roll_over_forgets_the_previous_channel() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("gap.opened", T0 + 1, "old"))
    tracker.observe_audit(audit("channel.rolled_over", T0 + 2, "new", previous="old"))

    assert tracker.tick(T0 + 61) == []


def test_producer_restart_forgets_the_stopped_sessions() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe_audit(audit("session.stopped", T0 + 1, None, reason="stop"))
    tracker.observe_audit(audit("subscription.validated", T0 + 10, None))
    tracker.observe_audit(audit("socket.connected", T0 + 15, "ch-2"))

    assert tracker.tick(T0 + 70) == []


def test_outage_of_one_producer_leaves_the_others_fresh() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(entity_id="a", event_time=T0_MS))
    tracker.observe(record(entity_id="b", event_time=T0_MS, instance="producer-1"))
    tracker.observe_audit(audit("socket.disconnected", T0 + 1))
    tracker.observe_audit(
        dataclasses.replace(audit("heartbeat", T0 + 60), producer_instance="producer-1")
    )

    changes = tracker.tick(T0 + 62)

    assert [c.key for c in changes] == ["a|oWaiting||voice"]


def test_aggregate_expires_three_intervals_after_its_end() -> None:
    tracker = StalenessTracker()
    tracker.observe(record("nOffered", interval=INTERVAL, event_time=T0_MS))
    end_s = INTERVAL[1] / 1000
    for second in range(0, 3 * 1800 + 300, 30):  # the producer stays alive throughout
        tracker.observe_audit(audit("producer.heartbeat", end_s + second, None))

    assert tracker.tick(end_s + 3 * 1800) == []
    [change] = tracker.tick(end_s + 3 * 1800 + 1)

    assert change.reason == "interval_expired"


def test_newer_interval_keeps_an_aggregate_fresh_and_a_late_old_one_does_not_undo_it() -> None:
    tracker = StalenessTracker()
    later = (INTERVAL[0] + 4 * HALF_HOUR_MS, INTERVAL[1] + 4 * HALF_HOUR_MS)
    tracker.observe(record("nOffered", interval=INTERVAL, event_time=T0_MS))
    tracker.observe(record("nOffered", interval=later, event_time=T0_MS + 1))
    tracker.observe(record("nOffered", interval=INTERVAL, event_time=T0_MS + 2))  # late
    now = INTERVAL[1] / 1000 + 3 * 1800 + 10
    tracker.observe_audit(audit("producer.heartbeat", now, None))

    assert tracker.tick(now) == []


def test_tick_reports_transitions_only_once() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))

    assert len(tracker.tick(T0 + 61)) == 1
    assert tracker.tick(T0 + 62) == []


def test_stale_counts_cover_every_pair_seen() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))
    tracker.observe(record("presence", entity_type="user", event_time=T0_MS, unit="state"))
    tracker.tick(T0 + 1)

    assert tracker.stale_counts() == {("observation", "queue"): 0, ("state", "user"): 0}
    tracker.tick(T0 + 61)
    assert tracker.stale_counts() == {("observation", "queue"): 1, ("state", "user"): 1}


def test_stale_after_follows_the_settings() -> None:
    tracker = StalenessTracker(SloSettings(liveness_cadence_s=5.0, stale_after_factor=2.0))
    tracker.observe(record(event_time=T0_MS))

    assert tracker.tick(T0 + 10) == []
    assert tracker.tick(T0 + 10.5)[0].reason == "producer_silent"


# ---------------------------------------------------------------------------- SLOs
def e2e(
    p95: float | None, family: str = "observation", count: int = 10, stale: int = 0
) -> FreshnessReport:
    """An end-to-end report with the given p95 (None: no samples)."""
    return FreshnessReport(
        "id", "w1", T0_MS, T0_MS + 60_000, "end_to_end", family, "queue",
        count if p95 is not None else 0, p95, p95, p95, p95, 0, stale,
    )  # fmt: skip


def test_live_p95_over_five_seconds_is_a_breach() -> None:
    monitor = SloMonitor()

    [change] = monitor.observe(e2e(5.5))

    assert change == SloChange(
        "latency_p95", "observation", "queue", True, 5.5, 5.0, T0_MS, T0_MS + 60_000
    )


def test_interval_families_are_held_to_sixty_seconds() -> None:
    monitor = SloMonitor()

    assert monitor.observe(e2e(30.0, family="kpi")) == []
    assert monitor.observe(e2e(61.0, family="kpi"))[0].threshold == 60.0


def test_breach_is_reported_once_and_recovery_once() -> None:
    monitor = SloMonitor()

    changes = [monitor.observe(e2e(p95)) for p95 in (9.0, 8.0, 7.0, 1.0, 1.0)]

    assert [[c.breached for c in batch] for batch in changes] == [[True], [], [], [False], []]


def test_windows_without_samples_do_not_judge_latency() -> None:
    monitor = SloMonitor()
    monitor.observe(e2e(9.0))

    assert monitor.observe(e2e(None)) == []
    assert monitor.observe(e2e(9.0)) == []  # still breached: no second breach reported


def test_other_stages_are_not_judged() -> None:
    report = dataclasses.replace(e2e(100.0), stage="broker_to_worker")

    assert SloMonitor().observe(report) == []


def test_stale_keys_breach_and_recover() -> None:
    monitor = SloMonitor()

    breach = monitor.observe(e2e(None, stale=3))
    recovery = monitor.observe(e2e(None, stale=0))

    assert [(c.slo, c.breached, c.value) for c in breach + recovery] == [
        ("stale_keys", True, 3.0),
        ("stale_keys", False, 0.0),
    ]


def test_min_samples_guards_the_latency_verdict() -> None:
    monitor = SloMonitor(SloSettings(min_samples=5))

    assert monitor.observe(e2e(9.0, count=4)) == []
    assert monitor.observe(e2e(9.0, count=5)) != []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0.0, 20.0)), max_size=40))
def test_slo_changes_alternate_and_follow_every_flip(p95s: list[float | None]) -> None:
    monitor = SloMonitor()
    state, expected, seen = False, [], []
    for p95 in p95s:
        seen += [c.breached for c in monitor.observe(e2e(p95))]
        if p95 is not None and (p95 > 5.0) != state:
            state = not state
            expected.append(state)

    assert seen == expected
    assert all(a != b for a, b in itertools.pairwise(seen))


def test_slo_change_becomes_an_audit_record() -> None:
    change = SloChange("latency_p95", "observation", "queue", True, 6.0, 5.0, T0_MS, T0_MS + 60_000)

    rec = audit_record(change.audit_event(), "freshness-0")

    assert (rec.kind, rec.at) == ("freshness.slo_breached", T0_MS + 60_000)
    assert json.loads(rec.details_json)["threshold"] == 5.0


@pytest.mark.parametrize(
    "bad",
    [{"live_p95_s": 0.0}, {"window_s": -1.0}, {"min_samples": 0}, {"relative_error": 1.0}],
)
def test_slo_settings_refuse_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        SloSettings(**bad)


# ---------------------------------------------------------------------------- the façade
def test_monitor_reports_latency_staleness_and_slo_per_window() -> None:
    monitor = FreshnessMonitor("freshness-0")
    monitor.tick(T0)
    monitor.on_audit(audit("socket.connected", T0))
    slow = record(event_time=T0_MS - 7000, ingest_time=T0_MS - 6900)
    monitor.on_record(slow, T0_MS - 6800, T0 + 0.5)
    monitor.on_audit(audit("heartbeat.timeout", T0 + 1))

    first = monitor.tick(T0 + 60)
    second = monitor.tick(T0 + 120)

    assert [r.stage for r in first.reports] == [
        "genesys_to_ingest", "ingest_to_broker", "broker_to_worker", "end_to_end",
    ]  # fmt: skip
    assert [(c.slo, c.breached) for c in first.slo] == [("latency_p95", True)]
    assert [(c.stale, c.reason) for c in second.staleness] == [(True, "stream_down")]
    assert [(r.count, r.stale_keys) for r in second.reports] == [(0, 1)]
    assert [(c.slo, c.breached) for c in second.slo] == [("stale_keys", True)]


# ---------------------------------------------------------------------------- bounded memory
def test_the_freshness_monitor_forgets_keys_silent_for_longer_than_forget_after() -> None:
    monitor = FreshnessMonitor("w1", SloSettings(forget_after_s=3600.0))
    for i in range(1000):  # a thousand queues that then go away for good
        monitor.on_record(record(entity_id=f"old{i}", event_time=T0_MS), None, T0)
    monitor.on_record(record(entity_id="q1", event_time=T0_MS + 3_000_000), None, T0 + 3000)
    monitor.on_record(record(entity_id="x", instance="gone", event_time=T0_MS), None, T0)
    monitor.tick(T0 + 3500)  # the producers have been silent for a while: all stale
    assert monitor.staleness.keys() == 1002
    assert monitor.staleness.stale_counts()[("observation", "queue")] == 1002

    monitor.tick(T0 + 3601)

    assert monitor.staleness.keys() == 1  # the one seen within the hour
    assert monitor.staleness.producers() == 1  # "gone" is forgotten with its key
    assert monitor.staleness.stale_counts()[("observation", "queue")] == 1


def test_a_tracker_without_forgetting_keeps_every_key() -> None:
    tracker = StalenessTracker()
    tracker.observe(record(event_time=T0_MS))

    tracker.tick(T0 + 10 * 86_400)

    assert tracker.keys() == 1
    assert tracker.is_stale("q1|oWaiting||voice")
