"""deploy/ (Kustomize manifests, Strimzi topics, Kafka Connect sinks) cannot be applied here (no
cluster, no kubectl or kustomize); these checks parse the files and hold them to the real CLI
parser, settings models, topic contract and Avro schema."""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.cli.redaction import settings_models
from pipeline.core.subscription.spec import load_spec
from pipeline.kafka.admin import TOPIC_CONFIG
from pipeline.kafka.schemas import topic_names
from pipeline.settings import (
    DashboardSettings,
    GenesysSettings,
    KafkaSettings,
    ProducerSettings,
    RegistrySettings,
    WorkerSettings,
)
from tests.unit.test_compose import SETTINGS_PREFIXES, _allowed_env, _subset

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "example"
CONNECT = DEPLOY / "connect"
SUBSCRIPTION_PATH = Path("/etc/pipeline/subscription.yaml")
SUBSCRIPTION_CONFIGMAP = "genesys-pipeline-subscription"
CONFIG_NAME = "genesys-pipeline-config"
SECRET_NAME = "genesys-pipeline-secrets"
SECRET_KEYS = {
    "GENESYS_CLIENT_ID",
    "GENESYS_CLIENT_SECRET",
    "DASHBOARD_SECRET",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    "SCHEMA_REGISTRY_BEARER_TOKEN",
}
TLS_SECRET = "genesys-pipeline-tls"
TLS_MOUNT = Path("/etc/pipeline-tls")
KAFKA_CONNECTION = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "KAFKA_SSL_KEY_PASSWORD",
    "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM",
    "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
    "KAFKA_SASL_OAUTHBEARER_SCOPE",
}
REGISTRY_CONNECTION = {
    "SCHEMA_REGISTRY_URL",
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    "SCHEMA_REGISTRY_BEARER_TOKEN",
    "SCHEMA_REGISTRY_SSL_CA_LOCATION",
    "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
    "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
}
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
WORKLOAD_KINDS = {"StatefulSet", "Deployment", "Job"}
SHELL_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


# ----------------------------------------------------------------------------- loading


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kustomization(folder: Path) -> dict[str, Any]:
    doc = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _base_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for resource in _kustomization(BASE)["resources"]:
        objects.extend(_docs(BASE / resource))
    return objects


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _base_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} definitions"
    return found[0]


def _config_data() -> dict[str, str]:
    return {k: str(v) for k, v in _one("ConfigMap", CONFIG_NAME)["data"].items()}


def _secret_example() -> dict[str, Any]:
    (secret,) = _docs(BASE / "secret.example.yaml")
    return secret


def _workloads() -> list[dict[str, Any]]:
    return [o for o in _base_objects() if o["kind"] in WORKLOAD_KINDS]


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) of every container the base runs."""
    return [(w, c) for w in _workloads() for c in _pod_spec(w)["containers"]]


def _ids(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    return [f"{w['metadata']['name']}/{c['name']}" for w, c in pairs]


CONTAINERS = _containers()
CONTAINER_IDS = _ids(CONTAINERS)
CLIENTS = [(w, c) for w, c in CONTAINERS if c["name"] != "wallboard"]
"""The pipeline's own Kafka/registry clients (the reference wallboard is neither)."""
CLIENT_IDS = _ids(CLIENTS)


# ----------------------------------------------------------------------------- checks


