"""Coalescing: the latest value per key, and batches of the keys that changed."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.core.contract.records import MetricRecord
from pipeline.core.workers.latest import Batch, LatestValues
from tests.unit.dashboard_helpers import T0_MS, TOPIC, key, record, take


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


def test_batches_are_cut_by_bytes_so_the_first_push_already_fits() -> None:
    values = LatestValues()
    for i in range(200):
        values.offer(record(f"q{i}"), TOPIC, 0, i)
    limit = 8 * 1024

    batches = []
    while (batch := values.take_batch(5000, max_bytes=limit)) is not None:
        batches.append(batch)

    sizes = [len(orjson.dumps(b.body(now=T0_MS / 1000))) for b in batches]
    assert len(batches) > 1
    assert max(sizes) <= limit
    assert min(sizes[:-1]) > limit * 0.8  # cut by bytes, not much below the limit
    assert sum(len(b.values) for b in batches) == 200


def test_a_value_larger_than_the_byte_limit_still_goes_out_alone() -> None:
    values = LatestValues()
    values.offer(record("big", metric="x" * 5000), TOPIC, 0, 0)
    values.offer(record("small"), TOPIC, 0, 1)

    first = values.take_batch(10, max_bytes=1000)
    second = values.take_batch(10, max_bytes=1000)

    assert first is not None
    assert second is not None
    assert [v.record.entity_id for v in first.values] == ["big"]
    assert [v.record.entity_id for v in second.values] == ["small"]


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


def test_idempotency_key_does_not_depend_on_coalescing_order() -> None:
    one, two = LatestValues("gen"), LatestValues("gen")
    one.offer(record("a"), TOPIC, 0, 0)
    one.offer(record("b"), TOPIC, 0, 1)
    two.offer(record("b"), TOPIC, 0, 0)
    two.offer(record("a"), TOPIC, 0, 1)

    first, second = take(one), take(two)

    assert first.batch_id == second.batch_id
    assert first.idempotency_key == second.idempotency_key
    assert len(first.idempotency_key) == 32


def test_the_same_contents_later_are_a_new_key() -> None:
    # fresh → stale → fresh of one value: the third push is a new state, never a duplicate.
    values = LatestValues("gen")
    values.offer(record(), TOPIC, 0, 0)
    fresh = values.take_batch(10)
    assert fresh is not None
    values.acknowledged(fresh.batch_id)
    values.touch([key()])
    stale = values.take_batch(10, is_stale=lambda _: True)
    assert stale is not None
    values.acknowledged(stale.batch_id)
    values.touch([key()])
    fresh_again = values.take_batch(10)
    assert fresh_again is not None

    keys = {fresh.idempotency_key, stale.idempotency_key, fresh_again.idempotency_key}
    assert len(keys) == 3
    assert [v.stale for v in fresh_again.values] == [v.stale for v in fresh.values]


def test_a_restarted_worker_never_repeats_a_key() -> None:
    # Batch ids restart at 1; the generation keeps the keys apart.
    before, after = LatestValues("run-1"), LatestValues("run-2")
    before.offer(record(), TOPIC, 0, 0)
    after.offer(record(), TOPIC, 0, 0)

    assert take(before).idempotency_key != take(after).idempotency_key


def test_a_re_sent_batch_keeps_its_key() -> None:
    values = LatestValues("gen")
    values.offer(record(), TOPIC, 0, 0)
    batch = take(values)

    assert values.in_flight[0].idempotency_key == batch.idempotency_key


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
