"""The Kafka contract against a real registry (local or brought), through the real client.

Each test uses its own topic prefix, so subjects never collide across tests or runs.
"""

from __future__ import annotations

import io
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.errors import SchemaError
from pipeline.kafka.registry import inspect_contract, register_contract, require_contract
from pipeline.kafka.schemas import CONTRACT, load_schema, schema_text, subject_for, topic_names
from pipeline.local.stack import Endpoints
from pipeline.services import schemas as commands

__all__: list[str] = []

pytestmark = pytest.mark.integration


@pytest.fixture
def url(endpoints: Endpoints) -> str:
    """The registry under test."""
    return endpoints.schema_registry_url


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(url: str) -> Iterator[SchemaRegistryClient]:
    """A plain confluent-kafka client, to arrange and to cross-check (closed after the test)."""
    with SchemaRegistryClient({"url": url}) as sr:
        yield sr


@pytest.fixture
def dead_url() -> str:
    """A registry URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def metric_subject(prefix: str) -> str:
    """The value subject of ``<prefix>.metrics``."""
    return subject_for(topic_names(prefix)["metrics"])


def avro(schema: dict[str, Any]) -> Schema:
    """A registry Schema from parsed JSON."""
    return Schema(json.dumps(schema), "AVRO")


def check_contract(url: str, prefix: str) -> list[str]:
    """Each subject's problems then warnings, prefixed with the subject; empty when all is well.

    An unreachable or refusing registry is its SchemaError's lines.
    """
    try:
        statuses = inspect_contract(url, prefix)
    except SchemaError as exc:
        return str(exc).splitlines()
    lines: list[str] = []
    for s in statuses:
        lines += [f"{s.subject}: {p}" for p in s.problems]
        lines += [f"{s.subject}: warning: {w}" for w in s.warnings]
    return lines


# ---------------------------------------------------------------------------- the happy path
def test_registered_contract_checks_clean_and_ids_match_the_client(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    registered = register_contract(url, prefix)

    assert check_contract(url, prefix) == []
    ids = require_contract(url, prefix)
    topics = topic_names(prefix)
    assert set(ids) == set(topics.values())
    for suffix, topic in topics.items():
        subject = subject_for(topic)
        mine = client.lookup_schema(subject, Schema(schema_text(CONTRACT[suffix]), "AVRO"))
        assert ids[topic] == mine.schema_id == client.get_latest_version(subject).schema_id
        assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    assert [(r.topic, r.schema_id, r.created) for r in registered] == [
        (topic, ids[topic], True) for topic in topics.values()
    ]
    # metrics and current share metric.avsc, so they share one schema id.
    assert ids[topics["metrics"]] == ids[topics["current"]]


def test_registering_twice_reports_the_existing_versions(url: str, prefix: str) -> None:
    first = register_contract(url, prefix)

    second = register_contract(url, prefix)

    assert [(r.subject, r.version, r.schema_id) for r in second] == [
        (r.subject, r.version, r.schema_id) for r in first
    ]
    assert all(r.created for r in first)
    assert not any(r.created for r in second)


def test_full_transitive_chosen_by_an_operator_is_kept(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    client.set_compatibility(metric_subject(prefix), "FULL_TRANSITIVE")

    register_contract(url, prefix)

    assert client.get_compatibility(metric_subject(prefix)) == "FULL_TRANSITIVE"
    assert check_contract(url, prefix) == []


# ---------------------------------------------------------------------------- what check reports
def test_missing_subject_is_reported_and_refused(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    register_contract(url, prefix)
    dlq = subject_for(topic_names(prefix)["dlq"])
    client.delete_subject(dlq)

    assert check_contract(url, prefix) == [
        f"{dlq}: not registered: run `pipeline schemas register`"
    ]
    with pytest.raises(SchemaError) as exc_info:
        require_contract(url, prefix)
    message = str(exc_info.value)
    assert dlq in message
    assert "run `pipeline schemas register`" in message
    assert metric_subject(prefix) not in message


def test_an_incompatible_schema_under_the_subject_is_reported(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    subject = metric_subject(prefix)
    client.set_compatibility(subject, "NONE")
    other = {
        "type": "record",
        "name": "MetricRecord",
        "namespace": "io.github.genesys_kafka_pipeline.v1",
        "fields": [{"name": "reading", "type": "int"}],
    }
    client.register_schema(subject, avro(other))

    lines = [line for line in check_contract(url, prefix) if line.startswith(subject)]

    assert len(lines) == 2
    assert "cannot read data written with the registered schema (latest version 1)" in lines[0]
    assert "version 1: reader field missing default value" in lines[0]
    assert lines[1] == (
        f"{subject}: warning: compatibility is NONE (the subject's level), weaker than "
        "BACKWARD_TRANSITIVE: run `pipeline schemas register`"
    )
    with pytest.raises(SchemaError, match="cannot read data written"):
        require_contract(url, prefix)


def test_register_refuses_over_an_incompatible_subject_but_does_the_others(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    subject = metric_subject(prefix)
    client.set_compatibility(subject, "NONE")
    client.register_schema(
        subject, avro({"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]})
    )

    with pytest.raises(SchemaError) as exc_info:
        register_contract(url, prefix)

    [line] = str(exc_info.value).splitlines()[1:]
    assert line.startswith(f"{subject}: metric.avsc is incompatible with a version already")
    assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    assert [line for line in check_contract(url, prefix) if not line.startswith(subject)] == []


def test_a_newer_schema_not_registered_yet_is_named_and_register_fixes_it(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    subject = metric_subject(prefix)
    current = load_schema("metric")
    older = {**current, "fields": [f for f in current["fields"] if f["name"] != "correlation_id"]}
    client.register_schema(subject, avro(older))

    lines = [line for line in check_contract(url, prefix) if line.startswith(subject)]

    # The level warning depends on the registry's global default (BACKWARD unless changed).
    assert [line for line in lines if ": warning: " not in line] == [
        f"{subject}: this build writes a newer metric.avsc that is not registered yet (it can "
        "read every registered version, latest 1): run `pipeline schemas register`"
    ]
    [metrics, *_] = register_contract(url, prefix)
    assert (metrics.subject, metrics.version, metrics.created) == (subject, 2, True)
    assert check_contract(url, prefix) == []


def test_a_newer_registered_contract_makes_this_build_refuse(
    url: str, prefix: str, client: SchemaRegistryClient
) -> None:
    register_contract(url, prefix)
    subject = metric_subject(prefix)
    current = load_schema("metric")
    site = {"name": "site", "type": ["null", "string"], "default": None, "doc": "Later."}
    client.register_schema(subject, avro({**current, "fields": [*current["fields"], site]}))

    assert check_contract(url, prefix) == [
        f"{subject}: latest version 2 is not the schema this build writes (this build's "
        "metric.avsc is version 1): a newer contract is registered; run a build that writes it"
    ]
    with pytest.raises(SchemaError, match="latest version 2"):
        require_contract(url, prefix)


# ---------------------------------------------------------------------------- unreachable
def test_an_unreachable_registry_is_one_clear_line(dead_url: str, prefix: str) -> None:
    assert check_contract(dead_url, prefix) == [
        f"schema registry {dead_url} is unreachable (ConnectError): check the registry URL and "
        "that the registry is running"
    ]
    with pytest.raises(SchemaError, match="unreachable"):
        require_contract(dead_url, prefix)
    with pytest.raises(SchemaError, match="unreachable"):
        register_contract(dead_url, prefix)


def test_registry_credentials_never_reach_a_message(dead_url: str, prefix: str) -> None:
    with_secret = dead_url.replace("http://", "http://operator:canary-s3cret@")

    lines = check_contract(with_secret, prefix)

    assert lines
    assert "canary-s3cret" not in " ".join(lines)
    assert dead_url in lines[0]


def test_a_url_that_is_not_http_is_refused_clearly(prefix: str) -> None:
    assert check_contract("localhost:8081", prefix) == [
        "schema registry URL 'localhost:8081' is not valid: each URL must start with http:// or "
        "https://"
    ]


# ---------------------------------------------------------------------------- the commands
def test_commands_print_one_line_per_subject_and_exit_codes(url: str, prefix: str) -> None:
    out = io.StringIO()
    subjects = [subject_for(t) for t in topic_names(prefix).values()]

    assert commands.check(url, prefix, out) == 1
    assert commands.register(url, prefix, out) == 0
    assert commands.register(url, prefix, out) == 0
    assert commands.check(url, prefix, out) == 0

    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == (
        [["problem", f"{s}:"] for s in subjects]
        + [["created", s] for s in subjects]
        + [["exists", s] for s in subjects]
        + [["ok", s] for s in subjects]
    )


def test_check_command_fails_when_the_registry_is_unreachable(dead_url: str, prefix: str) -> None:
    out = io.StringIO()

    assert commands.check(dead_url, prefix, out) == 1
    assert commands.register(dead_url, prefix, out) == 1
    line = (
        f"error: schema registry {dead_url} is unreachable (ConnectError): check the registry "
        "URL and that the registry is running"
    )
    assert out.getvalue().splitlines() == [line, line]


def test_inspect_reports_versions_ids_and_levels(url: str, prefix: str) -> None:
    register_contract(url, prefix)

    statuses = inspect_contract(url, prefix)

    assert [(s.schema_name, s.version, s.latest_version, s.compatibility) for s in statuses] == [
        (name, 1, 1, "BACKWARD_TRANSITIVE") for name in CONTRACT.values()
    ]
    assert all(s.is_ok for s in statuses)


# ---------------------------------------------------------------------------- end to end
def test_producer_style_serializer_round_trips_through_the_registered_contract(
    url: str, prefix: str
) -> None:
    register_contract(url, prefix)
    ids = require_contract(url, prefix)
    topic = topic_names(prefix)["metrics"]
    now = datetime(2026, 11, 3, 9, 30, 15, 123000, tzinfo=UTC)
    record = {
        "event_id": "0f" * 16,
        "source_topic": "v2.analytics.queues.q1.observations",
        "entity_type": "queue",
        "entity_id": "q1",
        "metric": "oWaiting",
        "qualifier": None,
        "media_type": "voice",
        "interval_start": None,
        "interval_end": None,
        "count": 7,
        "sum": None,
        "min": None,
        "max": None,
        "ratio": None,
        "numerator": None,
        "denominator": None,
        "target": None,
        "count_negative": None,
        "count_positive": None,
        "current": 7.0,
        "p95": None,
        "p99": None,
        "calculated_metric_value": None,
        "value": 7.0,
        "unit": "count",
        "derived": False,
        "event_time": now,
        "ingest_time": now,
        "backfill": False,
        "producer_instance": "shard-0",
        "correlation_id": None,
        "schema_version": 2,
    }
    ctx = SerializationContext(topic, MessageField.VALUE)

    with (
        SchemaRegistryClient({"url": url}) as writer_client,
        SchemaRegistryClient({"url": url}) as reader_client,
    ):
        serialize = AvroSerializer(
            writer_client,
            schema_text("metric"),
            conf={
                "auto.register.schemas": False,
                "use.latest.version": True,
                "subject.name.strategy": topic_subject_name_strategy,
            },
        )
        data = serialize(record, ctx)
        decoded = AvroDeserializer(reader_client)(data, ctx)

    assert data is not None
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == ids[topic]
    assert decoded == record
