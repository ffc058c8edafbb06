"""The Avro schemas of the Kafka contract: they parse, follow the house rules, and evolve safely.

The evolution guard is ``pipeline.kafka.schemas.history_problems``: ``schemas/history`` keeps
every released version, the current schema must equal the newest one (a change comes with its
new ``history/<name>.v<N+1>.avsc``), and every version must be FULL compatible with every
earlier one. The tests at the bottom prove the guard fails on the changes it must refuse.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest

from pipeline.errors import ConfigError, SchemaError
from pipeline.kafka.registry_client import redact_url
from pipeline.kafka.schemas import (
    CONTRACT,
    HISTORY_DIR,
    evolution_problems,
    history_problems,
    history_versions,
    load_schema,
    read_problems,
    schema_dir,
    schema_path,
    schema_text,
    subject_for,
    topic_names,
)

__all__: list[str] = []

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMESPACE = "io.github.genesys_kafka_pipeline.v1"
CURRENT = sorted(path.stem for path in REPO_SCHEMAS.glob("*.avsc"))
RECORD_NAMES = {
    "metric": "MetricRecord",
    "audit": "AuditRecord",
    "dead_letter": "DeadLetterRecord",
}
# Field names that hold an instant: they must be timestamp-millis.
TIMESTAMP_NAMES = ("at",)
TIMESTAMP_SUFFIXES = ("_time", "_at", "_start", "_end")


def fields_of(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of a record schema, nested records included, as (dotted path, field)."""

    def walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, list):
            for branch in node:
                yield from walk(branch, path)
        elif isinstance(node, dict) and node.get("type") == "record":
            for field in node["fields"]:
                yield f"{path}{field['name']}", field
                yield from walk(field["type"], f"{path}{field['name']}.")
        elif isinstance(node, dict) and node.get("type") in ("array", "map"):
            yield from walk(node.get("items", node.get("values")), path)

    yield from walk(schema, "")


def non_null(field_type: Any) -> list[Any]:
    """The branches of a field type other than null."""
    branches = field_type if isinstance(field_type, list) else [field_type]
    return [b for b in branches if b != "null"]


# ---------------------------------------------------------------------------- where schemas are
def test_schema_dir_is_the_repository_folder_in_a_checkout() -> None:
    assert schema_dir() == REPO_SCHEMAS


def test_every_contract_schema_has_a_file_and_a_first_release() -> None:
    for name in set(CONTRACT.values()):
        assert schema_path(name).is_file(), name
        assert history_versions(name)[0][0] == 1, name


def test_schema_text_is_compact_json_of_the_file() -> None:
    text = schema_text("metric")

    assert json.loads(text) == json.loads(schema_path("metric").read_text(encoding="utf-8"))
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def test_load_schema_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"nothing\.avsc does not exist"):
        load_schema("nothing", tmp_path)


def test_load_schema_refuses_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "broken.avsc").write_text("{not json", encoding="utf-8")

    with pytest.raises(SchemaError, match=r"broken\.avsc is not valid JSON"):
        load_schema("broken", tmp_path)


# ---------------------------------------------------------------------------- topics and subjects
def test_topic_names_cover_the_contract() -> None:
    assert topic_names("genesys") == {
        "metrics": "genesys.metrics",
        "current": "genesys.current.v2",
        "audit": "genesys.audit",
        "dlq": "genesys.dlq",
        "freshness": "genesys.freshness",
    }
    assert CONTRACT["metrics"] == CONTRACT["current"] == "metric"


def test_subjects_follow_topic_name_strategy() -> None:
    assert subject_for("genesys.metrics") == "genesys.metrics-value"


@pytest.mark.parametrize("prefix", ["", "has space", "slash/y", "x" * 250])
def test_topic_names_refuse_a_bad_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError, match="topic prefix"):
        topic_names(prefix)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("https://bob:s3cret@registry.example:443/sr", "https://registry.example:443/sr"),
        ("http://a:x@h1:1, http://h2:2", "http://h1:1,http://h2:2"),
    ],
)
def test_registry_urls_lose_their_user_info_in_messages(url: str, safe: str) -> None:
    assert redact_url(url) == safe


# ---------------------------------------------------------------------------- every current schema
def test_the_repository_has_the_contract_schemas() -> None:
    assert set(CONTRACT.values()) <= set(CURRENT)


