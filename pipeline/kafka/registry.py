"""The Kafka contract in a Confluent-compatible schema registry: register it, check it, require it.

Operators run ``pipeline schemas register`` (:func:`register_contract`) once per release; the
producer never auto-registers. At start it calls :func:`require_contract`, which refuses with
one line per problem when a subject is missing or its latest version is not exactly the schema
this build writes; ``pipeline schemas check`` (:func:`pipeline.services.schemas.check`, over
:func:`inspect_contract`) prints the same problems.

For each topic of :data:`pipeline.kafka.schemas.CONTRACT` the subject is ``<topic>-value``
(TopicNameStrategy) and its compatibility level is BACKWARD_TRANSITIVE (FULL_TRANSITIVE, being
stricter, is kept when an operator chose it). Compatibility of this build's schema with what is
registered is computed here with Apache Avro's checker against every registered version, not
asked of the registry: the registry's answer depends on the subject's level (``NONE`` says yes
to anything).

Every failure is a :class:`~pipeline.errors.SchemaError` with a specific message; the registry
URL in messages has its user-info (``user:password@``) removed. The client and its failures:
:mod:`pipeline.kafka.registry_client`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from pipeline.errors import SchemaError
from pipeline.kafka.registry_client import (
    SUBJECT_NOT_FOUND,
    describe,
    lookup_version,
    raise_unless,
    redact_url,
    registry_client,
    subject_level,
)
from pipeline.kafka.schemas import (
    CONTRACT,
    read_problems,
    schema_text,
    subject_for,
    topic_names,
)

__all__ = [
    "ACCEPTED_LEVELS",
    "COMPATIBILITY",
    "RegisteredSubject",
    "SubjectStatus",
    "inspect_contract",
    "register_contract",
    "require_contract",
]

log = logging.getLogger(__name__)

COMPATIBILITY: Final = "BACKWARD_TRANSITIVE"
"""The level :func:`register_contract` sets on every subject of the contract."""

ACCEPTED_LEVELS: Final = frozenset({"BACKWARD_TRANSITIVE", "FULL_TRANSITIVE"})
"""Levels at least as strict as :data:`COMPATIBILITY`; anything else is a warning."""

_REGISTER_FIX: Final = "run `pipeline schemas register`"


@dataclass(frozen=True, slots=True)
class RegisteredSubject:
    """One subject after :func:`register_contract`.

    Attributes:
        topic: the Kafka topic (``genesys.metrics``).
        subject: its value subject (``genesys.metrics-value``).
        schema_name: the schema file's name (``metric``).
        version: the subject version holding this build's schema.
        schema_id: the registry-wide schema id (what the wire format carries).
        created: True when this call registered the version, False when it already existed.
        compatibility: the subject's compatibility level after the call.
    """

    topic: str
    subject: str
    schema_name: str
    version: int
    schema_id: int
    created: bool
    compatibility: str


@dataclass(frozen=True, slots=True)
class SubjectStatus:
    """What the registry holds for one subject, compared with this build.

    Attributes:
        topic, subject, schema_name: as in :class:`RegisteredSubject`.
        version, schema_id: where this build's schema is registered under the subject, if it is.
        latest_version: the subject's latest version, if the subject exists.
        compatibility: the level that applies to the subject (its own or the global one).
        problems: why the producer must not start (one line each, without the subject).
        warnings: what is wrong but does not stop the producer.
    """

    topic: str
    subject: str
    schema_name: str
    version: int | None
    schema_id: int | None
    latest_version: int | None
    compatibility: str | None
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def is_ok(self) -> bool:
        """True when the latest version is this build's schema and nothing warns."""
        return not self.problems and not self.warnings


# ---------------------------------------------------------------------------- public API
def register_contract(
    url: str, prefix: str, *, client_config: Mapping[str, Any] | None = None
) -> list[RegisteredSubject]:
    """Set each subject to BACKWARD_TRANSITIVE and register this build's schema under it.

    Idempotent: a schema already registered under a subject is reported as existing, with the
    same version and id. Every subject is attempted even when one fails.

    Args:
        url: the schema registry URL (comma-separated URLs are tried in turn).
        prefix: the topic prefix (``genesys``).
        client_config: extra ``SchemaRegistryClient`` settings (``basic.auth.user.info``,
            ``ssl.ca.location``, ``timeout``, ``max.retries`` ...).

    Returns:
        One entry per topic of the contract, in :data:`CONTRACT` order.

    Raises:
        SchemaError: the registry is unreachable, refused access, or refused a schema (one line
            per refused subject).
    """
    registered: list[RegisteredSubject] = []
    failures: list[str] = []
    with registry_client(url, client_config) as client:
        for topic, name in _contract_topics(prefix):
            subject = subject_for(topic)
            try:
                registered.append(_register_one(client, url, topic, subject, name))
            except SchemaRegistryError as exc:
                failures.append(f"{subject}: {_refusal(exc, name)}")
    for entry in registered:
        log.info(
            "%s %s version %d id %d (%s)",
            "registered" if entry.created else "already registered",
            entry.subject,
            entry.version,
            entry.schema_id,
            entry.compatibility,
        )
    if failures:
        raise SchemaError(
            f"schema registry {redact_url(url)} refused part of the contract:\n"
            + "\n".join(failures)
        )
    return registered


def inspect_contract(
    url: str, prefix: str, *, client_config: Mapping[str, Any] | None = None
) -> list[SubjectStatus]:
    """Compare every subject of the contract in the registry with this build's schemas.

    Args:
        url, prefix, client_config: as in :func:`register_contract`.

    Returns:
        One status per topic of the contract, in :data:`CONTRACT` order.

    Raises:
        SchemaError: the registry is unreachable or refused access.
    """
    with registry_client(url, client_config) as client:
        return [_inspect_one(client, topic, name) for topic, name in _contract_topics(prefix)]


