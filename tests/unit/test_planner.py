"""The planner resolves names, expands topics and shards them deterministically and stably."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pipeline.core.genesys.topics import FAMILIES, EntityKind, QueueId, UserId, WrapupCodeId
from pipeline.core.subscription import planner, resolution
from pipeline.core.subscription.planner import (
    Lookups,
    Plan,
    PlannedTopic,
    ResolvedEntities,
    expand_topics,
    lookups_needed,
    plan_shards,
    render_plan_text,
    shard_for,
    unresolved_references,
)
from pipeline.core.subscription.spec import load_spec, parse_spec
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig
from pipeline.emulator.state.catalogue import TopicCatalogue
from pipeline.errors import SubscriptionError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
Q1 = QueueId("8f7e2c1a-0000-4000-8000-000000000001")
Q2 = QueueId("8f7e2c1a-0000-4000-8000-000000000002")
U1 = UserId("6a1b0000-0000-4000-8000-000000000001")
U2 = UserId("6a1b0000-0000-4000-8000-000000000002")
W1 = WrapupCodeId("d26c0cf8-309f-45b2-8be0-a71d019705ee")


def emulator_directory() -> ResolvedEntities:
    """What the shell would fetch from the emulator with its default seed (7) and 20 queues."""
    cc = ContactCenter(SimulationConfig(), datetime(2026, 5, 4, 9, tzinfo=UTC))
    return ResolvedEntities(
        queues_by_name={q.name: QueueId(q.id) for q in cc.queues},
        queue_members={
            QueueId(q.id): tuple(UserId(cc.users[u].id) for u in cc.members(i))
            for i, q in enumerate(cc.queues)
        },
        wrapup_codes_by_name={w.name: WrapupCodeId(w.id) for w in cc.wrapup_codes},
        known_queue_ids=frozenset(QueueId(q.id) for q in cc.queues),
        known_wrapup_ids=frozenset(WrapupCodeId(w.id) for w in cc.wrapup_codes),
        fetched=True,
    )


def entity(kind: EntityKind, entity_id: str, count: int) -> list[PlannedTopic]:
    """The first ``count`` topic families of one entity, as planned topics."""
    return [
        PlannedTopic(f.topic(entity_id), f.template, kind, entity_id)
        for f in [f for f in FAMILIES if f.entity_kind == kind][:count]
    ]


def where(plan: Plan) -> dict[str, tuple[int, int]]:
    """topic → (shard, channel)."""
    return {t.topic: (s.index, c.index) for s in plan.shards for c in s.channels for t in c.topics}


# ----------------------------------------------------------------------------- resolution


def test_lookups_needed_lists_names_and_member_queues_once() -> None:
    spec = parse_spec(
        "subscriptions:\n"
        f"  - {{name: q, queues: [{{name: A}}, {{id: {Q1}}}, {{name: B}}]}}\n"
        f"  - {{name: u, users: {{members_of_queues: [{{name: A}}, {{name: C}}, {{id: {Q2}}}]}}}}\n"
        "  - {name: w, wrapup_codes: [{name: Resolved}]}\n"
    )
    assert lookups_needed(spec) == Lookups(("A", "B", "C"), ("Resolved",), (Q2,), ("A", "C"))


def test_offline_validate_reports_names_as_not_resolved_yet() -> None:
    spec = parse_spec(f"subscriptions:\n  - {{name: q, queues: [{{name: A}}, {{id: {Q1}}}]}}\n")
    assert unresolved_references(spec, ResolvedEntities()) == [
        "subscriptions[0].queues[0].name: queue 'A' not resolved yet (names resolve through the "
        "REST API at plan time)"
    ]
    assert [t.entity_id for t in expand_topics(spec, ResolvedEntities())] == [Q1]


def test_a_fetched_directory_reports_unknown_names_with_a_suggestion() -> None:
    spec = parse_spec(
        "subscriptions:\n"
        "  - {name: q, queues: [{name: Suport 01}]}\n"
        "  - {name: w, wrapup_codes: [{name: Resolvd}]}\n"
        "  - {name: u, users: {members_of_queues: [{name: Nope}]}}\n"
    )
    assert unresolved_references(spec, emulator_directory()) == [
        "subscriptions[0].queues[0].name: no queue named 'Suport 01' (did you mean Support 01?)",
        "subscriptions[1].wrapup_codes[0].name: no wrap-up code named 'Resolvd' (did you mean "
        "Resolved?)",
        "subscriptions[2].users.members_of_queues[0].name: no queue named 'Nope'",
    ]


def test_explicit_ids_are_checked_when_the_directory_knows_all_ids() -> None:
    spec = parse_spec(
        f"subscriptions:\n  - {{name: q, queues: [{{id: {Q1}}}]}}\n"
        f"  - {{name: w, wrapup_codes: [{{id: {W1}}}]}}\n"
    )
    assert unresolved_references(spec, emulator_directory()) == [
        f"subscriptions[0].queues[0].id: no queue with id {Q1}"
    ]


def test_members_of_an_explicit_queue_need_the_api() -> None:
    spec = parse_spec(
        f"subscriptions:\n  - {{name: u, users: {{members_of_queues: [{{id: {Q1}}}]}}}}\n"
    )
    at = "subscriptions[0].users.members_of_queues[0]"
    assert unresolved_references(spec, ResolvedEntities()) == [
        f"{at}: members of queue {Q1} resolve through the REST API at plan time"
    ]
    assert unresolved_references(spec, ResolvedEntities(fetched=True)) == [
        f"{at}: members of queue {Q1} were not fetched"
    ]
    members = ResolvedEntities(queue_members={Q1: (U1, U2)}, fetched=True)
    assert unresolved_references(spec, members) == []
    assert {t.entity_id for t in expand_topics(spec, members)} == {U1, U2}


def test_example_file_resolves_fully_against_the_emulator() -> None:
    spec, directory = load_spec(EXAMPLE), emulator_directory()
    assert unresolved_references(spec, directory) == []
    topics = expand_topics(spec, directory)
    catalogue = TopicCatalogue()
    assert all(catalogue.match(t.topic) is not None for t in topics)
    kinds = {t.entity_kind for t in topics}
    assert kinds == {"queue", "user", "wrapup"}
    # 3 + 2×2 queue topics, 3 wrap-up topics, and 3 topics per member of Support 01
    support_01 = directory.queue_members[directory.queues_by_name["Support 01"]]
    assert len(topics) == 3 + 4 + 3 + 3 * len(support_01)


# ----------------------------------------------------------------------------- expansion


def test_expand_topics_gives_each_topic_once_with_everyone_who_asked() -> None:
    spec = parse_spec(
        "subscriptions:\n"
        f"  - {{name: a, queues: [{{id: {Q1}}}], topics: [observations, users]}}\n"
        f"  - {{name: b, queues: [{{id: {Q1}}}, {{name: Two}}]}}\n"
    )
    topics = expand_topics(spec, ResolvedEntities(queues_by_name={"Two": Q2}, fetched=True))
    assert [(t.topic, t.subscriptions) for t in topics] == [
        (f"v2.analytics.queues.{Q1}.observations", ("a", "b")),
        (f"v2.analytics.queues.{Q2}.observations", ("b",)),
        (f"v2.routing.queues.{Q1}.users", ("a",)),
    ]
    assert topics[0].entity_key == f"queue:{Q1}"


def test_expand_topics_maps_user_topics_to_their_families() -> None:
    spec = parse_spec(
        f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}, "
        "topics: [presence, routingStatus, activity, aggregates, conversations]}\n"
    )
    assert sorted(t.family for t in expand_topics(spec, ResolvedEntities())) == [
        "v2.analytics.users.{id}.aggregates",
        "v2.users.{id}.activity",
        "v2.users.{id}.conversations",
        "v2.users.{id}.presence",
        "v2.users.{id}.routingStatus",
    ]


# ----------------------------------------------------------------------------- sharding

entity_ids = st.uuids().map(str)
entity_specs = st.tuples(
    st.sampled_from(["queue", "user", "wrapup"]), entity_ids, st.integers(1, 5)
)


def build(entities: list[tuple[str, str, int]]) -> list[PlannedTopic]:
    """Planned topics for (kind, id, topic count) triples."""
    out: list[PlannedTopic] = []
    for kind, entity_id, count in entities:
        out += entity(kind, entity_id, count)  # type: ignore[arg-type]  # kinds sampled above
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(entity_specs, max_size=80), st.integers(1, 5), st.integers(5, 40))
def test_every_topic_is_planned_exactly_once(
    entities: list[tuple[str, str, int]], shards: int, cap: int
) -> None:
    topics = build(entities)
    plan = plan_shards(topics, shards, cap, 1000, client_per_shard=True)
    planned = [t.topic for s in plan.shards for c in s.channels for t in c.topics]
    assert len(planned) == len(set(planned))
    assert set(planned) == {t.topic for t in topics}
    assert all(len(c.topics) <= cap for s in plan.shards for c in s.channels)
    assert len(plan.shards) == shards


@settings(max_examples=60, deadline=None)
@given(st.lists(entity_specs, max_size=60), st.integers(1, 5), st.randoms())
def test_the_plan_does_not_depend_on_input_order(
    entities: list[tuple[str, str, int]], shards: int, rnd: random.Random
) -> None:
    topics = build(entities)
    shuffled = list(topics)
    rnd.shuffle(shuffled)
    assert plan_shards(topics, shards, 10, 1000, client_per_shard=True) == plan_shards(
        shuffled, shards, 10, 1000, client_per_shard=True
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(entity_specs, max_size=60), st.integers(1, 5))
def test_all_topics_of_an_entity_share_a_shard_and_a_channel(
    entities: list[tuple[str, str, int]], shards: int
) -> None:
    plan = plan_shards(build(entities), shards, 10, 1000, client_per_shard=True)
    homes: dict[str, set[tuple[int, int]]] = {}
    for s in plan.shards:
        for c in s.channels:
            for t in c.topics:
                homes.setdefault(t.entity_key, set()).add((s.index, c.index))
    assert all(len(h) == 1 for h in homes.values())


@settings(max_examples=80, deadline=None)
@given(
    st.lists(entity_specs, max_size=80, unique_by=lambda e: e[1]),
    st.lists(entity_specs, min_size=1, max_size=20, unique_by=lambda e: e[1]),
    st.integers(1, 5),
)
def test_adding_entities_moves_no_existing_topic_to_another_shard(
    base: list[tuple[str, str, int]], added: list[tuple[str, str, int]], shards: int
) -> None:
    before = where(plan_shards(build(base), shards, 12, 1000, client_per_shard=True))
    after = where(plan_shards(build(base + added), shards, 12, 1000, client_per_shard=True))
    assert all(after[topic][0] == home[0] for topic, home in before.items())


@settings(max_examples=80, deadline=None)
@given(
    st.lists(entity_specs, max_size=120, unique_by=lambda e: e[1]), entity_specs, st.integers(5, 30)
)
def test_adding_one_entity_moves_few_topics_between_channels(
    base: list[tuple[str, str, int]], new: tuple[str, str, int], cap: int
) -> None:
    """Every topic packed before the new entity keeps its channel; boundary j shifts by at most
    k + (j + 1)·(largest entity − 1) topics (the space left unused at channel ends may differ)."""
    if new[1] in {e[1] for e in base}:
        return
    before = plan_shards(build(base), 1, cap, 1000)
    after = plan_shards(build([*base, new]), 1, cap, 1000)
    flat_before = [(c.index, t.topic) for c in before.shards[0].channels for t in c.topics]
    flat_after = [(c.index, t.topic) for c in after.shards[0].channels for t in c.topics]
    first_new = next(i for i, (_, topic) in enumerate(flat_after) if new[1] in topic)
    assert flat_after[:first_new] == flat_before[:first_new]
    largest = max([new[2]] + [e[2] for e in base])
    bound = sum(new[2] + (j + 1) * (largest - 1) for j in range(len(after.shards[0].channels)))
    old, now = where(before), where(after)
    assert sum(1 for topic, place in old.items() if now[topic] != place) <= bound


def test_adding_an_entity_to_a_large_plan_moves_under_one_percent_of_topics() -> None:
    rng = random.Random(7)
    base = [
        (
            "queue" if rng.random() < 0.3 else "user",
            str(uuid.UUID(int=rng.getrandbits(128))),
            rng.randint(1, 5),
        )
        for _ in range(3000)
    ]
    before = where(plan_shards(build(base), 2))
    after = where(plan_shards(build([*base, ("user", str(uuid.UUID(int=1)), 5)]), 2))
    moved = sum(1 for topic, place in before.items() if after[topic] != place)
    assert moved < len(before) / 100


def test_a_new_shard_takes_entities_only_from_the_old_ones() -> None:
    keys = [f"queue:{uuid.UUID(int=i)}" for i in range(4000)]
    moved = [k for k in keys if shard_for(k, 4) != shard_for(k, 5)]
    assert all(shard_for(k, 5) == 4 for k in moved)
    assert 0.15 < len(moved) / len(keys) < 0.25  # about 1/5


def test_shards_are_balanced_by_entity() -> None:
    counts = [0] * 4
    for i in range(8000):
        counts[shard_for(f"user:{uuid.UUID(int=i)}", 4)] += 1
    assert min(counts) > 0.9 * 2000
    assert max(counts) < 1.1 * 2000


def test_shard_for_is_a_stable_hash() -> None:
    # blake2b, not hash(): the same answer in every process and every Python version.
    assert [shard_for(f"queue:{Q1}", n) for n in (1, 2, 3, 8)] == [0, 1, 1, 7]


def test_channels_pack_full_except_for_whole_entities() -> None:
    topics = build([("user", str(uuid.UUID(int=i)), 3) for i in range(1000)])
    channels = plan_shards(topics, 1).shards[0].channels
    assert [len(c.topics) for c in channels] == [999, 999, 999, 3]


def test_an_entity_larger_than_a_channel_spills_into_the_next() -> None:
    plan = plan_shards(entity("queue", Q1, 5), 1, 2, 20)
    assert [len(c.topics) for c in plan.shards[0].channels] == [2, 2, 1]


def test_max_request_bytes_splits_channels_further() -> None:
    topics = build([("queue", str(uuid.UUID(int=i)), 1) for i in range(100)])
    size = len(json.dumps([{"id": topics[0].topic}]))
    plan = plan_shards(topics, 1, max_request_bytes=10 * (size + 2))
    channels = plan.shards[0].channels
    assert [len(c.topics) for c in channels] == [10] * 10
    assert all(c.request_bytes <= 10 * (size + 2) for c in channels)


def test_request_bytes_is_the_put_body_size() -> None:
    channel = plan_shards(entity("user", U1, 4), 1).shards[0].channels[0]
    assert channel.subscribe_body() == [{"id": t.topic} for t in channel.topics]
    assert channel.request_bytes == len(json.dumps(channel.subscribe_body()))


def test_a_shard_over_twenty_channels_is_an_error_with_the_numbers() -> None:
    topics = build([("queue", str(uuid.UUID(int=i)), 1) for i in range(25)])
    with pytest.raises(SubscriptionError) as caught:
        plan_shards(topics, 1, max_topics_per_channel=10, max_channels_per_client=2)
    assert caught.value.problems == [
        "shard 0: needs 3 channels for 25 topics, but an OAuth client holds at most 2 channels of "
        "10 topics (docs/genesys-api.md §5.4); use --shards 2 or more, with one OAuth client "
        "per shard"
    ]


def test_at_the_real_limits_twenty_thousand_single_topics_fit_one_client() -> None:
    topics = build([("queue", str(uuid.UUID(int=i)), 1) for i in range(20_000)])
    plan = plan_shards(topics, 1)
    assert (plan.channel_count, plan.topic_count) == (20, 20_000)
    with pytest.raises(SubscriptionError, match=r"shard 0: needs 21 channels for 20,001 topics"):
        plan_shards([*topics, *entity("user", U1, 1)], 1)


def test_shards_sharing_one_client_share_its_twenty_channels() -> None:
    topics = build([("queue", str(uuid.UUID(int=i)), 1) for i in range(30)])
    alone = plan_shards(topics, 2, 10, 2, client_per_shard=True)
    assert alone.channel_count > 2
    with pytest.raises(SubscriptionError) as caught:
        plan_shards(topics, 2, 10, 2)
    assert caught.value.problems == [
        f"plan: 2 shards need {alone.channel_count} channels in total, but they share one OAuth "
        "client, which holds at most 2 (another channel evicts the least recently used one, "
        "docs/genesys-api.md §5.4); give each shard its own OAuth client"
    ]


def test_a_topic_given_twice_is_planned_once() -> None:
    topics = entity("user", U1, 2)
    assert plan_shards([*topics, *topics], 1).topic_count == 2


@pytest.mark.parametrize("args", [(0, 1000, 20), (1, 0, 20), (1, 1000, 0)])
def test_counts_below_one_are_refused(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_shards([], *args)


def test_an_empty_plan_has_empty_shards() -> None:
    plan = plan_shards([], 3)
    assert [len(s.channels) for s in plan.shards] == [0, 0, 0]


# ----------------------------------------------------------------------------- output


def test_plan_to_dict_is_json_with_totals_and_topics() -> None:
    topics = [*entity("queue", Q1, 2), *entity("user", U1, 3)]
    plan = plan_shards(topics, 1)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["totals"] == {"shards": 1, "channels": 1, "topics": 5, "entities": 2}
    assert data["limits"] == {
        "max_topics_per_channel": 1000,
        "max_channels_per_client": 20,
        "client_per_shard": False,
    }
    channel = data["shards"][0]["channels"][0]
    assert sorted(channel["topics"]) == sorted(t.topic for t in topics)
    assert (channel["topic_count"], channel["entity_count"]) == (5, 2)


def test_render_plan_text_summarises_shards_and_channels() -> None:
    topics = build([("queue", str(uuid.UUID(int=i)), 2) for i in range(600)])
    text = render_plan_text(plan_shards(topics, 2, client_per_shard=True))
    lines = text.splitlines()
    assert lines[0] == (
        "plan: 1,200 topics for 600 entities in 2 shards, 2 channels (limits: 1,000 topics per "
        "channel, 20 channels per client; one OAuth client per shard)"
    )
    assert [line.split(":")[0] for line in lines[1:]] == [
        "shard 0",
        "  channel 0",
        "shard 1",
        "  channel 0",
    ]
    assert "PUT body" in lines[2]


def test_example_plan_against_the_emulator_fits_one_channel() -> None:
    topics = expand_topics(load_spec(EXAMPLE), emulator_directory())
    plan = plan_shards(topics, 1)
    assert (plan.channel_count, plan.topic_count) == (1, len(topics))


@pytest.mark.parametrize("module", [planner, resolution])
def test_module_exports_exist(module: object) -> None:
    assert all(hasattr(module, name) for name in module.__all__)  # type: ignore[attr-defined]
