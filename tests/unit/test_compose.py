"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); these checks keep
them correct."""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from pipeline.cli import build_parser
from pipeline.errors import ConfigError
from pipeline.settings import (
    DashboardSettings,
    GenesysSettings,
    KafkaSettings,
    ProducerSettings,
    RegistrySettings,
    ShutdownSettings,
    WorkerSettings,
)

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
    host_ports = {p.split(":")[-2] for p in services["kafka"]["ports"]}
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
    assert "127.0.0.1:8081:8081" in registry["ports"]


@pytest.mark.parametrize("name", ["kafka", "schema-registry"])
def test_every_service_has_a_healthcheck_and_restart_policy(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["healthcheck"]["test"]
    assert service["restart"] in {"unless-stopped", "always", "on-failure"}


# ----------------------------------------------------------------------------- project services
# The services built from the Dockerfile: each runs `pipeline <command>` (the image's ENTRYPOINT).

ROOT = COMPOSE.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE = "genesys-kafka-pipeline:local"
PROJECT_SERVICES = (
    "emulator",
    "schemas",
    "producer",
    "freshness-worker",
    "dashboard-worker",
    "wallboard",
)
SETTINGS_PREFIXES = ("GENESYS_", "KAFKA_", "SCHEMA_REGISTRY_", "PIPELINE_", "DASHBOARD_")
ANY_INTERFACE = {"0.0.0.0", "::", ""}
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
URL_RE = re.compile(r"\b(?:https?|wss?)://[^\s'\"]+")


def _args(service: dict[str, Any]) -> argparse.Namespace:
    command = service["command"]
    assert isinstance(command, list), "exec form: a list, so no shell splits it"
    return build_parser().parse_args([str(part) for part in command])


def _env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def _allowed_env(args: argparse.Namespace) -> set[str]:
    """What the subcommand reads: its settings classes' fields and what pipeline.cli reads."""
    classes: tuple[type[BaseSettings], ...]
    direct: set[str] = set()
    if args.command == "emulator":
        classes, direct = (), {"GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"}
    elif args.command == "wallboard":
        classes, direct = (), {"DASHBOARD_SECRET"}
    elif args.command == "schemas":
        classes = (RegistrySettings, ProducerSettings)
    elif args.command == "produce":
        classes = (GenesysSettings, KafkaSettings, RegistrySettings, ProducerSettings)
    elif args.command == "worker" and args.kind == "freshness":
        classes = (KafkaSettings, RegistrySettings, WorkerSettings)
    elif args.command == "worker":
        classes = (KafkaSettings, RegistrySettings, WorkerSettings, DashboardSettings)
    else:
        raise AssertionError(f"no container runs `pipeline {args.command}`")
    if args.command != "schemas":  # every long-running command reads its shutdown deadline
        classes = (*classes, ShutdownSettings)
    return direct.union(*(_env_names(cls) for cls in classes))


def _project_env(service: dict[str, Any]) -> dict[str, str]:
    return _env(service) if "environment" in service else {}


def _listen(name: str, services: dict[str, Any]) -> tuple[str, int]:
    """(bind host, port) a service serves on, from its own definition."""
    service = services[name]
    if name == "kafka":
        internal = _listeners(_env(service)["KAFKA_LISTENERS"])["INTERNAL"]
        return "", int(internal.rsplit(":", 1)[1])
    if name == "schema-registry":
        listener = urlsplit(_env(service)["SCHEMA_REGISTRY_LISTENERS"])
        assert listener.port is not None
        return listener.hostname or "", listener.port
    args = _args(service)
    if args.command in {"emulator", "wallboard"}:
        return args.host, args.port
    env = _subset(_project_env(service))
    if args.command == "produce":
        producer = ProducerSettings.model_validate(env)
        return producer.ops_host, producer.ops_port
    if args.command == "worker":
        worker = WorkerSettings.model_validate(env)
        return worker.ops_host, worker.ops_port
    raise AssertionError(f"{name} serves nothing")


