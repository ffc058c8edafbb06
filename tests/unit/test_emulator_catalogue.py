"""The topic catalogue: matching concrete topics, compound expansion, availabletopics."""

from __future__ import annotations

import pytest

from pipeline.emulator.errors import EmulatorError
from pipeline.emulator.state.catalogue import (
    DEFAULT_TEMPLATES,
    EXPAND_FIELDS,
    TopicCatalogue,
    TopicTemplate,
    expand_compound,
)

QUEUE = "8f7e2c1a-0000-4000-8000-000000000001"
USER = "6a1b0000-0000-4000-8000-000000000002"

REQUIRED = [
    "v2.analytics.queues.{id}.observations",
    "v2.analytics.queues.{id}.activity",
    "v2.analytics.users.{id}.aggregates",
    "v2.analytics.wrapup.{id}.aggregates",
    "v2.analytics.flow.{id}.aggregates",
    "v2.routing.queues.{id}.conversations",
    "v2.routing.queues.{id}.users",
    "v2.users.{id}.presence",
    "v2.users.{id}.routingStatus",
    "v2.users.{id}.activity",
    "v2.users.{id}.conversations",
    "v2.detail.events.conversation.{id}.acd.end",
]
ALWAYS = {
    "id",
    "requiresCurrentUser",
    "requiresCurrentUserOrPermission",
    "requiresDivisionPermissions",
    "requiresAnyValidator",
}


@pytest.fixture
def catalogue() -> TopicCatalogue:
    return TopicCatalogue()


@pytest.mark.parametrize("name", REQUIRED)
def test_default_catalogue_offers_the_reference_topics(
    catalogue: TopicCatalogue, name: str
) -> None:
    assert catalogue.template(name) is not None


def test_match_returns_template_kind_and_id(catalogue: TopicCatalogue) -> None:
    found = catalogue.match(f"v2.analytics.queues.{QUEUE}.observations")
    assert found is not None
    assert found.template.name == "v2.analytics.queues.{id}.observations"
    assert (found.entity_kind, found.entity_id) == ("queue", QUEUE)


def test_match_tells_media_variants_apart(catalogue: TopicCatalogue) -> None:
    plain = catalogue.match(f"v2.routing.queues.{QUEUE}.conversations")
    calls = catalogue.match(f"v2.routing.queues.{QUEUE}.conversations.calls")
    assert plain is not None
    assert calls is not None
    assert plain.template.name == "v2.routing.queues.{id}.conversations"
    assert calls.template.name == "v2.routing.queues.{id}.conversations.calls"


def test_match_reads_conversation_ids_of_detail_events(catalogue: TopicCatalogue) -> None:
    found = catalogue.match("v2.detail.events.conversation.conv-1.acd.end")
    assert found is not None
    assert (found.entity_kind, found.entity_id) == ("conversation", "conv-1")


@pytest.mark.parametrize(
    "topic",
    [
        f"v2.analytics.queues.{QUEUE}.observation",  # typo in the suffix
        "v2.analytics.queues..observations",  # empty id
        "v2.analytics.queues.a.b.observations",  # dotted id
        f"v2.analytics.queues.{QUEUE}.observations.extra",
        "v2.analytics.queues.{id}.observations",  # the template itself
        "",
    ],
)
def test_match_refuses_topics_no_template_fits(catalogue: TopicCatalogue, topic: str) -> None:
    assert catalogue.match(topic) is None


def test_expand_compound_splits_sub_topics() -> None:
    assert expand_compound(f"v2.users.{USER}?presence&routingStatus") == [
        f"v2.users.{USER}.presence",
        f"v2.users.{USER}.routingStatus",
    ]
    assert expand_compound("v2.users.x.presence") == ["v2.users.x.presence"]


def test_resolve_validates_every_compound_part(catalogue: TopicCatalogue) -> None:
    assert len(catalogue.resolve(f"v2.users.{USER}?presence&activity")) == 2
    with pytest.raises(EmulatorError) as caught:
        catalogue.resolve(f"v2.users.{USER}?presence&bogus")
    assert (caught.value.status, caught.value.code) == (400, "notification.invalid.topic")
    assert caught.value.extra["messageParams"] == {"topic": f"v2.users.{USER}.bogus"}


def test_resolve_refuses_an_empty_compound_part(catalogue: TopicCatalogue) -> None:
    with pytest.raises(EmulatorError, match=r"notification\.invalid\.topic"):
        catalogue.resolve(f"v2.users.{USER}?presence&")


def test_available_topics_without_expand_lists_ids_only(catalogue: TopicCatalogue) -> None:
    listing = catalogue.available_topics()
    assert len(listing["entities"]) == len(DEFAULT_TEMPLATES)
    assert {key for entity in listing["entities"] for key in entity} == ALWAYS


def test_available_topics_adds_exactly_the_expanded_fields(catalogue: TopicCatalogue) -> None:
    listing = catalogue.available_topics(["schema", "requiresPermissions"])
    for entity in listing["entities"]:
        assert set(entity) == ALWAYS | {"schema", "requiresPermissions"}
        assert entity["schema"]["type"] == "object"


def test_available_topics_full_expand_fills_every_field(catalogue: TopicCatalogue) -> None:
    entity = catalogue.available_topics(EXPAND_FIELDS)["entities"][0]
    assert set(entity) == ALWAYS | set(EXPAND_FIELDS)
    assert entity["transports"] == ["All"]
    assert entity["visibility"] == "Public"
    assert entity["topicParameters"] == ["queueId"]
    assert entity["permissionDetails"][0]["type"] == "requiresPermissions"


def test_available_topics_schema_is_a_copy(catalogue: TopicCatalogue) -> None:
    first = catalogue.available_topics(["schema"])["entities"][0]
    first["schema"]["properties"]["mutated"] = {}
    second = catalogue.available_topics(["schema"])["entities"][0]
    assert "mutated" not in second["schema"]["properties"]


def test_available_topics_refuses_unknown_expand(catalogue: TopicCatalogue) -> None:
    with pytest.raises(EmulatorError) as caught:
        catalogue.available_topics(["schema", "nonsense"])
    assert (caught.value.status, caught.value.code) == (400, "invalid.query.param.value")
    assert caught.value.message.startswith("Value [nonsense] is not valid for parameter [expand]")


def test_include_preview_false_hides_preview_topics() -> None:
    preview = TopicTemplate(
        "v2.preview.{id}.thing", "queue", "queueId", "d", (), {}, visibility="Preview"
    )
    catalogue = TopicCatalogue([*DEFAULT_TEMPLATES[:1], preview])
    with_preview = catalogue.available_topics(include_preview=True)["entities"]
    without = catalogue.available_topics(include_preview=False)["entities"]
    assert [e["id"] for e in with_preview] == [DEFAULT_TEMPLATES[0].name, preview.name]
    assert [e["id"] for e in without] == [DEFAULT_TEMPLATES[0].name]


def test_template_needs_exactly_one_slot() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TopicTemplate("v2.no.slot", "queue", "queueId", "d", (), {})


def test_catalogue_refuses_duplicate_templates() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        TopicCatalogue([DEFAULT_TEMPLATES[0], DEFAULT_TEMPLATES[0]])
