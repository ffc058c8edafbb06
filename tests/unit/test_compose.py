"""docker-compose.yml cannot run here (no Docker engine); these checks keep it correct."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    result: dict[str, Any] = doc["services"]
    return result


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items()}


def _listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` → {NAME: "host:port"}."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_kafka_is_official_image_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["CLUSTER_ID"]
    node_id = env["KAFKA_NODE_ID"]
    voter_id, voter_addr = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == node_id
    listeners = _listeners(env["KAFKA_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert voter_addr.endswith(listeners[controller].rsplit(":", 1)[1])


def test_kafka_listeners_are_consistent(services: dict[str, Any]) -> None:
    env = _env(services["kafka"])
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) == set(protocols)
    assert set(advertised) <= set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # Host clients (tests with KAFKA_BOOTSTRAP_SERVERS=localhost:9092) reach a published port.
    host_ports = {p.split(":")[0] for p in services["kafka"]["ports"]}
    assert "localhost:9092" in advertised.values()
    assert "9092" in host_ports
    # Single node: internal topics cannot ask for more replicas than brokers.
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_schema_registry_reaches_kafka_inside_the_network(services: dict[str, Any]) -> None:
    registry = services["schema-registry"]
    env = _env(registry)
    kafka_advertised = _listeners(_env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])
    bootstrap = env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].split("://", 1)[1]
    assert bootstrap in kafka_advertised.values()
    assert not bootstrap.startswith("localhost")
    assert env["SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL"] == "backward_transitive"
    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "8081:8081" in registry["ports"]


@pytest.mark.parametrize("name", ["kafka", "schema-registry"])
def test_every_service_has_a_healthcheck_and_restart_policy(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["healthcheck"]["test"]
    assert service["restart"] in {"unless-stopped", "always", "on-failure"}