def _subset(env: dict[str, str], prefix: str = "PIPELINE_") -> dict[str, str]:
    """The variables with ``prefix`` as settings field names."""
    return {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}


def _healthcheck_code(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list)
    assert test[:3] == ["CMD", "python", "-c"], f"python is what the image has (no curl): {test}"
    return str(test[3])


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction, rest in _dockerfile_instructions():
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, rest))
    return stages


def test_project_services_get_their_shutdown_deadline_before_sigkill(
    services: dict[str, Any],
) -> None:
    deadline = ShutdownSettings().shutdown_timeout_s
    for name in PROJECT_SERVICES:
        grace = services[name].get("stop_grace_period", "10s")  # Docker's default
        assert grace.endswith("s"), name
        assert float(grace.removesuffix("s")) > deadline, f"{name}: SIGKILL before the deadline"


def test_project_services_use_the_project_image(services: dict[str, Any]) -> None:
    for name in PROJECT_SERVICES:
        service = services[name]
        assert service["build"] in (".", {"context": "."}), name
        assert service["image"] == IMAGE, name
    built = {name for name, service in services.items() if "build" in service}
    assert built == set(PROJECT_SERVICES)


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_command_is_a_real_pipeline_subcommand(services: dict[str, Any], name: str) -> None:
    args = _args(services[name])  # argparse exits (SystemExit) on an unknown command or option
    assert args.command in {"emulator", "schemas", "produce", "worker", "wallboard"}
    file = getattr(args, "file", None)
    if file is not None:  # the subscription file: in the image via `COPY examples/ /app/examples/`
        assert file.parent == Path("/app/examples"), file
        assert (ROOT / "examples" / file.name).is_file(), file


def test_parsing_a_command_can_fail() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "freshnes", "/app/examples/subscription.yaml"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--bind", "0.0.0.0"])


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_environment_is_read_by_the_service(services: dict[str, Any], name: str) -> None:
    service = services[name]
    allowed = _allowed_env(_args(service))
    ours = {k for k in _project_env(service) if k.startswith(SETTINGS_PREFIXES)}
    assert ours <= allowed, f"{name} sets variables nothing reads: {sorted(ours - allowed)}"


def test_settings_values_validate(services: dict[str, Any]) -> None:
    """The values parse as the settings classes' types (e.g. ports are numbers)."""
    producer = _project_env(services["producer"])
    assert GenesysSettings(**_subset(producer, "GENESYS_")).has_credentials()
    ProducerSettings.model_validate(_subset(producer))
    for worker in ("freshness-worker", "dashboard-worker"):
        WorkerSettings.model_validate(_subset(_project_env(services[worker])))


def test_environment_check_can_fail() -> None:
    args = build_parser().parse_args(["worker", "freshness", "/app/examples/subscription.yaml"])
    assert "DASHBOARD_URL" not in _allowed_env(args)
    assert "PIPELINE_PARTITIONS" not in _allowed_env(args)  # a producer-only setting
    assert "KAFKA_BOOTSTRAP_SERVER" not in _allowed_env(args)