def require_contract(
    url: str,
    prefix: str,
    *,
    client_config: Mapping[str, Any] | None = None,
    suffixes: Collection[str] | None = None,
) -> dict[str, int]:
    """The schema ids the producer writes with, once the registry holds exactly this contract.

    Warnings (a compatibility level weaker than BACKWARD_TRANSITIVE) are logged, not raised:
    they matter to whoever registers the next version, not to this producer.

    Args:
        url, prefix, client_config: as in :func:`register_contract`.
        suffixes: only the topics the caller writes (``PRODUCER_TOPICS`` …); all by default.

    Returns:
        Topic → id of the schema this build writes to it (looked up under its subject).

    Raises:
        SchemaError: the registry is unreachable, or any subject is missing or does not hold
            this build's schema as its latest version; the message has one line per problem.
    """
    statuses = inspect_contract(url, prefix, client_config=client_config)
    if suffixes is not None:
        wanted = {topic_names(prefix)[suffix] for suffix in suffixes}
        statuses = [s for s in statuses if s.topic in wanted]
    for status in statuses:
        for warning in status.warnings:
            log.warning("%s: %s", status.subject, warning)
    problems = [f"{s.subject}: {p}" for s in statuses for p in s.problems]
    if problems:
        raise SchemaError(
            f"schema registry {redact_url(url)} does not hold the schemas this build writes:\n"
            + "\n".join(problems)
        )
    ids: dict[str, int] = {}
    for status in statuses:
        if status.schema_id is None:  # cannot happen without a problem line; be explicit anyway
            raise SchemaError(f"{status.subject}: this build's schema id is unknown")
        ids[status.topic] = status.schema_id
    return ids


# ---------------------------------------------------------------------------- per subject
def _contract_topics(prefix: str) -> list[tuple[str, str]]:
    topics = topic_names(prefix)
    return [(topics[suffix], name) for suffix, name in CONTRACT.items()]


def _schema(name: str) -> Schema:
    return Schema(schema_text(name), "AVRO")


def _refusal(exc: SchemaRegistryError, name: str) -> str:
    if exc.http_status_code == 409:
        return (
            f"{name}.avsc is incompatible with a version already registered under this subject "
            f"({exc.error_message}); register it under a new topic or migrate deliberately"
        )
    if exc.http_status_code == 422:
        return f"the registry rejects {name}.avsc: {exc.error_message}"
    return describe(exc)


def _register_one(
    client: SchemaRegistryClient, url: str, topic: str, subject: str, name: str
) -> RegisteredSubject:
    level, own = subject_level(client, subject)
    if not (own and level in ACCEPTED_LEVELS):
        client.set_compatibility(subject, COMPATIBILITY)
        level = COMPATIBILITY
    schema = _schema(name)
    found = lookup_version(client, subject, schema)
    created = found is None
    if found is None:
        client.register_schema(subject, schema)
        # A registry may answer a registration with the id only: look the version up.
        found = lookup_version(client, subject, schema)
        if found is None:
            raise SchemaError(
                f"schema registry {redact_url(url)} accepted {name}.avsc under {subject} but "
                "cannot find it there afterwards"
            )
    version, schema_id = found
    return RegisteredSubject(topic, subject, name, version, schema_id, created, level)


def _inspect_one(client: SchemaRegistryClient, topic: str, name: str) -> SubjectStatus:
    subject = subject_for(topic)
    schema = _schema(name)
    problems: list[str] = []
    try:
        latest = client.get_latest_version(subject).version or 0
    except SchemaRegistryError as exc:
        raise_unless(exc, SUBJECT_NOT_FOUND)
        problems.append(f"not registered: {_REGISTER_FIX}")
        return SubjectStatus(topic, subject, name, None, None, None, None, tuple(problems), ())
    found = lookup_version(client, subject, schema)
    if found is None:
        problems += _unregistered_problems(client, subject, name, schema, latest)
    elif found[0] != latest:
        problems.append(
            f"latest version {latest} is not the schema this build writes (this build's "
            f"{name}.avsc is version {found[0]}): a newer contract is registered; run a build "
            "that writes it"
        )
    level, own = subject_level(client, subject)
    warnings: list[str] = []
    if level not in ACCEPTED_LEVELS:
        where = "the subject's level" if own else "the registry's global default"
        warnings.append(
            f"compatibility is {level} ({where}), weaker than {COMPATIBILITY}: {_REGISTER_FIX}"
        )
    version, schema_id = found if found is not None else (None, None)
    return SubjectStatus(
        topic, subject, name, version, schema_id, latest, level, tuple(problems), tuple(warnings)
    )


def _unregistered_problems(
    client: SchemaRegistryClient, subject: str, name: str, schema: Schema, latest: int
) -> list[str]:
    """This build's schema is not under ``subject``: is it a compatible successor?"""
    incompatible: list[str] = []
    for version in client.get_versions(subject):
        registered = client.get_version(subject, version).schema
        try:
            why = read_problems(schema.schema_str or "", registered.schema_str or "")
        except SchemaError as exc:
            why = [f"registered version {version} cannot be parsed here ({exc})"]
        incompatible += [f"version {version}: {w}" for w in why]
    if incompatible:
        return [
            f"this build's {name}.avsc is not registered and cannot read data written with the "
            f"registered schema (latest version {latest}); {'; '.join(incompatible)}"
        ]
    return [
        f"this build writes a newer {name}.avsc that is not registered yet (it can read every "
        f"registered version, latest {latest}): {_REGISTER_FIX}"
    ]
