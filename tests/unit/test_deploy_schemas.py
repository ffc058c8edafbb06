"""deploy/ and docker-compose.yml against the official schemas, offline: the Kubernetes OpenAPI
schemas (``kubernetes-validate``, strict: unknown fields are errors, as ``kubectl apply``'s
server-side field validation makes them), the compose-spec schema (vendored by
``check-jsonschema``) and the CRD schemas of Strimzi and the Prometheus Operator
(``tests/fixtures/schemas``, sources and licenses in its README)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
COMPOSE = ROOT / "docker-compose.yml"
OLDEST_KUBERNETES = "1.28"  # deploy/README.md: the pod-index label
KUBERNETES = [OLDEST_KUBERNETES, latest_version()]
CUSTOM = {  # (apiVersion, kind) → the vendored openAPIV3Schema
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi-kafkatopic-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring-podmonitor-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring-prometheusrule-v1.json",
}
NOT_OBJECTS = {"Kustomization"}  # kustomize's own file, not applied to the cluster


def _objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            # subscription.yaml is data (a ConfigMap's file), not an object.
            if doc and "apiVersion" in doc and doc.get("kind") not in NOT_OBJECTS:
                yield f"{path.relative_to(DEPLOY)}[{index}] {doc['kind']}", doc


OBJECTS = list(_objects())
CORE = [(name, doc) for name, doc in OBJECTS if (doc["apiVersion"], doc["kind"]) not in CUSTOM]
CUSTOM_OBJECTS = [
    (name, doc) for name, doc in OBJECTS if (doc["apiVersion"], doc["kind"]) in CUSTOM
]


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema where an unknown field is an error (the API server's strict validation):
    ``additionalProperties: false`` wherever properties are listed and unknown fields are not
    preserved on purpose (``x-kubernetes-preserve-unknown-fields``)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # metadata is `type: object` in a CRD; the API server checks it as ObjectMeta.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def _custom_validator(doc: dict[str, Any]) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / CUSTOM[(doc["apiVersion"], doc["kind"])]).read_text())
    return jsonschema.Draft7Validator(_strict(schema))


def _check_custom(doc: dict[str, Any]) -> None:
    errors = sorted(_custom_validator(doc).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_there_are_core_and_custom_objects_to_check() -> None:
    kinds = {doc["kind"] for _, doc in CORE}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "Job"} <= kinds
    assert {"PodDisruptionBudget"} <= kinds
    assert {doc["kind"] for _, doc in CUSTOM_OBJECTS} == {
        "KafkaTopic",
        "PodMonitor",
        "PrometheusRule",
    }


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize(("name", "doc"), CORE, ids=[n for n, _ in CORE])
def test_core_objects_match_the_kubernetes_schema(
    name: str, doc: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_kubernetes_check_can_fail() -> None:
    deployment = next(doc for _, doc in CORE if doc["kind"] == "Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = 2  # not a field: strict validation refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, latest_version(), strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, latest_version(), strict=True)


@pytest.mark.parametrize(("name", "doc"), CUSTOM_OBJECTS, ids=[n for n, _ in CUSTOM_OBJECTS])
def test_custom_resources_match_their_crd_schema(name: str, doc: dict[str, Any]) -> None:
    _check_custom(doc)


def test_topics_use_the_strimzi_v1_api() -> None:
    topics = [doc for _, doc in CUSTOM_OBJECTS if doc["kind"] == "KafkaTopic"]
    assert len(topics) == 5
    assert {t["apiVersion"] for t in topics} == {"kafka.strimzi.io/v1"}


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("KafkaTopic", lambda d: d["spec"].update(partitions=0), "less than the minimum"),
        ("KafkaTopic", lambda d: d["spec"].update(replica=3), "Additional properties"),
        ("KafkaTopic", lambda d: d.pop("spec"), "'spec' is a required property"),
        ("PodMonitor", lambda d: d["spec"].update(podMetricEndpoints=[]), "Additional properties"),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0].pop("name"), "'name' is a required"),
    ],
)
def test_the_custom_resource_check_can_fail(kind: str, change: Any, message: str) -> None:
    doc = copy.deepcopy(next(doc for _, doc in CUSTOM_OBJECTS if doc["kind"] == kind))
    change(doc)
    with pytest.raises(AssertionError, match=message):
        _check_custom(doc)


def _compose_validator() -> jsonschema.protocols.Validator:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_docker_compose_matches_the_compose_spec() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    errors = sorted(_compose_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_compose_check_can_fail() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    name = next(iter(doc["services"]))
    doc["services"][name]["restart_policy"] = "always"  # not a service field
    assert any(True for _ in _compose_validator().iter_errors(doc))