def _targets(services: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(service, variable, host, port) of every address a project service is told to reach."""
    found: list[tuple[str, str, str, int]] = []
    for name in PROJECT_SERVICES:
        for key, value in _project_env(services[name]).items():
            if key == "KAFKA_BOOTSTRAP_SERVERS":
                for server in value.split(","):
                    host, port = server.rsplit(":", 1)
                    found.append((name, key, host, int(port)))
            elif value.startswith(("http://", "https://", "ws://", "wss://")):
                url = urlsplit(value)
                assert url.hostname is not None
                assert url.port is not None, f"{name} {key}: name the port explicitly"
                found.append((name, key, url.hostname, url.port))
    return found


def test_addresses_are_compose_services_on_their_listening_ports(services: dict[str, Any]) -> None:
    targets = _targets(services)
    assert {(n, k) for n, k, _, _ in targets} >= {
        ("producer", "GENESYS_API_URL"),
        ("producer", "KAFKA_BOOTSTRAP_SERVERS"),
        ("producer", "SCHEMA_REGISTRY_URL"),
        ("schemas", "SCHEMA_REGISTRY_URL"),
        ("dashboard-worker", "DASHBOARD_URL"),
        ("dashboard-worker", "KAFKA_BOOTSTRAP_SERVERS"),
        ("freshness-worker", "KAFKA_BOOTSTRAP_SERVERS"),
    }
    for name, key, host, port in targets:
        assert host in services, f"{name} {key}: {host} is not a compose service"
        assert host not in LOOPBACK
        bind, listening = _listen(host, services)
        assert port == listening, f"{name} {key}: {host} listens on {listening}, not {port}"
        assert bind not in LOOPBACK, f"{host} binds {bind}: unreachable from {name}"
        assert host in _closure(services, name), f"{name} reaches {host} ({key}) before it starts"
    kafka_internal = _listeners(_env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])["INTERNAL"]
    for name, key, host, port in targets:
        if key == "KAFKA_BOOTSTRAP_SERVERS":
            assert f"{host}:{port}" == kafka_internal, f"{name}: the internal listener"


def is_required_variable(value: str) -> bool:
    """``${NAME:?message}`` (or ``${NAME?message}``): compose refuses to start without it."""
    return re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*:?\?[^}]*\}", value) is not None


def published_ports(services: dict[str, Any]) -> dict[str, list[str]]:
    """Every service's published ``ports`` entries."""
    return {name: list(s.get("ports", [])) for name, s in services.items() if s.get("ports")}


def test_every_published_port_is_bound_to_localhost(services: dict[str, Any]) -> None:
    ports = published_ports(services)
    assert set(ports) == {"kafka", "schema-registry", "wallboard"}
    for name, entries in ports.items():
        for entry in entries:
            assert isinstance(entry, str), f"{name}: write ports as 'host_ip:host:container'"
            assert entry.startswith("127.0.0.1:"), f"{name} publishes {entry} on every interface"
            assert entry.count(":") == 2


def test_port_binding_check_can_fail() -> None:
    doc = yaml.safe_load('services: {k: {ports: ["9092:9092"]}, r: {ports: ["0.0.0.0:1:1"]}}')
    for entry in (e for entries in published_ports(doc["services"]).values() for e in entries):
        assert not entry.startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("value", "required"),
    [
        ("${DASHBOARD_SECRET:?set it}", True),
        ("${DASHBOARD_SECRET?set it}", True),
        ("${DASHBOARD_SECRET:-change-me}", False),
        ("${DASHBOARD_SECRET}", False),
        ("change-me", False),
    ],
)
def test_required_variable_check(value: str, required: bool) -> None:
    assert is_required_variable(value) is required


def test_no_known_default_secret_anywhere() -> None:
    from pipeline.core.workers.push import KNOWN_DEFAULT_SECRETS

    text = COMPOSE.read_text()
    for secret in KNOWN_DEFAULT_SECRETS - {"secret", "x"}:
        assert secret not in text, f"docker-compose.yml holds the example secret {secret!r}"


def test_dashboard_url_is_the_wallboard_push_endpoint(services: dict[str, Any]) -> None:
    url = urlsplit(_project_env(services["dashboard-worker"])["DASHBOARD_URL"])
    assert (url.scheme, url.hostname, url.path) == ("http", "wallboard", "/api/push")
    assert "127.0.0.1:8088:8088" in services["wallboard"]["ports"]


def test_shared_secrets_and_credentials_agree(services: dict[str, Any]) -> None:
    pusher = _project_env(services["dashboard-worker"])["DASHBOARD_SECRET"]
    assert pusher == _project_env(services["wallboard"])["DASHBOARD_SECRET"]
    assert pusher.startswith("${DASHBOARD_SECRET"), "overridable from the shell or .env"
    assert is_required_variable(pusher), f"DASHBOARD_SECRET must have no default: {pusher}"
    emulator, producer = _project_env(services["emulator"]), _project_env(services["producer"])
    for key in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"):
        assert producer[key] == emulator[key], f"the producer logs in with the emulator's {key}"


