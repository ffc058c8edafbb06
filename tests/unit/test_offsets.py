"""The offset-commit rule: an offset is committed only once its value, or a newer one, is
delivered (examples, then model-based runs with hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings, strategies as st

from pipeline.core.contract.records import MetricRecord
from pipeline.core.workers.latest import LatestValues
from tests.unit.dashboard_helpers import T0_MS, TOPIC, key, record, take


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


# ---------------------------------------------------------------------------- bounded memory
def test_a_long_outage_keeps_the_bookkeeping_bounded_by_keys_not_records() -> None:
    values = LatestValues()
    keys, partitions, rounds = 20, 3, 500
    next_offset = dict.fromkeys(range(partitions), 0)
    largest = 0
    for step in range(rounds):  # 10,000 records; the dashboard is down: every batch abandoned
        for k in range(keys):
            partition = k % partitions
            rec = record(f"q{k}", T0_MS + step, float(step))
            values.offer(rec, TOPIC, partition, next_offset[partition])
            next_offset[partition] += 1
        batch = values.take_batch(7)
        assert batch is not None
        values.abandoned(batch.batch_id)
        largest = max(largest, values.offsets.entries())

    # Per partition and key: a few segments; never one entry per record.
    assert largest <= partitions + 4 * keys
    assert values.committable() == dict.fromkeys(((TOPIC, p) for p in range(partitions)), 0)

    while values.pending:  # the dashboard is back: everything goes out and is acknowledged
        values.acknowledged(take(values, 7).batch_id)
    assert values.committable() == {(TOPIC, p): n for p, n in next_offset.items()}
