"""Dashboard core: latest value per key, batches, the offset-commit rule, signing, pushes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.core.contract.records import MetricRecord
from pipeline.core.workers.coalesce import (
    Batch,
    CircuitBreaker,
    LatestValues,
    Offset,
    PushAction,
    PushDecision,
    RetryPlan,
    classify_push,
    sign,
    verify,
)

T0_MS = 1_700_000_040_000
TOPIC = "genesys.current"


def record(
    entity_id: str = "q1",
    event_time: int = T0_MS,
    value: float = 1.0,
    *,
    ingest_time: int | None = None,
    metric: str = "oWaiting",
) -> MetricRecord:
    """A queue observation whose event id follows its content."""
    ingest = event_time if ingest_time is None else ingest_time
    return MetricRecord(
        event_id=f"{entity_id}-{metric}-{event_time}-{ingest}-{value}",
        source_topic=f"v2.analytics.queues.{entity_id}.observations",
        entity_type="queue",
        entity_id=entity_id,
        metric=metric,
        qualifier=None,
        media_type="voice",
        interval_start=None,
        interval_end=None,
        count=int(value),
        sum=None,
        min=None,
        max=None,
        ratio=None,
        numerator=None,
        denominator=None,
        target=None,
        value=value,
        unit="count",
        derived=False,
        event_time=event_time,
        ingest_time=ingest,
        backfill=False,
        producer_instance="producer-0",
    )


def key(entity_id: str = "q1") -> str:
    """The current key of :func:`record`."""
    return f"{entity_id}|oWaiting||voice"


def take(values: LatestValues, max_items: int = 500) -> Batch:
    """A batch that must exist."""
    batch = values.take_batch(max_items)
    assert batch is not None
    return batch


# ---------------------------------------------------------------------------- latest value
def test_newer_record_replaces_the_value() -> None:
    values = LatestValues()
    values.offer(record(value=1.0), TOPIC, 0, 0)

    assert values.offer(record(event_time=T0_MS + 1, value=2.0), TOPIC, 0, 1)
    assert values.value(key()) == record(event_time=T0_MS + 1, value=2.0)


def test_older_record_arriving_late_does_not_overwrite() -> None:
    values = LatestValues()
    values.offer(record(event_time=T0_MS + 5, value=2.0), TOPIC, 0, 0)

    assert not values.offer(record(event_time=T0_MS, value=1.0), TOPIC, 0, 1)
    assert values.value(key()) == record(event_time=T0_MS + 5, value=2.0)


def test_equal_event_times_are_settled_by_ingest_time() -> None:
    values = LatestValues()
    values.offer(record(ingest_time=T0_MS + 9, value=2.0), TOPIC, 0, 0)

    assert not values.offer(record(ingest_time=T0_MS + 1, value=1.0), TOPIC, 0, 1)


def test_duplicate_record_does_not_queue_the_key_again() -> None:
    values = LatestValues()
    values.offer(record(), TOPIC, 0, 0)
    take(values)

    assert not values.offer(record(), TOPIC, 0, 1)
    assert values.take_batch(500) is None


def test_redelivered_offset_is_ignored() -> None:
    values = LatestValues()
    values.offer(record(), TOPIC, 0, 5)

    assert not values.offer(record(event_time=T0_MS + 1), TOPIC, 0, 5)
    assert values.value(key()) == record()


# ---------------------------------------------------------------------------- batches
def test_batch_holds_only_keys_changed_since_the_last_one() -> None:
    values = LatestValues()
    values.offer(record("a"), TOPIC, 0, 0)
    values.offer(record("b"), TOPIC, 0, 1)
    take(values)
    values.offer(record("b", T0_MS + 1), TOPIC, 0, 2)

    batch = take(values)

    assert [v.key for v in batch.values] == [key("b")]
    assert values.take_batch(500) is None


def test_batch_size_is_capped_and_the_rest_waits_its_turn() -> None:
    values = LatestValues()
    for n in range(5):
        values.offer(record(f"q{n}"), TOPIC, 0, n)

    first, second = take(values, 3), take(values, 3)

    assert [v.key for v in first.values] == [key("q0"), key("q1"), key("q2")]
    assert [v.key for v in second.values] == [key("q3"), key("q4")]


def test_take_batch_refuses_an_empty_size() -> None:
    with pytest.raises(ValueError, match="max_items"):
        LatestValues().take_batch(0)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32))
def test_a_second_of_10k_updates_over_500_keys_coalesces_into_a_few_small_batches(
    seed: int,
) -> None:
    rng = random.Random(seed)
    values = LatestValues()
    batches: list[Batch] = []
    newest: dict[str, MetricRecord] = {}
    for n in range(10_000):  # 10k updates in one second, a batch every 250 ms
        rec = record(f"q{rng.randrange(500)}", T0_MS + n // 10, float(n))
        values.offer(rec, TOPIC, n % 6, n // 6)
        newest[key(rec.entity_id)] = rec
        if n % 2500 == 2499:
            batches.append(take(values, 10_000))

    assert len(batches) == 4
    assert all(len(b.values) <= 500 for b in batches)
    sent = {v.key: v.record for b in batches for v in b.values}
    assert sent == newest


def test_stale_flag_comes_from_the_caller() -> None:
    values = LatestValues()
    values.offer(record("a"), TOPIC, 0, 0)
    values.offer(record("b"), TOPIC, 0, 1)

    batch = values.take_batch(10, is_stale=lambda k: k == key("b"))

    assert batch is not None
    assert [v.stale for v in batch.values] == [False, True]


def test_touched_keys_are_sent_again_without_a_new_value() -> None:
    values = LatestValues()
    values.offer(record(), TOPIC, 0, 0)
    take(values)

    assert values.touch([key(), "unknown"]) == 1
    assert [v.record for v in take(values).values] == [record()]


def test_idempotency_key_follows_contents_not_order_or_batch_id() -> None:
    one, two = LatestValues(), LatestValues()
    one.offer(record("a"), TOPIC, 0, 0)
    one.offer(record("b"), TOPIC, 0, 1)
    two.offer(record("x"), TOPIC, 0, 0)
    take(two)
    two.offer(record("b"), TOPIC, 0, 1)
    two.offer(record("a"), TOPIC, 0, 2)

    first, second = take(one), take(two)

    assert first.batch_id != second.batch_id
    assert first.idempotency_key == second.idempotency_key
    assert len(first.idempotency_key) == 32


def test_idempotency_key_changes_with_the_stale_flag() -> None:
    fresh, stale = LatestValues(), LatestValues()
    fresh.offer(record(), TOPIC, 0, 0)
    stale.offer(record(), TOPIC, 0, 0)

    a = fresh.take_batch(10)
    b = stale.take_batch(10, is_stale=lambda _: True)

    assert a is not None
    assert b is not None
    assert a.idempotency_key != b.idempotency_key


def test_batch_body_is_json_with_every_value_field() -> None:
    values = LatestValues()
    values.offer(record(value=3.0), TOPIC, 2, 7)
    batch = take(values)

    body = orjson.loads(orjson.dumps(batch.body(now=T0_MS / 1000 + 0.25)))

    assert body["batch_id"] == batch.batch_id
    assert body["idempotency_key"] == batch.idempotency_key
    assert body["generated_at"] == T0_MS + 250
    [value] = body["values"]
    assert value == {
        "key": key(), "entity_type": "queue", "entity_id": "q1", "metric": "oWaiting",
        "qualifier": None, "media_type": "voice", "value": 3.0, "unit": "count",
        "event_time": T0_MS, "interval_start": None, "interval_end": None, "stale": False,
        "event_id": record(value=3.0).event_id, "ingest_time": T0_MS, "derived": False,
        "backfill": False,
    }  # fmt: skip
    assert batch.offsets == (Offset(TOPIC, 2, 7),)


# ---------------------------------------------------------------------------- offsets
def test_nothing_is_committable_before_the_ack() -> None:
    values = LatestValues()
    values.offer(record(), TOPIC, 0, 10)
    batch = take(values)

    assert values.committable() == {(TOPIC, 0): 10}
    values.acknowledged(batch.batch_id)
    assert values.committable() == {(TOPIC, 0): 11}


def test_value_superseded_within_a_batch_is_settled_by_its_ack() -> None:
    values = LatestValues()
    values.offer(record(value=1.0), TOPIC, 0, 0)
    values.offer(record(event_time=T0_MS + 1, value=2.0), TOPIC, 0, 1)
    batch = take(values)

    assert batch.offsets == (Offset(TOPIC, 0, 0), Offset(TOPIC, 0, 1))
    values.acknowledged(batch.batch_id)
    assert values.committable() == {(TOPIC, 0): 2}


def test_value_superseded_by_a_later_batch_waits_for_that_batch() -> None:
    values = LatestValues()
    values.offer(record(value=1.0), TOPIC, 0, 0)
    first = take(values)
    values.offer(record(event_time=T0_MS + 1, value=2.0), TOPIC, 0, 1)
    second = take(values)

    values.acknowledged(second.batch_id)  # the newer value is on the dashboard

    assert values.committable() == {(TOPIC, 0): 2}
    assert values.acknowledged(first.batch_id)  # late ack of the older one changes nothing
    assert values.committable() == {(TOPIC, 0): 2}


def test_late_ack_of_an_older_batch_does_not_undo_a_newer_ack() -> None:
    values = LatestValues()
    values.offer(record("head"), TOPIC, 0, 0)
    head = take(values)  # holds the partition back while the rest is acknowledged
    values.offer(record(value=1.0), TOPIC, 0, 1)
    older = take(values)
    values.offer(record(event_time=T0_MS + 1, value=2.0), TOPIC, 0, 2)
    newer = take(values)

    values.acknowledged(newer.batch_id)
    values.acknowledged(older.batch_id)
    values.acknowledged(head.batch_id)

    assert values.committable() == {(TOPIC, 0): 3}


def test_older_value_of_an_earlier_batch_does_not_settle_a_newer_offset() -> None:
    values = LatestValues()
    values.offer(record(value=1.0), TOPIC, 0, 0)
    first = take(values)
    values.offer(record(event_time=T0_MS + 1, value=2.0), TOPIC, 0, 1)
    take(values)

    values.acknowledged(first.batch_id)

    assert values.committable() == {(TOPIC, 0): 1}


def test_late_older_record_is_done_once_the_current_value_is_acknowledged() -> None:
    values = LatestValues()
    values.offer(record(event_time=T0_MS + 5), TOPIC, 0, 0)
    batch = take(values)
    values.offer(record(event_time=T0_MS), TOPIC, 0, 1)  # late, older: never sent

    assert values.committable() == {(TOPIC, 0): 0}
    values.acknowledged(batch.batch_id)
    assert values.committable() == {(TOPIC, 0): 2}


def test_late_older_record_after_the_ack_is_done_at_once() -> None:
    values = LatestValues()
    values.offer(record(event_time=T0_MS + 5), TOPIC, 0, 0)
    values.acknowledged(take(values).batch_id)

    values.offer(record(event_time=T0_MS), TOPIC, 0, 1)

    assert values.committable() == {(TOPIC, 0): 2}


def test_rejected_batch_is_done_too() -> None:
    values = LatestValues()
    values.offer(record(), TOPIC, 0, 0)

    assert values.rejected(take(values).batch_id)
    assert values.committable() == {(TOPIC, 0): 1}


def test_abandoned_batch_requeues_its_keys_and_keeps_its_offsets_waiting() -> None:
    values = LatestValues()
    values.offer(record(value=1.0), TOPIC, 0, 0)
    old = take(values)
    values.offer(record("other"), TOPIC, 0, 1)

    assert values.abandoned(old.batch_id)
    assert values.committable() == {(TOPIC, 0): 0}
    fresh = take(values)
    assert {v.key for v in fresh.values} == {key(), key("other")}
    values.acknowledged(fresh.batch_id)
    assert values.committable() == {(TOPIC, 0): 2}


def test_skipped_offsets_and_offset_gaps_do_not_hold_commits_back() -> None:
    values = LatestValues()
    values.skip(TOPIC, 0, 3)
    values.offer(record(), TOPIC, 0, 9)  # offsets 4..8 were compacted away
    values.skip(TOPIC, 0, 12)

    assert values.committable() == {(TOPIC, 0): 9}
    values.acknowledged(take(values).batch_id)
    assert values.committable() == {(TOPIC, 0): 13}


def test_partitions_commit_independently() -> None:
    values = LatestValues()
    values.offer(record("a"), TOPIC, 0, 0)
    values.acknowledged(take(values).batch_id)
    values.offer(record("b"), TOPIC, 1, 0)
    take(values)

    assert values.committable() == {(TOPIC, 0): 1, (TOPIC, 1): 0}


def test_revoked_partition_is_forgotten_with_its_keys() -> None:
    values = LatestValues()
    values.offer(record("a"), TOPIC, 0, 0)
    values.offer(record("b"), TOPIC, 1, 0)

    values.revoke(TOPIC, 1)

    assert values.committable() == {(TOPIC, 0): 0}
    assert values.value(key("b")) is None
    assert [v.key for v in take(values).values] == [key("a")]


def test_unknown_batch_ids_change_nothing() -> None:
    values = LatestValues()

    assert not values.acknowledged(99)
    assert not values.abandoned(99)


# ---------------------------------------------------------------------------- model-based
@dataclass
class Model:
    """What the dashboard and DLQ hold, and every offset offered, per partition."""

    offered: dict[int, dict[int, MetricRecord]] = field(default_factory=dict)
    delivered: dict[str, list[MetricRecord]] = field(default_factory=dict)
    dashboard: dict[str, MetricRecord] = field(default_factory=dict)
    next_offset: dict[int, int] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)  # one past the last offset offered
    committed: dict[int, int] = field(default_factory=dict)


def _times(r: MetricRecord) -> tuple[int, int]:
    return (r.event_time, r.ingest_time)


def check_commits(values: LatestValues, model: Model) -> None:
    """Every offset below a committable one has its value, or a newer one, delivered."""
    for (_, partition), commit in values.committable().items():
        assert commit >= model.committed.get(partition, 0), "commits never go back"
        model.committed[partition] = commit
        for offset, rec in model.offered.get(partition, {}).items():
            if offset < commit:
                done = model.delivered.get(key(rec.entity_id), [])
                assert any(_times(d) >= _times(rec) for d in done), (partition, offset, rec)


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("offer"),
            st.sampled_from("abcd"),
            st.integers(0, 1),  # partition
            st.integers(0, 4),  # event time step
            st.integers(0, 1),  # ingest step
            st.integers(0, 1),  # value
        ),
        st.tuples(st.just("skip"), st.integers(0, 1)),
        st.tuples(st.just("take"), st.integers(1, 3)),
        st.tuples(st.sampled_from(["ack", "reject", "abandon"]), st.integers(0, 5)),
    ),
    max_size=60,
)


def run(ops: list[tuple[object, ...]], *, rejects: bool) -> tuple[LatestValues, Model]:
    """Play the operations against the core and the model, checking commits at every step."""
    values, model = LatestValues(), Model()
    for op in ops:
        match op:
            case ("offer", str(entity), int(partition), int(step), int(ingest), int(value)):
                rec = record(entity, T0_MS + step, float(value), ingest_time=T0_MS + step + ingest)
                offset = model.next_offset.get(partition, 0)
                model.next_offset[partition] = offset + 1 + value  # gaps now and then
                model.offered.setdefault(partition, {})[offset] = rec
                model.end[partition] = offset + 1
                values.offer(rec, TOPIC, partition, offset)
            case ("skip", int(partition)):
                offset = model.next_offset.get(partition, 0)
                model.next_offset[partition] = model.end[partition] = offset + 1
                values.skip(TOPIC, partition, offset)
            case ("take", int(size)):
                values.take_batch(size)
            case (str(action), int(pick)) if values.in_flight:
                in_flight = values.in_flight
                batch = in_flight[pick % len(in_flight)]
                if action == "abandon":
                    values.abandoned(batch.batch_id)
                    continue
                if action == "reject" and rejects:
                    values.rejected(batch.batch_id)
                else:
                    values.acknowledged(batch.batch_id)
                    for v in batch.values:
                        model.dashboard[v.key] = v.record
                for v in batch.values:
                    model.delivered.setdefault(v.key, []).append(v.record)
        check_commits(values, model)
    return values, model


def drain(values: LatestValues, model: Model) -> None:
    """Send and acknowledge everything left, oldest batch first."""
    while values.in_flight or values.pending:
        for batch in values.in_flight:
            values.acknowledged(batch.batch_id)
            for v in batch.values:
                model.dashboard[v.key] = v.record
                model.delivered.setdefault(v.key, []).append(v.record)
        values.take_batch(3)
        check_commits(values, model)


@settings(max_examples=400, deadline=None)
@given(OPS)
def test_no_offset_is_committed_before_its_value_or_a_newer_one_is_delivered(
    ops: list[tuple[object, ...]],
) -> None:
    values, model = run(ops, rejects=True)
    drain(values, model)

    expected = {(TOPIC, p): n for p, n in model.end.items()}
    assert values.committable() == expected


@settings(max_examples=400, deadline=None)
@given(OPS)
def test_the_dashboard_ends_with_the_latest_value_of_every_key(
    ops: list[tuple[object, ...]],
) -> None:
    values, model = run([op for op in ops if op[0] not in ("ack", "reject")], rejects=False)
    drain(values, model)

    newest: dict[str, MetricRecord] = {}
    for partition in sorted(model.offered):
        for rec in model.offered[partition].values():
            k = key(rec.entity_id)
            if k not in newest or _times(rec) > _times(newest[k]):
                newest[k] = rec
    assert {k: _times(r) for k, r in model.dashboard.items()} == {
        k: _times(r) for k, r in newest.items()
    }


# ---------------------------------------------------------------------------- signing
def test_signature_is_hmac_sha256_hex() -> None:
    # RFC 4231, test case 2.
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert sign(b"what do ya want for nothing?", b"Jefe") == digest


def test_verify_accepts_the_right_signature_in_any_case() -> None:
    signature = sign(b"body", b"secret")

    assert verify(b"body", signature, b"secret")
    assert verify(b"body", signature.upper(), b"secret")


@pytest.mark.parametrize(
    ("body", "secret", "signature"),
    [
        (b"body!", b"secret", sign(b"body", b"secret")),
        (b"body", b"other", sign(b"body", b"secret")),
        (b"body", b"secret", "not hex"),
        (b"body", b"secret", "é" * 64),
    ],
    ids=["body changed", "wrong secret", "garbage", "non-ascii"],
)
def test_verify_refuses_a_wrong_signature(body: bytes, secret: bytes, signature: str) -> None:
    assert not verify(body, signature, secret)


# ---------------------------------------------------------------------------- push decisions
@pytest.mark.parametrize(
    ("status", "retry_after", "action", "wait_s", "is_failure"),
    [
        (200, None, PushAction.ACK, None, False),
        (204, None, PushAction.ACK, None, False),
        (429, 7.0, PushAction.RETRY, 7.0, False),
        (429, None, PushAction.RETRY, None, False),
        (500, 3.0, PushAction.RETRY, None, True),
        (503, None, PushAction.RETRY, None, True),
        (408, None, PushAction.RETRY, None, True),
        (None, None, PushAction.RETRY, None, True),
        (400, None, PushAction.REJECT, None, False),
        (401, None, PushAction.REJECT, None, False),
        (413, None, PushAction.REJECT, None, False),
        (422, None, PushAction.REJECT, None, False),
        (302, None, PushAction.REJECT, None, False),
    ],
)
def test_classify_push_maps_answers_to_actions(
    status: int | None,
    retry_after: float | None,
    action: PushAction,
    wait_s: float | None,
    is_failure: bool,
) -> None:
    decision = classify_push(status, retry_after)

    assert (decision.action, decision.wait_s, decision.is_failure) == (action, wait_s, is_failure)
    assert decision.reason


def test_retry_plan_obeys_retry_after_up_to_its_cap() -> None:
    plan = RetryPlan(max_retry_after_s=60.0)

    assert plan.wait(PushDecision(PushAction.RETRY, 7.0), 3, lambda: 0.5) == 7.0
    assert plan.wait(PushDecision(PushAction.RETRY, 3600.0), 0, lambda: 0.5) == 60.0


def test_retry_plan_backs_off_with_full_jitter() -> None:
    plan = RetryPlan(base_s=0.5, cap_s=30.0)
    decision = classify_push(503, None)

    assert plan.wait(decision, 0, lambda: 0.5) == 0.25
    assert plan.wait(decision, 3, lambda: 1.0) == 4.0
    assert plan.wait(decision, 20, lambda: 1.0) == 30.0


# ---------------------------------------------------------------------------- circuit breaker
def test_breaker_opens_after_the_threshold_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30.0)
    for second in range(3):
        assert breaker.allow(second)
        breaker.record_failure(second)

    assert breaker.state == "open"
    assert not breaker.allow(10.0)
    assert breaker.retry_at() == 32.0


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record_failure(0.0)
    breaker.record_success(1.0)
    breaker.record_failure(2.0)

    assert breaker.state == "closed"


def test_breaker_lets_one_trial_through_after_the_reset_time() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)

    assert breaker.allow(30.0)
    assert breaker.state == "half_open"
    assert not breaker.allow(31.0)


def test_successful_trial_closes_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)

    breaker.record_success(30.5)

    assert (breaker.state, breaker.allow(30.6), breaker.retry_at()) == ("closed", True, None)


def test_failed_trial_opens_the_breaker_again() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)

    breaker.record_failure(30.5)

    assert breaker.state == "open"
    assert not breaker.allow(59.0)
    assert breaker.allow(60.5)


def test_lost_trial_allows_another_after_the_reset_time() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)  # the trial never reports back

    assert breaker.allow(60.0)


@pytest.mark.parametrize(("threshold", "reset"), [(0, 30.0), (5, 0.0)])
def test_breaker_refuses_nonsense_settings(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError, match="must"):
        CircuitBreaker(threshold, reset)