def test_emulator_hands_out_socket_addresses_the_producer_can_reach(
    services: dict[str, Any],
) -> None:
    """connectUri is ws://<--host>:<--port>/channels/{id}: --host must be a reachable name."""
    args = _args(services["emulator"])
    api = urlsplit(_project_env(services["producer"])["GENESYS_API_URL"])
    assert args.host not in ANY_INTERFACE | LOOPBACK
    assert (args.host, args.port) == (api.hostname, api.port)
    assert services["emulator"].get("hostname", "emulator") == args.host
    assert "ports" not in services["emulator"], "its socket addresses only work inside the network"


@pytest.mark.parametrize(
    "name", ["emulator", "producer", "freshness-worker", "dashboard-worker", "wallboard"]
)
def test_healthcheck_probes_the_service_itself(services: dict[str, Any], name: str) -> None:
    service = services[name]
    code = _healthcheck_code(service)
    compile(code, f"{name} healthcheck", "exec")
    assert "$" not in code, "compose would interpolate it"
    urls = [urlsplit(u) for u in URL_RE.findall(code)]
    assert len(urls) == 1, code
    bind, port = _listen(name, services)
    assert urls[0].port == port
    if bind in ANY_INTERFACE:
        assert urls[0].hostname in LOOPBACK | {name}
    else:
        assert urls[0].hostname == bind, f"{name} listens only on {bind}"
    if name in {"producer", "freshness-worker", "dashboard-worker"}:
        assert urls[0].path == "/readyz"
    assert service["restart"] == "unless-stopped"