@pytest.mark.parametrize("name", CURRENT)
def test_schema_parses_with_fastavro_and_avro(name: str) -> None:
    fastavro.parse_schema(load_schema(name))
    avro.schema.parse(schema_text(name))


@pytest.mark.parametrize("name", CURRENT)
def test_schema_record_name_and_namespace(name: str) -> None:
    schema = load_schema(name)
    expected = RECORD_NAMES.get(name, "".join(p.title() for p in name.split("_")) + "Record")

    assert (schema["type"], schema["name"], schema["namespace"]) == ("record", expected, NAMESPACE)
    assert schema.get("doc"), f"{name}: the record needs a doc"


@pytest.mark.parametrize("name", CURRENT)
def test_every_field_has_a_doc(name: str) -> None:
    missing = [path for path, field in fields_of(load_schema(name)) if not field.get("doc")]

    assert missing == []


@pytest.mark.parametrize("name", CURRENT)
def test_every_nullable_field_defaults_to_null(name: str) -> None:
    wrong = [
        path
        for path, field in fields_of(load_schema(name))
        if isinstance(field["type"], list)
        and "null" in field["type"]
        and (field["type"][0] != "null" or "default" not in field or field["default"] is not None)
    ]

    assert wrong == []


@pytest.mark.parametrize("name", CURRENT)
def test_timestamps_are_timestamp_millis(name: str) -> None:
    wrong = []
    for path, field in fields_of(load_schema(name)):
        branches = non_null(field["type"])
        logical = [b for b in branches if isinstance(b, dict) and "logicalType" in b]
        looks_like_instant = field["name"] in TIMESTAMP_NAMES or field["name"].endswith(
            TIMESTAMP_SUFFIXES
        )
        if looks_like_instant and branches != [{"type": "long", "logicalType": "timestamp-millis"}]:
            wrong.append(f"{path}: an instant must be long/timestamp-millis")
        for branch in logical:
            if branch["logicalType"].startswith(("timestamp", "local-timestamp", "time-")) and (
                branch != {"type": "long", "logicalType": "timestamp-millis"}
            ):
                wrong.append(f"{path}: use timestamp-millis, not {branch['logicalType']}")

    assert wrong == []


@pytest.mark.parametrize("name", CURRENT)
def test_schema_reads_data_of_every_released_version(name: str) -> None:
    versions = history_versions(name)

    assert versions, f"{name}: no history/{name}.v1.avsc"
    for number, path in versions:
        old = json.loads(path.read_text(encoding="utf-8"))
        assert read_problems(load_schema(name), old) == [], f"{name} vs v{number}"
        assert evolution_problems(load_schema(name), old) == [], f"{name} vs v{number}"


@pytest.mark.parametrize("name", CURRENT)
def test_schema_passes_the_history_guard(name: str) -> None:
    assert history_problems(name) == []


