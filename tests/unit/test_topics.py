"""The topic grammar builds, parses and expands topics exactly as Genesys and the emulator do."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, strategies as st

from pipeline.core.genesys import topics
from pipeline.core.genesys.topics import (
    FAMILIES,
    QueueId,
    TopicName,
    TopicRef,
    UserId,
    WrapupCodeId,
    compound_topic,
    expand_compound,
    family,
    is_uuid,
    parse_topic,
)
from pipeline.emulator.state.catalogue import DEFAULT_TEMPLATES, TopicCatalogue

QUEUE = QueueId("8f7e2c1a-0000-4000-8000-000000000001")
USER = UserId("6a1b0000-0000-4000-8000-000000000002")
CODE = WrapupCodeId("d26c0cf8-309f-45b2-8be0-a71d019705ee")


@pytest.mark.parametrize(
    ("build", "entity_id", "expected"),
    [
        (topics.queue_observations, QUEUE, f"v2.analytics.queues.{QUEUE}.observations"),
        (topics.queue_activity, QUEUE, f"v2.analytics.queues.{QUEUE}.activity"),
        (topics.queue_users, QUEUE, f"v2.routing.queues.{QUEUE}.users"),
        (topics.queue_conversations, QUEUE, f"v2.routing.queues.{QUEUE}.conversations"),
        (topics.user_presence, USER, f"v2.users.{USER}.presence"),
        (topics.user_routing_status, USER, f"v2.users.{USER}.routingStatus"),
        (topics.user_activity, USER, f"v2.users.{USER}.activity"),
        (topics.user_conversations, USER, f"v2.users.{USER}.conversations"),
        (topics.user_aggregates, USER, f"v2.analytics.users.{USER}.aggregates"),
        (topics.wrapup_aggregates, CODE, f"v2.analytics.wrapup.{CODE}.aggregates"),
    ],
)
def test_builder_fills_the_template_with_the_id(
    build: Callable[[str], TopicName], entity_id: str, expected: str
) -> None:
    assert build(entity_id) == expected


@pytest.mark.parametrize("bad", ["", "a.b", "a?b", "a&b", "a b", "ü"])
def test_builder_refuses_an_id_that_would_make_another_topic(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid entity id"):
        topics.queue_observations(QueueId(bad))


def test_every_emulator_template_is_a_family_with_the_same_kind() -> None:
    ours = {f.template: f.entity_kind for f in FAMILIES}
    assert {t.name: t.entity_kind for t in DEFAULT_TEMPLATES}.items() <= ours.items()


def test_every_family_template_has_one_slot_and_a_unique_key_per_kind() -> None:
    keys = [(f.entity_kind, f.key) for f in FAMILIES]
    assert len(keys) == len(set(keys))
    assert all(f.template.count("{id}") == 1 for f in FAMILIES)


def test_parse_topic_returns_family_kind_and_id() -> None:
    assert parse_topic(f"v2.routing.queues.{QUEUE}.conversations.calls") == TopicRef(
        "v2.routing.queues.{id}.conversations.calls", "queue", QUEUE
    )
    assert parse_topic(f"v2.detail.events.conversation.{QUEUE}.acd.end") == TopicRef(
        "v2.detail.events.conversation.{id}.acd.end", "conversation", QUEUE
    )


def test_parse_topic_rebuilds_the_same_topic() -> None:
    name = f"v2.users.{USER}.routingStatus"
    ref = parse_topic(name)
    assert ref is not None
    assert ref.topic == name


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "v2.analytics.queues..observations",
        f"v2.analytics.queues.{QUEUE}.observation",
        f"v2.analytics.queues.{QUEUE}.observations.extra",
        f"v2.analytics.queues.{QUEUE}?observations",
        "v2.analytics.queues.a.b.observations",
        f"v3.users.{USER}.presence",
        "v2.users.{id}.presence",
    ],
)
def test_parse_topic_rejects_malformed_names(bad: str) -> None:
    assert parse_topic(bad) is None


@given(st.sampled_from(FAMILIES), st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_every_built_topic_parses_back_and_the_emulator_agrees(
    fam: topics.TopicFamily, entity_id: str
) -> None:
    topic = fam.topic(entity_id)
    assert parse_topic(topic) == TopicRef(fam.template, fam.entity_kind, entity_id)
    emulated = TopicCatalogue().match(topic)
    if emulated is not None:  # the emulator offers a subset of the families
        assert (emulated.template.name, emulated.entity_id) == (fam.template, entity_id)


def test_expand_compound_splits_the_parts() -> None:
    assert expand_compound(f"v2.users.{USER}?presence&routingStatus") == [
        f"v2.users.{USER}.presence",
        f"v2.users.{USER}.routingStatus",
    ]


def test_expand_compound_returns_a_plain_topic_alone() -> None:
    assert expand_compound(f"v2.users.{USER}.presence") == [f"v2.users.{USER}.presence"]


def test_expand_compound_keeps_empty_parts_so_validation_rejects_them() -> None:
    expanded = expand_compound(f"v2.users.{USER}?presence&&")
    assert expanded[1:] == [f"v2.users.{USER}.", f"v2.users.{USER}."]
    assert not any(parse_topic(t) for t in expanded[1:])


def test_compound_topic_folds_topics_of_one_base() -> None:
    parts = [
        topics.user_presence(USER),
        topics.user_routing_status(USER),
        topics.user_activity(USER),
    ]
    folded = compound_topic(parts)
    assert folded == f"v2.users.{USER}?presence&routingStatus&activity"
    assert expand_compound(folded) == parts


def test_compound_topic_of_one_topic_is_that_topic() -> None:
    assert compound_topic([topics.user_presence(USER)]) == topics.user_presence(USER)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([], "no topics"),
        ([f"v2.users.{USER}.presence", "nonsense"], "not a known topic"),
        ([topics.user_presence(USER), topics.user_aggregates(USER)], "do not share one base"),
        ([topics.user_presence(USER), topics.user_presence(UserId("other"))], "one base"),
    ],
)
def test_compound_topic_refuses_what_cannot_be_folded(parts: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compound_topic(parts)


def test_family_lookup_by_kind_and_key() -> None:
    assert family("user", "routingStatus").template == "v2.users.{id}.routingStatus"
    assert family("user", "aggregates").template == "v2.analytics.users.{id}.aggregates"
    with pytest.raises(KeyError):
        family("wrapup", "presence")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8f7e2c1a-0000-4000-8000-000000000001", True),
        ("8F7E2C1A-0000-4000-8000-000000000001", True),
        ("8f7e2c1a00004000800000000000000001", False),
        ("8f7e2c1a-0000-4000-8000-00000000000", False),
        ("8f7e2c1a-0000-4000-8000-00000000000g", False),
        ("", False),
    ],
)
def test_is_uuid_accepts_the_8_4_4_4_12_hex_form(text: str, expected: bool) -> None:
    assert is_uuid(text) is expected


def test_module_exports_exist() -> None:
    assert all(hasattr(topics, name) for name in topics.__all__)