def _env_value(item: dict[str, Any], config: dict[str, str], index: int = 0) -> str | None:
    """An env entry's value as the pod would see it (pod name and index: samples); None for
    an optional ConfigMap key the map does not hold (the variable is then not set)."""
    if "value" in item:
        return str(item["value"])
    source = item["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        assert ref["name"] == CONFIG_NAME, ref
        if ref.get("optional") is True and ref["key"] not in config:
            return None
        assert ref["key"] in config, f"{ref['key']} is not a key of {CONFIG_NAME}"
        return config[ref["key"]]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        assert ref["name"] == SECRET_NAME, ref
        assert ref["key"] in SECRET_KEYS, ref
        example = _secret_example()["stringData"]
        if ref.get("optional") is True and ref["key"] not in example:
            return None  # as the example Secret is filled in: the variable is not set
        return str(example[ref["key"]])
    path = source["fieldRef"]["fieldPath"]
    return {POD_INDEX: str(index), "metadata.name": f"pod-{index}"}[path]


def _env(container: dict[str, Any], index: int = 0) -> dict[str, str]:
    items = container.get("env", [])
    names = [item["name"] for item in items]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    assert "envFrom" not in container, "pick keys one by one: no unread variables"
    config = _config_data()
    values = {item["name"]: _env_value(item, config, index) for item in items}
    return {name: value for name, value in values.items() if value is not None}


def _argv(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The arguments after ``pipeline``: the image's ENTRYPOINT, or an ``sh -c 'exec pipeline'``."""
    command = container.get("command")
    if command is None:
        args = container["args"]
        assert isinstance(args, list), "exec form"
        return [str(a) for a in args]
    assert command[:2] == ["sh", "-c"], command
    assert len(command) == 3, command
    assert "args" not in container
    script = str(command[2])
    assert script.startswith("exec pipeline "), "exec: pipeline is PID 1 and gets SIGTERM"
    for braced, bare in SHELL_VAR.findall(script):
        assert (braced or bare) in env, f"{braced or bare} is not set in the container"
    expanded = SHELL_VAR.sub(lambda m: env[m.group(1) or m.group(2)], script)
    return shlex.split(expanded)[2:]


def _parse(container: dict[str, Any], index: int = 0) -> argparse.Namespace:
    return build_parser().parse_args(_argv(container, _env(container, index)))


def _check_env_is_read(container: dict[str, Any]) -> None:
    allowed = _allowed_env(_parse(container))
    _env(container)  # every reference resolves
    names = {item["name"] for item in container.get("env", [])}
    ours = {k for k in names if k.startswith(SETTINGS_PREFIXES)}
    assert ours <= allowed, f"variables nothing reads: {sorted(ours - allowed)}"


def _ops_port(container: dict[str, Any]) -> int:
    args = _parse(container)
    env = _subset(_env(container))
    if args.command == "produce":
        return ProducerSettings.model_validate(env).ops_port
    assert args.command == "worker", args.command
    return WorkerSettings.model_validate(env).ops_port


def _check_shards(statefulset: dict[str, Any]) -> None:
    (container,) = _pod_spec(statefulset)["containers"]
    shards = {e["name"]: e.get("value") for e in container["env"]}["SHARDS"]
    assert int(statefulset["spec"]["replicas"]) == int(shards), "replicas != SHARDS"


def _check_topics(topics: list[dict[str, Any]], prefix: str) -> None:
    names = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in topics}
    assert len(names) == len(topics), "a topic is defined twice"
    expected = topic_names(prefix)
    assert set(names) == set(expected.values())
    for topic in topics:
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
    current = names[expected["current"]]["spec"]["config"]
    assert current["cleanup.policy"] == "compact"
    for suffix, config in TOPIC_CONFIG.items():  # the services create them the same way
        deployed = {k: str(v) for k, v in names[expected[suffix]]["spec"]["config"].items()}
        assert deployed.items() >= config.items(), suffix
    for suffix in ("metrics", "audit", "dlq", "freshness"):
        config = names[expected[suffix]]["spec"].get("config", {})
        assert "compact" not in str(config.get("cleanup.policy", "delete")), suffix


def _metric_fields() -> dict[str, Any]:
    schema = json.loads((ROOT / "schemas" / "metric.avsc").read_text())
    return {f["name"]: f["type"] for f in schema["fields"]}


def _check_sink(config: dict[str, str]) -> None:
    fields = _metric_fields()
    assert config["value.converter"] == AVRO_CONVERTER
    url = urlsplit(config["value.converter.schema.registry.url"])
    assert url.scheme in {"http", "https"}, url
    assert url.hostname, url
    assert config["key.converter"] == STRING_CONVERTER, "keys are plain UTF-8 strings"
    topics = set(config["topics"].split(","))
    assert topics <= set(topic_names("genesys").values()), topics
    if config.get("pk.mode") == "record_key":  # the key string is the one primary-key column
        (name,) = config["pk.fields"].split(",")
        assert name not in fields, f"pk.fields: {name} would clash with a MetricRecord field"
    elif "pk.fields" in config:
        for name in config["pk.fields"].split(","):
            assert name in fields, f"pk.fields: {name} is not a MetricRecord field"
            assert fields[name] == "string", f"{name} must be a non-null key"
    if "timestamp.field" in config:
        name = config["timestamp.field"]
        assert name in fields, f"timestamp.field: {name} is not a MetricRecord field"
        assert fields[name] == {"type": "long", "logicalType": "timestamp-millis"}, name


def _sink(name: str) -> dict[str, str]:
    doc = json.loads((CONNECT / name).read_text())
    assert set(doc) == {"name", "config"}, "the Connect REST API's POST /connectors body"
    return {k: str(v) for k, v in doc["config"].items()}


def _check_security(workload: dict[str, Any]) -> None:
    pod = _pod_spec(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001, "the Dockerfile's USER"
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx.get("runAsUser", 10001) == 10001
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert not ctx["capabilities"].get("add")


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_yaml_file_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs
    if path.name != "subscription.yaml":
        for doc in docs:
            assert doc.get("apiVersion"), path
            assert doc.get("kind"), path


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.json")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_json_file_parses(path: Path) -> None:
    assert json.loads(path.read_text())


def test_there_is_something_to_check() -> None:
    assert len(list(DEPLOY.rglob("*.yaml"))) >= 10
    assert {p.name for p in CONNECT.glob("*.json")} == {
        "jdbc-sink.json",
        "jdbc-current-sink.json",
        "s3-sink.json",
    }
    assert (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "overlay"])
def test_kustomization_resources_exist(folder: Path) -> None:
    kustomization = _kustomization(folder)
    assert kustomization["kind"] == "Kustomization"
    for resource in kustomization["resources"]:
        target = (folder / resource).resolve()
        assert target.exists(), resource
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), resource
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (folder / file.split("=")[-1]).is_file(), file