# ---------------------------------------------------------------------------- the guard can fail
def with_fields(schema: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``schema`` with other fields."""
    return {**schema, "fields": fields}


def add_required_field(schema: dict[str, Any]) -> dict[str, Any]:
    new = {"name": "site", "type": "string", "doc": "A new field without a default."}
    return with_fields(schema, [*schema["fields"], new])


def add_optional_field(schema: dict[str, Any]) -> dict[str, Any]:
    new = {"name": "site", "type": ["null", "string"], "default": None, "doc": "Optional."}
    return with_fields(schema, [*schema["fields"], new])


def remove_required_field(schema: dict[str, Any]) -> dict[str, Any]:
    return with_fields(schema, [f for f in schema["fields"] if f["name"] != "entity_id"])


def change_field_type(schema: dict[str, Any]) -> dict[str, Any]:
    return with_fields(
        schema,
        [{**f, "type": "long"} if f["name"] == "entity_id" else f for f in schema["fields"]],
    )


def rename_record(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "name": "MetricRecordV2"}


Change = Callable[[dict[str, Any]], dict[str, Any]]
BREAKING: list[tuple[Change, str]] = [
    (add_required_field, "new schema cannot read old data: reader field missing default value"),
    (remove_required_field, "old readers cannot read new data: reader field missing default"),
    (change_field_type, "type mismatch"),
    (rename_record, "name mismatch"),
]


@pytest.mark.parametrize(("change", "message"), BREAKING, ids=lambda v: getattr(v, "__name__", ""))
def test_evolution_check_refuses_a_breaking_change(change: Change, message: str) -> None:
    old = load_schema("metric")

    assert message in " | ".join(evolution_problems(change(old), old))


def test_evolution_check_accepts_an_optional_field_and_removing_it_again() -> None:
    old = load_schema("metric")

    assert evolution_problems(add_optional_field(old), old) == []
    assert evolution_problems(old, add_optional_field(old)) == []


def test_registry_rule_alone_lets_a_removed_required_field_through() -> None:
    """Why the guard checks both directions: BACKWARD alone accepts a removed field."""
    old = load_schema("metric")

    assert read_problems(remove_required_field(old), old) == []
    assert read_problems(old, remove_required_field(old)) != []


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A scratch copy of the repository's schema folder."""
    return Path(shutil.copytree(REPO_SCHEMAS, tmp_path / "schemas"))


def release(folder: Path, name: str, schema: dict[str, Any], *, history: bool = True) -> None:
    """Make ``schema`` the current ``name``, and (``history``) record it as the next version."""
    text = json.dumps(schema, indent=2)
    (folder / f"{name}.avsc").write_text(text, encoding="utf-8")
    if history:
        number = len(history_versions(name, folder)) + 1
        (folder / HISTORY_DIR / f"{name}.v{number}.avsc").write_text(text, encoding="utf-8")


def next_version(folder: Path, name: str) -> int:
    """The number the next release of ``name`` gets."""
    return len(history_versions(name, folder)) + 1


def test_guard_accepts_a_compatible_change_with_its_history_file(schemas: Path) -> None:
    new = next_version(schemas, "metric")
    release(schemas, "metric", add_optional_field(load_schema("metric", schemas)))

    assert [n for n, _ in history_versions("metric", schemas)] == list(range(1, new + 1))
    assert history_problems("metric", schemas) == []


def test_guard_refuses_a_compatible_change_without_a_history_file(schemas: Path) -> None:
    release(schemas, "metric", add_optional_field(load_schema("metric", schemas)), history=False)

    problems = history_problems("metric", schemas)

    assert len(problems) == 1
    assert "needs a new history file" in problems[0]
    assert "history/metric.v2.avsc" in problems[0]


@pytest.mark.parametrize(("change", "message"), BREAKING, ids=lambda v: getattr(v, "__name__", ""))
def test_guard_refuses_a_breaking_change_even_with_a_history_file(
    schemas: Path, change: Change, message: str
) -> None:
    new = next_version(schemas, "metric")
    release(schemas, "metric", change(load_schema("metric", schemas)))

    problems = history_problems("metric", schemas)

    assert problems
    assert any(p.startswith(f"history/metric.v{new}.avsc breaks v1: ") for p in problems)
    assert all(p.startswith(f"history/metric.v{new}.avsc breaks v") for p in problems)
    assert message in " | ".join(problems)


def test_guard_checks_every_released_version_not_just_the_last(schemas: Path) -> None:
    broken = next_version(schemas, "metric")
    release(schemas, "metric", remove_required_field(add_optional_field(load_schema("metric"))))
    # v<broken> drops entity_id (FORWARD break against v1); the next release equals it: still
    # broken against v1, but not against v<broken>.
    release(schemas, "metric", load_schema("metric", schemas))

    problems = history_problems("metric", schemas)

    assert any(p.startswith(f"history/metric.v{broken + 1}.avsc breaks v1:") for p in problems)
    assert not any(f"breaks v{broken}:" in p for p in problems)


def test_guard_refuses_gaps_in_history(schemas: Path) -> None:
    (schemas / HISTORY_DIR / "audit.v1.avsc").rename(schemas / HISTORY_DIR / "audit.v2.avsc")

    assert history_problems("audit", schemas) == [
        "history/audit.v*.avsc must be v1..vN without gaps: v2"
    ]


def test_guard_wants_a_first_release(schemas: Path) -> None:
    (schemas / HISTORY_DIR / "audit.v1.avsc").unlink()

    assert history_problems("audit", schemas) == [
        "audit.avsc has no released version in history/: copy audit.avsc to history/audit.v1.avsc"
    ]


def test_guard_reports_an_unparseable_schema(schemas: Path) -> None:
    release(schemas, "audit", {"type": "record", "name": "AuditRecord"}, history=False)

    [problem] = history_problems("audit", schemas)

    assert problem.startswith("audit.avsc: not a valid Avro schema")
