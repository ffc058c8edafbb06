"""What the local schema registry's API speaks: its errors, versions, references and schemas.

Plain values, Confluent's JSON shapes and error codes; no state and no I/O. The state that
holds them is :mod:`pipeline.local.registry_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "LATEST",
    "RegisteredVersion",
    "RegistryError",
    "SchemaReference",
    "StoredSchema",
    "invalid_schema",
    "parse_version",
    "subject_not_found",
    "version_not_found",
]

LATEST: Final = -1
"""Version number standing for "latest", as in Confluent's API."""
_MAX_VERSION: Final = 2**31 - 1


class RegistryError(Exception):
    """A request the registry refuses, with Confluent's HTTP status and error code.

    Args:
        http_status: HTTP status of the answer (404, 409, 422...).
        error_code: Confluent error code (40401 subject not found, 42201 invalid schema...).
        message: Human-readable message for the error body.
    """

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """Return the Confluent error body ``{"error_code": N, "message": "..."}``."""
        return {"error_code": self.error_code, "message": self.message}


def subject_not_found(subject: str) -> RegistryError:
    """404/40401: no such subject (or none with a version to show)."""
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: int) -> RegistryError:
    """404/40402: no such version of the subject."""
    return RegistryError(404, 40402, f"Version {version} not found.")


def invalid_schema(detail: str) -> RegistryError:
    """422/42201: a schema (or its references) the registry cannot accept."""
    return RegistryError(422, 42201, f"Invalid schema: {detail}")


def parse_version(text: str) -> int:
    """Parse a version path segment: ``latest``/``-1`` or 1..2^31-1, else 422/42202."""
    if text == "latest":
        return LATEST
    try:
        version = int(text)
    except ValueError:
        version = 0
    if version == LATEST or 1 <= version <= _MAX_VERSION:
        return version
    msg = (
        f"The specified version '{text}' is not a valid version id. Allowed values are "
        f'between [1, {_MAX_VERSION}] and the string "latest"'
    )
    raise RegistryError(422, 42202, msg)


@dataclass(frozen=True, slots=True)
class SchemaReference:
    """A named type imported from another subject's version."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        """Return the Confluent JSON shape."""
        return {"name": self.name, "subject": self.subject, "version": self.version}

    @classmethod
    def from_json(cls, data: object) -> SchemaReference:
        """Build from the Confluent JSON shape; raise 422/42201 if malformed."""
        if not isinstance(data, Mapping):
            raise invalid_schema(f"reference must be an object, got {data!r}")
        name, subject, version = data.get("name"), data.get("subject"), data.get("version")
        if not (isinstance(name, str) and isinstance(subject, str) and isinstance(version, int)):
            raise invalid_schema(f"reference needs name, subject and version: {dict(data)}")
        return cls(name, subject, version)


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """A schema under its global id."""

    schema_id: int
    schema: str
    schema_type: str = "AVRO"
    references: tuple[SchemaReference, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the body of ``GET /schemas/ids/{id}`` (schemaType omitted for AVRO)."""
        out: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [ref.to_json() for ref in self.references]
        return out


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One version of one subject, as ``GET /subjects/{s}/versions/{v}`` shows it."""

    subject: str
    version: int
    stored: StoredSchema

    @property
    def schema_id(self) -> int:
        """Global id of this version's schema."""
        return self.stored.schema_id

    def to_json(self) -> dict[str, Any]:
        """Return the Confluent JSON shape."""
        head = {"subject": self.subject, "version": self.version, "id": self.schema_id}
        return head | self.stored.to_json()
