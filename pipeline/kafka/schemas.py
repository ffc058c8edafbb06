"""The Kafka contract's Avro schemas: where they are, what they map to, how they may evolve.

The Kafka contract (docs/architecture.md, "Kafka contract") is one Avro schema per topic suffix,
registered under ``<prefix>.<suffix>-value`` (TopicNameStrategy). :data:`CONTRACT` is the map
from topic suffix to schema file; add a line there when a topic joins the contract.

Schemas live in ``schemas/*.avsc`` at the repository root; the wheel carries the same folder as
``pipeline/_schemas`` (hatch ``force-include``). ``schemas/history/<name>.v<N>.avsc`` keeps
every released version of each schema. The evolution rule the repository enforces on them
(:func:`history_problems`, run by ``tests/unit/test_schema_contract.py``):

1. the newest history file equals the current schema: changing ``<name>.avsc`` means adding
   ``history/<name>.v<N+1>.avsc``, a copy of the new schema, in the same change;
2. every version is FULL compatible with every earlier one (transitive): the new schema reads
   everything an old one wrote (BACKWARD, what the registry enforces per subject) and readers
   still on an old schema read what the new one writes (FORWARD). In practice: add or remove
   only fields that have a default, never change a field's type or a record's name.

The registry itself is set to BACKWARD_TRANSITIVE (:mod:`pipeline.kafka.registry`); the
repository rule is stricter so that consumers pinned to an old reader schema (Java specific
records, Flink or ksqlDB tables) keep working across a producer upgrade.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import avro.errors
import avro.name
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from pipeline.errors import ConfigError, SchemaError

__all__ = [
    "CONTRACT",
    "DEFAULT_PREFIX",
    "HISTORY_DIR",
    "PRODUCER_TOPICS",
    "TOPIC_LEAVES",
    "SchemaSource",
    "evolution_problems",
    "history_problems",
    "history_versions",
    "load_schema",
    "parse_avro",
    "read_problems",
    "schema_dir",
    "schema_path",
    "schema_text",
    "subject_for",
    "topic_names",
]

log = logging.getLogger(__name__)

CONTRACT: dict[str, str] = {
    "metrics": "metric",
    "current": "metric",
    "audit": "audit",
    "dlq": "dead_letter",
    "freshness": "freshness",
}
"""Topic suffix → schema name (``schemas/<name>.avsc``). Extend it when a topic is added."""

TOPIC_LEAVES: Final = {"current": "current.v2"}
"""Suffixes whose topic name differs from the suffix: ``<prefix>.<leaf>``.

The changelog table moved to ``<prefix>.current.v2`` when its key became the row key
(docs/kafka-contract.md, "Changes"): the old ``<prefix>.current`` holds keys of another format
that no tombstone will ever delete, so the two must not share one compacted topic.
"""

PRODUCER_TOPICS: Final = ("metrics", "current", "audit", "dlq")
"""The suffixes the producer writes (the freshness worker writes ``freshness`` and ``audit``)."""

DEFAULT_PREFIX: Final = "genesys"
"""The topic prefix when none is configured: ``genesys.metrics`` ..."""

HISTORY_DIR: Final = "history"
"""Sub-folder of the schema folder holding every released version of every schema."""

_SUFFIX: Final = ".avsc"
_PACKAGE_DIR: Final = Path(__file__).resolve().parent.parent
# Kafka topic names: at most 249 characters of [a-zA-Z0-9._-] (kafka Topic.java).
_TOPIC_PART: Final = re.compile(r"[A-Za-z0-9._-]+")
_MAX_TOPIC_LENGTH: Final = 249

SchemaSource = Mapping[str, Any] | str
"""A schema as parsed JSON or as JSON text."""


# ---------------------------------------------------------------------------- finding and loading
def schema_dir() -> Path:
    """The folder holding this build's ``*.avsc`` files.

    The wheel's ``pipeline/_schemas`` wins when present: in an installed wheel the folder next to
    the package is ``site-packages``, where an unrelated ``schemas`` package could live. In a
    source checkout or an editable install it is the repository's ``schemas/``.

    Raises:
        SchemaError: neither folder exists (a broken install).
    """
    bundled = _PACKAGE_DIR / "_schemas"
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE_DIR.parent / "schemas"
    if checkout.is_dir():
        return checkout
    raise SchemaError(
        f"no Avro schemas found: looked for {bundled} (installed wheel) and {checkout} "
        "(source checkout)"
    )


def schema_path(name: str, directory: Path | None = None) -> Path:
    """The file of schema ``name`` (``metric`` → ``<schema_dir>/metric.avsc``)."""
    return (directory or schema_dir()) / f"{name}{_SUFFIX}"


def load_schema(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Read schema ``name`` as parsed JSON (a fresh dict on every call: mutate it freely).

    Args:
        name: the schema's file name without ``.avsc`` (``metric``, ``audit``, ``dead_letter``).
        directory: the schema folder; :func:`schema_dir` by default.

    Raises:
        SchemaError: the file is missing, is not JSON, or is not a JSON object.
    """
    return _read_json(schema_path(name, directory))