def _dependencies(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "long form: every dependency names its condition"
    return {target: spec["condition"] for target, spec in depends.items()}


def _closure(services: dict[str, Any], name: str) -> set[str]:
    """Every service ``name`` waits for, directly or through another."""
    seen: set[str] = set()
    todo = list(_dependencies(services[name]))
    while todo:
        target = todo.pop()
        if target not in seen:
            seen.add(target)
            todo.extend(_dependencies(services[target]))
    assert name not in seen, f"{name} depends on itself"
    return seen


def test_depends_on_conditions_are_valid(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in _dependencies(service).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"
                assert "healthcheck" not in services[target]
            else:
                assert condition == "service_started", condition


def test_startup_order(services: dict[str, Any]) -> None:
    assert _dependencies(services["schemas"]) == {"schema-registry": "service_healthy"}
    assert _dependencies(services["producer"]) == {
        "kafka": "service_healthy",
        "schema-registry": "service_healthy",
        "emulator": "service_healthy",
        "schemas": "service_completed_successfully",
    }
    for worker in ("freshness-worker", "dashboard-worker"):
        assert _dependencies(services[worker])["producer"] == "service_healthy"
    assert _dependencies(services["dashboard-worker"])["wallboard"] == "service_healthy"
    # The one-shot: a `restart: no` written unquoted would be YAML false, not "no".
    assert services["schemas"]["restart"] == "no"
    assert "healthcheck" not in services["schemas"]


def test_depends_on_check_can_fail() -> None:
    broken = {
        "a": {"depends_on": {"b": {"condition": "service_healthy"}}},
        "b": {"restart": "unless-stopped"},
    }
    with pytest.raises(AssertionError, match="no healthcheck"):
        test_depends_on_conditions_are_valid(broken)


# ----------------------------------------------------------------------------- the Dockerfile


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        assert stage[0][1].split()[0] == "python:3.11-slim"
    names = {stage[0][1].split()[-1].lower() for stage in stages[:-1]}
    copies = [rest for instruction, rest in stages[-1] if instruction == "COPY"]
    assert any(
        rest.split()[0].startswith("--from=") and rest.split()[0].split("=", 1)[1].lower() in names
        for rest in copies
    ), "the runtime stage copies the venv from the builder"


def test_dockerfile_runs_as_non_root() -> None:
    final = _stages()[-1]
    users = [rest.split(":")[0] for instruction, rest in final if instruction == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1] not in {"0", "root"}
    assert users[-1] == "10001"


def test_dockerfile_entrypoint_and_ports(services: dict[str, Any]) -> None:
    final = dict(_stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["pipeline"]
    assert json.loads(final["CMD"]) == ["--help"]
    exposed = {int(p.split("/")[0]) for p in final["EXPOSE"].split()}
    served = {_listen(name, services)[1] for name in PROJECT_SERVICES if name != "schemas"}
    assert served <= exposed
    env = final["ENV"]
    assert "PYTHONUNBUFFERED=1" in env


def test_runtime_image_has_no_local_or_dev_extras() -> None:
    text = " ".join(rest for _, rest in _dockerfile_instructions())
    assert "pip wheel --no-deps" in text
    for banned in ("[local]", "[dev]", "calfkit", ".[", "-e "):
        assert banned not in text, banned


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirement_name(text: str) -> str:
    return re.split(r"[\[<>=!~;\s]", text.strip(), maxsplit=1)[0].lower().replace("_", "-")


_PINNED_BY_A_DEPENDENCY = {"pydantic-core": "pydantic"}
"""Distributions imported directly that a core dependency pins exactly (always installed)."""


def test_runtime_image_provides_every_import_of_the_services() -> None:
    """Everything but pipeline.local (the Tansu-based stack) runs in the image: each third-party
    import must be a core dependency or installed explicitly by the Dockerfile."""
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    provided = {_requirement_name(r) for r in core}
    install = next(rest for _, rest in _dockerfile_instructions() if "pip install /wheels/" in rest)
    command = next(part for part in install.split("&&") if "pip install /wheels/" in part)
    extra = shlex.split(command.split("pip install", 1)[1])
    provided |= {_requirement_name(r) for r in extra if not r.startswith(("/", "-"))}
    provided |= set(_PINNED_BY_A_DEPENDENCY)
    distributions = importlib.metadata.packages_distributions()
    missing: dict[str, set[str]] = {}
    package = ROOT / "pipeline"
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "local":
            continue
        for module in _top_level_imports(path):
            if module in sys.stdlib_module_names or module in {"pipeline", "__future__"}:
                continue
            dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not dists & provided:
                missing.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported but not installed in the image: {missing}"


def test_dockerfile_copies_what_the_image_needs() -> None:
    final_copies = [rest for instruction, rest in _stages()[-1] if instruction == "COPY"]
    assert any(c.split()[-2:] == ["examples/", "/app/examples/"] for c in final_copies)
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".local", "tests"} <= ignored
    sources: set[str] = set()
    for instruction, rest in _dockerfile_instructions():
        if instruction == "COPY" and not rest.startswith("--from="):
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources.update(p.rstrip("/") for p in parts[:-1])
    assert {"pyproject.toml", "README.md", "pipeline", "schemas", "examples"} <= sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in ignored, f"{source} is copied but .dockerignore drops it"


def test_dockerfile_logs_json_by_default_and_the_cli_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.logs import select_logging

    env = dict(
        item.split("=", 1)
        for item in shlex.split(dict(_stages()[-1])["ENV"].replace("\\\n", " "))
        if "=" in item
    )
    assert env["PIPELINE_LOG_FORMAT"] == "json"
    choice = select_logging(None, None, env)
    assert choice.json_format
    assert choice.level == env.get("PIPELINE_LOG_LEVEL", "INFO").upper()


def test_the_producer_may_send_its_secret_to_the_compose_emulator(services: dict[str, Any]) -> None:
    # The emulator speaks plain http on the compose network: without the explicit allowance
    # the producer refuses to send the client secret there (and the stack never starts).
    env = _subset(_project_env(services["producer"]), "GENESYS_")
    GenesysSettings.model_validate(env).api_base(None, None)
    refused = {k: v for k, v in env.items() if k != "allow_plain_http"}
    with pytest.raises(ConfigError, match="http"):
        GenesysSettings.model_validate(refused).api_base(None, None)