def test_the_example_secret_is_not_applied() -> None:
    assert "secret.example.yaml" not in _kustomization(BASE)["resources"]
    secret = _secret_example()
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", SECRET_NAME)
    # The example holds one consistent authentication (SCRAM, registry user info); every
    # other key a workload may read is named in its comments.
    assert set(secret["stringData"]) <= SECRET_KEYS
    text = (BASE / "secret.example.yaml").read_text()
    for key in SECRET_KEYS - set(secret["stringData"]):
        assert f"#   {key}" in text, f"{key} is not explained in the example Secret"
    assert not any(o["kind"] == "Secret" for o in _base_objects()), "secrets stay out of git"


def test_subscription_is_the_example_and_valid() -> None:
    (generator,) = _kustomization(BASE)["configMapGenerator"]
    assert generator["name"] == SUBSCRIPTION_CONFIGMAP
    copy_ = BASE / "subscription.yaml"
    assert generator["files"] == ["subscription.yaml"]
    assert copy_.read_text() == (ROOT / "examples" / "subscription.yaml").read_text()
    load_spec(copy_)  # raises SubscriptionError when invalid


# ----------------------------------------------------------------------------- containers


def test_every_service_is_deployed() -> None:
    commands = {tuple(_argv(c, _env(c))[:2]) for _, c in CONTAINERS}
    assert commands == {
        ("produce", str(SUBSCRIPTION_PATH)),
        ("worker", "freshness"),
        ("worker", "dashboard"),
        ("schemas", "register"),
        ("wallboard", "--host"),
    }
    kinds = {w["metadata"]["name"]: w["kind"] for w in _workloads()}
    assert kinds["genesys-producer"] == "StatefulSet"
    assert kinds["genesys-schemas-register"] == "Job"


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_command_parses_with_the_real_cli(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    args = _parse(container)  # argparse exits (SystemExit) on an unknown command or option
    assert container["image"] == "genesys-kafka-pipeline"
    file = getattr(args, "file", None)
    if file is None:
        return
    assert file == SUBSCRIPTION_PATH
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(workload)["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(file.parent)]
    assert mounts[name]["readOnly"] is True
    configmap = volumes[name]["configMap"]
    assert configmap["name"] == SUBSCRIPTION_CONFIGMAP
    assert [i["path"] for i in configmap["items"]] == [file.name]


def test_producer_shards_parse_for_every_pod() -> None:
    statefulset = _one("StatefulSet", "genesys-producer")
    (container,) = _pod_spec(statefulset)["containers"]
    replicas = int(statefulset["spec"]["replicas"])
    for index in range(replicas):
        assert _parse(container, index).shard == (index, replicas)
    with pytest.raises(SystemExit):  # an index past SHARDS is refused: the check can fail
        _parse(container, replicas)


def test_parsing_can_fail() -> None:
    broken = {"args": ["worker", "freshnes", str(SUBSCRIPTION_PATH)]}
    with pytest.raises(SystemExit):
        _parse(broken)
    unset = {
        "command": ["sh", "-c", "exec pipeline produce f --shard ${SHARD}/2"],
        "env": [],
    }
    with pytest.raises(AssertionError, match="SHARD is not set"):
        _parse(unset)


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_environment_is_read_by_the_service(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    _check_env_is_read(container)


def test_environment_check_can_fail() -> None:
    (_, worker) = next((w, c) for w, c in CONTAINERS if c["name"] == "freshness-worker")
    broken = copy.deepcopy(worker)
    broken["env"].append({"name": "PIPELINE_PARTITIONS", "value": "3"})  # producer only
    with pytest.raises(AssertionError, match="PIPELINE_PARTITIONS"):
        _check_env_is_read(broken)
    broken["env"][-1] = {
        "name": "X",
        "valueFrom": {"configMapKeyRef": {"name": CONFIG_NAME, "key": "NOPE"}},
    }
    with pytest.raises(AssertionError, match="NOPE"):
        _env(broken)


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_settings_values_validate(
    workload: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> None:
    """The values (config map included) parse as the settings classes' types."""
    env = _mounted(_env(container), tmp_path)
    GenesysSettings(**_subset(env, "GENESYS_"))  # an unknown region fails
    KafkaSettings(**_subset(env, "KAFKA_"))
    RegistrySettings(**_subset(env, "SCHEMA_REGISTRY_"))
    DashboardSettings(**_subset(env, "DASHBOARD_"))
    args = _parse(container)
    if args.command == "produce":
        producer = ProducerSettings.model_validate(_subset(env))
        assert producer.replication == 3, "production: three replicas"
        assert GenesysSettings(**_subset(env, "GENESYS_")).has_credentials()
    elif args.command == "worker":
        WorkerSettings.model_validate(_subset(env))
        if args.kind == "dashboard":
            assert DashboardSettings(**_subset(env, "DASHBOARD_")).secret.get_secret_value()


def test_config_map_keys_are_all_used() -> None:
    used = {
        e["valueFrom"]["configMapKeyRef"]["key"]
        for _, c in CONTAINERS
        for e in c.get("env", [])
        if "configMapKeyRef" in e.get("valueFrom", {})
    }
    assert used >= set(_config_data()), f"keys nothing reads: {set(_config_data()) - used}"
    assert topic_names(_config_data()["PIPELINE_TOPIC_PREFIX"])


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_probes_and_scrape_port_are_the_ops_port(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    args = _parse(container)
    if args.command == "schemas":
        assert workload["kind"] == "Job"
        assert "livenessProbe" not in container
        return
    if args.command == "wallboard":  # no ops server: its state API answers while it serves
        assert args.host == "0.0.0.0", "reachable through its Service"
        assert args.port in {p["containerPort"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/api/state", "port": args.port}
        return
    port = _ops_port(container)
    assert port in {p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["port"] == port
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_probe_check_can_fail() -> None:
    (_, producer) = next((w, c) for w, c in CONTAINERS if c["name"] == "producer")
    broken = copy.deepcopy(producer)
    for item in broken["env"]:
        if item["name"] == "PIPELINE_OPS_PORT":
            item["value"] = "9200"
    assert _ops_port(broken) == 9200 != producer["livenessProbe"]["httpGet"]["port"]
    broken["env"] = [e for e in broken["env"] if e["name"] != "PIPELINE_OPS_PORT"]
    assert _ops_port(broken) == 9100, "the settings default"


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_resources_are_bounded(workload: dict[str, Any], container: dict[str, Any]) -> None:
    for side in ("requests", "limits"):
        assert set(container["resources"][side]) == {"cpu", "memory"}, side


@pytest.mark.parametrize("workload", _workloads(), ids=lambda w: w["metadata"]["name"])
def test_runs_as_non_root_read_only(workload: dict[str, Any]) -> None:
    _check_security(workload)


def test_security_check_can_fail() -> None:
    broken = copy.deepcopy(_one("StatefulSet", "genesys-producer"))
    _pod_spec(broken)["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    with pytest.raises(AssertionError):
        _check_security(broken)


# ----------------------------------------------------------------------------- the producer


def test_statefulset_replicas_equal_shards() -> None:
    _check_shards(_one("StatefulSet", "genesys-producer"))


def test_overlay_patches_replicas_and_shards_together() -> None:
    patches = [yaml.safe_load(p["patch"]) for p in _kustomization(OVERLAY)["patches"]]
    (statefulset,) = [p for p in patches if p["kind"] == "StatefulSet"]
    _check_shards(statefulset)
    broken = copy.deepcopy(statefulset)
    broken["spec"]["replicas"] = 4
    with pytest.raises(AssertionError, match="replicas != SHARDS"):
        _check_shards(broken)
    (config,) = [p for p in patches if p["kind"] == "ConfigMap"]
    assert config["metadata"]["name"] == CONFIG_NAME
    assert set(config["data"]) <= set(_config_data())
    assert GenesysSettings(region=config["data"]["GENESYS_REGION"]).region
    images = _kustomization(OVERLAY)["images"]
    assert [i["name"] for i in images] == ["genesys-kafka-pipeline"]


def test_shard_index_instance_and_headless_service() -> None:
    statefulset = _one("StatefulSet", "genesys-producer")
    (container,) = _pod_spec(statefulset)["containers"]
    refs = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in container["env"]}
    assert refs["SHARD_INDEX"]["fieldPath"] == POD_INDEX
    assert refs["PIPELINE_INSTANCE"]["fieldPath"] == "metadata.name"
    service = _one("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()


def test_disruption_budgets_cover_producer_and_workers() -> None:
    budgets = [o for o in _base_objects() if o["kind"] == "PodDisruptionBudget"]
    covered: set[str] = set()
    for workload in _workloads():
        # The wallboard is one replica holding its state in memory: a budget protects nothing.
        if workload["kind"] == "Job" or workload["metadata"]["name"] == "genesys-wallboard":
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, workload["metadata"]["name"]
        assert matching[0]["spec"]["maxUnavailable"] == 1
        covered.add(workload["metadata"]["name"])
    assert covered == {
        "genesys-producer",
        "genesys-freshness-worker",
        "genesys-dashboard-worker",
    }


# ----------------------------------------------------------------------------- topics, sinks


def _topics() -> list[dict[str, Any]]:
    return [o for o in _base_objects() if o["kind"] == "KafkaTopic"]


def test_kafka_topics_are_the_contract() -> None:
    _check_topics(_topics(), _config_data()["PIPELINE_TOPIC_PREFIX"])
    metrics = next(t for t in _topics() if t["spec"]["topicName"].endswith(".metrics"))
    assert metrics["spec"]["partitions"] == 12
    replication = int(_config_data()["PIPELINE_REPLICATION"])
    assert {t["spec"]["replicas"] for t in _topics()} == {replication}


def test_topic_check_can_fail() -> None:
    topics = copy.deepcopy(_topics())
    current = next(t for t in topics if t["spec"]["topicName"].endswith(".current.v2"))
    current["spec"]["config"]["cleanup.policy"] = "delete"
    with pytest.raises(AssertionError):
        _check_topics(topics, "genesys")
    current["spec"]["config"]["cleanup.policy"] = "compact"
    current["spec"]["config"]["segment.ms"] = 604800000  # not what the services create
    with pytest.raises(AssertionError, match="current"):
        _check_topics(topics, "genesys")
    with pytest.raises(AssertionError):
        _check_topics(_topics()[:-1], "genesys")


def test_jdbc_sink_upserts_on_event_id() -> None:
    config = _sink("jdbc-sink.json")
    _check_sink(config)
    assert config["connector.class"] == "io.confluent.connect.jdbc.JdbcSinkConnector"
    assert (config["insert.mode"], config["pk.mode"]) == ("upsert", "record_value")
    assert config["pk.fields"] == "event_id"
    assert config["auto.create"] == "true"


def test_jdbc_current_sink_follows_the_table() -> None:
    config = _sink("jdbc-current-sink.json")
    _check_sink(config)
    assert config["topics"] == topic_names("genesys")["current"]
    assert (config["insert.mode"], config["pk.mode"]) == ("upsert", "record_key")
    assert config["delete.enabled"] == "true", "tombstones delete rows"
    assert config["errors.tolerance"] == "none", "a skipped record would leave a wrong row"


def test_s3_sink_partitions_by_event_time() -> None:
    config = _sink("s3-sink.json")
    _check_sink(config)
    assert config["connector.class"] == "io.confluent.connect.s3.S3SinkConnector"
    assert config["format.class"].rsplit(".", 1)[1] in {"ParquetFormat", "AvroFormat"}
    assert config["partitioner.class"].endswith(".TimeBasedPartitioner")
    assert config["timestamp.extractor"] == "RecordField"
    assert config["timestamp.field"] == "event_time"


def test_sink_check_can_fail() -> None:
    config = _sink("jdbc-sink.json")
    for key, value in (
        ("pk.fields", "eventid"),
        ("pk.fields", "qualifier"),  # nullable: no primary key
        ("value.converter", "org.apache.kafka.connect.json.JsonConverter"),
        ("topics", "genesys.metric"),
    ):
        with pytest.raises(AssertionError):
            _check_sink({**config, key: value})
    with pytest.raises(AssertionError):
        _check_sink({**_sink("s3-sink.json"), "timestamp.field": "ingest"})
    with pytest.raises(AssertionError, match="clash"):
        _check_sink({**_sink("jdbc-current-sink.json"), "pk.fields": "metric"})


# ----------------------------------------------------------------------------- secrets, TLS


def _secret_settings() -> set[str]:
    """The variables of every SecretStr field of the settings models."""
    names: set[str] = set()
    for cls in settings_models():
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for name, field in cls.model_fields.items():
            if "SecretStr" in repr(field.annotation):
                names.add(f"{prefix}{name.upper()}")
    return names


def _sources(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["name"]: item.get("valueFrom", {"value": item.get("value")})
        for item in container.get("env", [])
    }


def _check_secrets_from_secret(container: dict[str, Any]) -> None:
    for name, source in _sources(container).items():
        if name in _secret_settings() or name in SECRET_KEYS:
            assert set(source) == {"secretKeyRef"}, f"{name} must come from a Secret: {source}"
            assert source["secretKeyRef"]["name"] == SECRET_NAME


@pytest.mark.parametrize(("workload", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_secrets_come_only_from_the_secret(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    _check_secrets_from_secret(container)


def test_secret_check_can_fail() -> None:
    (_, worker) = next((w, c) for w, c in CONTAINERS if c["name"] == "dashboard-worker")
    broken = copy.deepcopy(worker)
    for item in broken["env"]:
        if item["name"] == "KAFKA_SASL_PASSWORD":
            item.pop("valueFrom")
            item["value"] = "hunter2"
    with pytest.raises(AssertionError, match="KAFKA_SASL_PASSWORD"):
        _check_secrets_from_secret(broken)


def test_the_config_map_holds_no_secret() -> None:
    assert not set(_config_data()) & (_secret_settings() | SECRET_KEYS)
    for key in _config_data():
        assert not re.search(r"PASSWORD|SECRET|TOKEN|USER_INFO", key), key


@pytest.mark.parametrize(("workload", "container"), CLIENTS, ids=CLIENT_IDS)
def test_clients_read_every_connection_setting(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    allowed = _allowed_env(_parse(container))
    names = set(_sources(container))
    if "KAFKA_BOOTSTRAP_SERVERS" in allowed:
        assert names >= KAFKA_CONNECTION, sorted(KAFKA_CONNECTION - names)
    else:
        assert not names & KAFKA_CONNECTION
    assert "SCHEMA_REGISTRY_URL" in allowed, "every command here asks the registry"
    assert names >= REGISTRY_CONNECTION, sorted(REGISTRY_CONNECTION - names)


@pytest.mark.parametrize(("workload", "container"), CLIENTS, ids=CLIENT_IDS)
def test_certificates_come_from_a_secret_volume(
    workload: dict[str, Any], container: dict[str, Any]
) -> None:
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(workload)["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(TLS_MOUNT)]
    assert mounts[name]["readOnly"] is True
    assert volumes[name]["secret"]["secretName"] == TLS_SECRET
    assert volumes[name]["secret"]["defaultMode"] & 0o007 == 0, "not world-readable"
    for key, path in _config_data().items():
        if key.endswith("_LOCATION"):
            assert Path(path).parent == TLS_MOUNT, f"{key}={path} is not in the TLS volume"


def test_example_secrets_are_not_applied() -> None:
    resources = _kustomization(BASE)["resources"]
    (tls,) = _docs(BASE / "tls-secret.example.yaml")
    assert "tls-secret.example.yaml" not in resources
    assert (tls["kind"], tls["metadata"]["name"]) == ("Secret", TLS_SECRET)
    files = {Path(v).name for k, v in _config_data().items() if k.endswith("_LOCATION")}
    assert files <= set(tls["stringData"])


def _mounted(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with each ``*_LOCATION`` file made in ``folder`` (a pod's TLS Secret volume)."""
    out = dict(env)
    for key, path in env.items():
        if key.endswith("_LOCATION"):
            (folder / Path(path).name).write_text("certificate or key\n")
            out[key] = str(folder / Path(path).name)
    return out


def test_base_talks_tls_with_sasl(tmp_path: Path) -> None:
    config = _mounted({**_config_data(), **_secret_example()["stringData"]}, tmp_path)
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"].startswith("SCRAM-SHA-")
    assert config["KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"] == "https"
    assert urlsplit(config["SCHEMA_REGISTRY_URL"]).scheme == "https"
    KafkaSettings(**_subset(config, "KAFKA_"))


# ----------------------------------------------------------------------------- network policy


def _policies() -> dict[str, dict[str, Any]]:
    assert "networkpolicy.yaml" in _kustomization(OVERLAY)["resources"]
    docs = _docs(OVERLAY / "networkpolicy.yaml")
    assert {d["kind"] for d in docs} == {"NetworkPolicy"}
    return {d["metadata"]["name"]: d for d in docs}


def _policy_for(workload: dict[str, Any]) -> dict[str, Any]:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    found = [
        p
        for p in _policies().values()
        if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(found) == 1, workload["metadata"]["name"]
    return found[0]


def _egress_ports(policy: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


def _check_policy(workload: dict[str, Any], policy: dict[str, Any] | None = None) -> None:
    policy = _policy_for(workload) if policy is None else policy
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "deny by default"
    (container,) = _pod_spec(workload)["containers"]
    args = _parse(container)
    ingress = policy["spec"].get("ingress", [])
    if args.command == "wallboard":
        _check_wallboard_policy(policy, args.port)
        return
    if args.command == "schemas":
        assert ingress == []
    else:
        assert [p["port"] for rule in ingress for p in rule["ports"]] == [_ops_port(container)]
    egress = _egress_ports(policy)
    assert {("UDP", 53), ("TCP", 53)} <= egress, "DNS"
    assert ("TCP", urlsplit(_config_data()["SCHEMA_REGISTRY_URL"]).port) in egress
    kafka_port = int(_config_data()["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    wants_kafka = args.command != "schemas"
    assert (("TCP", kafka_port) in egress) is wants_kafka
    wants_443 = args.command == "produce" or getattr(args, "kind", "") == "dashboard"
    assert (("TCP", 443) in egress) is wants_443
    dashboard = urlsplit(_config_data()["DASHBOARD_URL"]).port
    wants_wallboard = getattr(args, "kind", "") == "dashboard"
    assert (("TCP", dashboard) in egress) is wants_wallboard, "the base's DASHBOARD_URL"


def _check_wallboard_policy(policy: dict[str, Any], port: int) -> None:
    """The wallboard takes pushes from the dashboard worker on its port and calls nobody."""
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [port]
    sources = [f["podSelector"]["matchLabels"] for f in rule["from"] if "podSelector" in f]
    assert {"app.kubernetes.io/name": "genesys-dashboard-worker"} in sources
    assert policy["spec"].get("egress", []) == [], "no egress"


@pytest.mark.parametrize("workload", _workloads(), ids=lambda w: w["metadata"]["name"])
def test_network_policy_allows_only_what_the_workload_needs(workload: dict[str, Any]) -> None:
    _check_policy(workload)


def test_network_policy_check_can_fail() -> None:
    freshness = _one("Deployment", "genesys-freshness-worker")
    policies = _policies()
    broken = copy.deepcopy(policies["genesys-freshness-worker"])
    broken["spec"]["egress"].append({"to": [], "ports": [{"protocol": "TCP", "port": 443}]})
    with pytest.raises(AssertionError):
        _check_policy(freshness, broken)


# ----------------------------------------------------------------------------- the dashboard


def _check_dashboard_url(url: str, services: list[dict[str, Any]]) -> None:
    """DASHBOARD_URL names a Service of the base (same namespace), on one of its ports."""
    parts = urlsplit(url)
    assert parts.path == "/api/push", url
    by_name = {s["metadata"]["name"]: s for s in services}
    assert parts.hostname in by_name, f"{parts.hostname} is no Service of the base"
    ports = {p["port"] for p in by_name[parts.hostname]["spec"]["ports"]}
    assert parts.port in ports, f"{parts.hostname} does not serve port {parts.port}"


def test_the_dashboard_url_is_the_base_wallboard_service() -> None:
    services = [o for o in _base_objects() if o["kind"] == "Service"]
    _check_dashboard_url(_config_data()["DASHBOARD_URL"], services)
    wallboard = _one("Deployment", "genesys-wallboard")
    (service,) = [s for s in services if s["metadata"]["name"] == "genesys-wallboard"]
    labels = wallboard["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    with pytest.raises(AssertionError, match="no Service"):
        _check_dashboard_url("http://wallboard.genesys-pipeline.svc:8088/api/push", services)