def schema_text(name: str, directory: Path | None = None) -> str:
    """The schema to register: compact JSON, keys in file order, docs and defaults kept.

    Deterministic for a given file, so the registry sees the same text from every build of
    the same schema (registries compare schemas in canonical form anyway).

    Raises:
        SchemaError: as :func:`load_schema`.
    """
    return json.dumps(load_schema(name, directory), separators=(",", ":"), ensure_ascii=False)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"schema file {path} does not exist") from None
    except OSError as exc:
        raise SchemaError(f"schema file {path} cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"schema file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SchemaError(f"schema file {path} must hold a JSON object (an Avro record)")
    return data


# ---------------------------------------------------------------------------- topics and subjects
def topic_names(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Topic suffix → full topic name for every topic of the contract.

    Raises:
        ConfigError: ``prefix`` cannot start a Kafka topic name.
    """
    if not _TOPIC_PART.fullmatch(prefix):
        raise ConfigError(
            f"topic prefix {prefix!r} is not valid: use letters, digits, '.', '_' and '-'"
        )
    topics = {suffix: f"{prefix}.{TOPIC_LEAVES.get(suffix, suffix)}" for suffix in CONTRACT}
    longest = max(topics.values(), key=len)
    if len(longest) > _MAX_TOPIC_LENGTH:
        raise ConfigError(
            f"topic prefix {prefix!r} is too long: {longest!r} exceeds {_MAX_TOPIC_LENGTH} chars"
        )
    return topics


def subject_for(topic: str) -> str:
    """The value subject of ``topic`` under TopicNameStrategy: ``<topic>-value``."""
    return f"{topic}-value"


# ---------------------------------------------------------------------------- compatibility
def parse_avro(schema: SchemaSource) -> avro.schema.Schema:
    """Parse a schema with the Apache ``avro`` package (the one behind the compatibility check).

    Raises:
        SchemaError: not a valid Avro schema.
    """
    try:
        data = json.loads(schema) if isinstance(schema, str) else schema
        with warnings.catch_warnings():
            # A logical type avro does not know is read as its base type, as Confluent does.
            warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
            return avro.schema.make_avsc_object(data, avro.name.Names())
    except (ValueError, TypeError, avro.errors.AvroException) as exc:
        raise SchemaError(f"not a valid Avro schema: {exc}") from exc


def read_problems(reader: SchemaSource, writer: SchemaSource) -> list[str]:
    """What stops ``reader`` from reading data written with ``writer``; empty when it can.

    Uses Apache Avro's ``ReaderWriterCompatibilityChecker``, the rule Confluent-compatible
    registries apply (BACKWARD: reader = new schema, writer = each old one).

    Raises:
        SchemaError: either schema is not valid Avro.
    """
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro is untyped
    result = checker.get_compatibility(parse_avro(reader), parse_avro(writer))
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    kinds = ", ".join(sorted(k.value.replace("_", " ") for k in result.incompatibilities))
    where = ", ".join(sorted(result.locations))
    what = "; ".join(sorted(str(m) for m in result.messages))
    return [f"{kinds} at {where}: {what}"]


def evolution_problems(new: SchemaSource, old: SchemaSource) -> list[str]:
    """Why ``old`` may not evolve into ``new`` under the repository's rule (FULL); empty if fine.

    BACKWARD: the new schema must read what the old one wrote (a new field needs a default;
    no type changes). FORWARD: readers still on the old schema must read what the new one
    writes (a removed field must have had a default).

    Raises:
        SchemaError: either schema is not valid Avro.
    """
    problems = [f"new schema cannot read old data: {p}" for p in read_problems(new, old)]
    problems += [f"old readers cannot read new data: {p}" for p in read_problems(old, new)]
    return problems


# ---------------------------------------------------------------------------- history guard
def history_versions(name: str, directory: Path | None = None) -> list[tuple[int, Path]]:
    """Released versions of schema ``name`` as ``(N, history/<name>.vN.avsc)``, oldest first."""
    folder = (directory or schema_dir()) / HISTORY_DIR
    pattern = re.compile(rf"{re.escape(name)}\.v([1-9][0-9]*){re.escape(_SUFFIX)}")
    found = []
    for path in folder.glob(f"{name}.v*{_SUFFIX}"):
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def history_problems(name: str, directory: Path | None = None) -> list[str]:
    """Check schema ``name`` against its released versions; one line per problem.

    The rule (see the module docstring): history is ``v1..vN`` without gaps; the current schema
    equals ``vN`` (a change comes with its new history file); every version is FULL
    compatible with every earlier version, and so is the current schema.

    Args:
        name: the schema's name (``metric``).
        directory: the schema folder; :func:`schema_dir` by default.
    """
    folder = directory or schema_dir()
    try:
        current = load_schema(name, folder)
        parse_avro(current)
    except SchemaError as exc:
        return [f"{name}{_SUFFIX}: {exc}"]
    versions = history_versions(name, folder)
    copy_hint = f"copy {name}{_SUFFIX} to {HISTORY_DIR}/{name}.v{len(versions) + 1}{_SUFFIX}"
    if not versions:
        return [f"{name}{_SUFFIX} has no released version in {HISTORY_DIR}/: {copy_hint}"]
    numbers = [n for n, _ in versions]
    problems: list[str] = []
    if numbers != list(range(1, len(numbers) + 1)):
        found = ", ".join(f"v{n}" for n in numbers)
        problems.append(f"{HISTORY_DIR}/{name}.v*{_SUFFIX} must be v1..vN without gaps: {found}")
    released: list[tuple[int, dict[str, Any]]] = []
    for number, path in versions:
        try:
            released.append((number, _read_json(path)))
        except SchemaError as exc:
            problems.append(str(exc))
    for index, (number, schema) in enumerate(released):
        for earlier, old in released[:index]:
            problems += [
                f"{HISTORY_DIR}/{name}.v{number}{_SUFFIX} breaks v{earlier}: {p}"
                for p in _safe_evolution(schema, old)
            ]
    newest, newest_schema = released[-1] if released else (0, None)
    if newest_schema is not None and current != newest_schema:
        problems.append(
            f"{name}{_SUFFIX} differs from {HISTORY_DIR}/{name}.v{newest}{_SUFFIX}, the newest "
            f"released version: a schema change needs a new history file ({copy_hint})"
        )
        for number, old in released:
            problems += [
                f"{name}{_SUFFIX} breaks v{number}: {p}" for p in _safe_evolution(current, old)
            ]
    return problems


def _safe_evolution(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    try:
        return evolution_problems(new, old)
    except SchemaError as exc:
        return [str(exc)]
