"""Pure state of the local, Confluent-compatible Avro schema registry.

A local stand-in for tests and the demo; production points ``SCHEMA_REGISTRY_URL`` at a real
registry. This module decides and never does I/O: subjects hold versions, each version points at
a global schema id, and the same schema (compared in canonical form, with its references) gets
the same id in every subject, as in Confluent Schema Registry. Compatibility is checked for real
with the Apache ``avro`` package's reader/writer checker
(:mod:`~pipeline.local.registry_compatibility`). Failures raise
:class:`~pipeline.local.registry_model.RegistryError` carrying Confluent's HTTP status and error
code. ``to_data``/``from_data`` turn the state into
plain JSON-ready data and back; the HTTP shell (``registry_server``) owns files and sockets.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import avro.errors
import avro.name
import avro.schema

from pipeline.local.registry_compatibility import (
    Compatibility,
    CompatibilityReport,
    check_compatibility,
)
from pipeline.local.registry_model import (
    LATEST,
    RegisteredVersion,
    RegistryError,
    SchemaReference,
    StoredSchema,
    invalid_schema,
    subject_not_found,
    version_not_found,
)

__all__ = ["RegistryState"]

log = logging.getLogger(__name__)

_DATA_FORMAT: Final = 1

_Key = tuple[str, str, tuple[SchemaReference, ...]]
"""Identity of a schema: (schemaType, canonical JSON, references)."""


@dataclass(slots=True)
class _Version:
    version: int
    schema_id: int
    deleted: bool = False


class RegistryState:
    """Subjects, versions, global ids and compatibility config of the local registry.

    ``revision`` counts changes, so a shell can persist after each request that made one.
    """

    def __init__(self) -> None:
        self.revision = 0
        self._schemas: dict[int, StoredSchema] = {}
        self._ids_by_key: dict[_Key, int] = {}
        self._subjects: dict[str, list[_Version]] = {}
        self._parsed: dict[int, avro.schema.Schema] = {}
        self._keys: dict[int, _Key] = {}
        self._global = Compatibility.BACKWARD
        self._subject_config: dict[str, Compatibility] = {}
        self._next_id = 1

    # ------------------------------------------------------------------ reading
    def subjects(self, *, deleted: bool = False, deleted_only: bool = False) -> list[str]:
        """Subjects with a live version; ``deleted`` adds soft-deleted ones."""
        out = []
        for subject, rows in self._subjects.items():
            live = any(not v.deleted for v in rows)
            if (not live) if deleted_only else (live or deleted):
                out.append(subject)
        return sorted(out)

    def versions(
        self, subject: str, *, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        """Version numbers of ``subject``; raise 40401 if it has none to show."""
        rows = self._subjects.get(subject, [])
        out = [v.version for v in rows if (v.deleted if deleted_only else deleted or not v.deleted)]
        if not out and not (rows and (deleted or deleted_only)):
            raise subject_not_found(subject)
        return out

    def get_version(
        self, subject: str, version: int, *, deleted: bool = False
    ) -> RegisteredVersion:
        """Return one version (``LATEST`` for the newest); raise 40401/40402."""
        row = self._find(subject, version, deleted=deleted)
        return RegisteredVersion(subject, row.version, self._schemas[row.schema_id])

    def schema_by_id(self, schema_id: int) -> StoredSchema:
        """Return the schema with this global id; raise 40403 if no version uses it."""
        self.versions_for_id(schema_id, deleted=True)
        return self._schemas[schema_id]

    def versions_for_id(self, schema_id: int, *, deleted: bool = False) -> list[tuple[str, int]]:
        """(subject, version) pairs that use ``schema_id``; raise 40403 if none ever did."""
        pairs = [
            (subject, v.version, v.deleted)
            for subject, rows in sorted(self._subjects.items())
            for v in rows
            if v.schema_id == schema_id
        ]
        if not pairs:
            raise RegistryError(404, 40403, f"Schema {schema_id} not found")
        return [(subject, version) for subject, version, dead in pairs if deleted or not dead]

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of live schemas whose references point at ``subject``/``version``."""
        row = self._find(subject, version, deleted=True)
        live = {v.schema_id for rows in self._subjects.values() for v in rows if not v.deleted}
        return sorted(
            sid
            for sid in live
            if any(
                r.subject == subject and r.version == row.version
                for r in self._schemas[sid].references
            )
        )

    # ------------------------------------------------------------------ schemas
    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str | None = None,
        references: Iterable[SchemaReference] = (),
    ) -> RegisteredVersion:
        """Register ``schema`` under ``subject``, or return the live version that has it.

        Raises:
            RegistryError: 42201 invalid schema, 409/40901 incompatible with the subject.
        """
        refs = tuple(references)
        key, parsed = self._canonical(schema, schema_type, refs)
        rows = self._subjects.get(subject, [])
        for row in rows:
            if not row.deleted and self._key_of(row.schema_id) == key:
                return RegisteredVersion(subject, row.version, self._schemas[row.schema_id])
        level = self.compatibility(subject)
        report = self._check(parsed, level, self._live(subject))
        if not report.is_compatible:
            details = "; ".join(report.messages)
            msg = (
                f"Schema being registered is incompatible with an earlier schema for subject "
                f'"{subject}", details: [{details}]'
            )
            raise RegistryError(409, 40901, msg)
        schema_id = self._ids_by_key.get(key)
        if schema_id is None:
            schema_id = self._next_id
            self._next_id += 1
            self._schemas[schema_id] = StoredSchema(schema_id, schema, key[0], refs)
            self._ids_by_key[key] = schema_id
            self._keys[schema_id] = key
            self._parsed[schema_id] = parsed
        version = max((r.version for r in rows), default=0) + 1
        self._subjects.setdefault(subject, []).append(_Version(version, schema_id))
        self.revision += 1
        log.info("registered %s version %d as schema id %d", subject, version, schema_id)
        return RegisteredVersion(subject, version, self._schemas[schema_id])

    def lookup(
        self,
        subject: str,
        schema: str,
        schema_type: str | None = None,
        references: Iterable[SchemaReference] = (),
        *,
        deleted: bool = False,
    ) -> RegisteredVersion:
        """Find ``schema`` (canonical form) under ``subject``; raise 40401/40403."""
        rows = [r for r in self._subjects.get(subject, []) if deleted or not r.deleted]
        if not rows:
            raise subject_not_found(subject)
        key, _ = self._canonical(schema, schema_type, tuple(references))
        for row in reversed(rows):
            if self._key_of(row.schema_id) == key:
                return RegisteredVersion(subject, row.version, self._schemas[row.schema_id])
        raise RegistryError(404, 40403, "Schema not found")

    def test_compatibility(
        self,
        subject: str,
        schema: str,
        schema_type: str | None = None,
        references: Iterable[SchemaReference] = (),
        *,
        version: int | None = LATEST,
    ) -> CompatibilityReport:
        """Check ``schema`` against one version (``None``: all, per the subject's level)."""
        _, parsed = self._canonical(schema, schema_type, tuple(references))
        level = self.compatibility(subject)
        if version is None:
            return self._check(parsed, level, self._live(subject))
        if version == LATEST and not self._live(subject):
            return CompatibilityReport(True)
        return self._check(parsed, level, [self._find(subject, version)])

    # ------------------------------------------------------------------ deleting
    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every version, or (``permanent``) drop a soft-deleted subject."""
        rows = self._subjects.get(subject)
        if not rows:
            raise subject_not_found(subject)
        if permanent:
            if any(not r.deleted for r in rows):
                msg = f"Subject '{subject}' was not deleted first before being permanently deleted"
                raise RegistryError(404, 40405, msg)
            del self._subjects[subject]
            self._subject_config.pop(subject, None)
            self.revision += 1
            return [r.version for r in rows]
        live = [r for r in rows if not r.deleted]
        if not live:
            msg = f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"
            raise RegistryError(404, 40404, msg)
        for row in live:
            self._refuse_if_referenced(subject, row.version)
        for row in live:
            row.deleted = True
        self.revision += 1
        return [r.version for r in live]

    def delete_version(self, subject: str, version: int, *, permanent: bool = False) -> int:
        """Soft-delete one version, or (``permanent``) drop a soft-deleted one."""
        row = self._find(subject, version, deleted=permanent or version != LATEST)
        if row.deleted and not permanent:
            msg = (
                f"Subject '{subject}' Version {row.version} was soft deleted.Set permanent=true "
                "to delete permanently"
            )
            raise RegistryError(404, 40406, msg)
        if permanent:
            if not row.deleted:
                msg = (
                    f"Subject '{subject}' Version {row.version} was not deleted first before "
                    "being permanently deleted"
                )
                raise RegistryError(404, 40407, msg)
            rows = self._subjects[subject]
            rows.remove(row)
            if not rows:
                del self._subjects[subject]
        else:
            self._refuse_if_referenced(subject, row.version)
            row.deleted = True
        self.revision += 1
        return row.version

    # ------------------------------------------------------------------ config
    @property
    def global_compatibility(self) -> Compatibility:
        """The registry-wide default level."""
        return self._global

    def set_global_compatibility(self, level: Compatibility) -> None:
        """Set the registry-wide default level."""
        self._global = level
        self.revision += 1

    def compatibility(self, subject: str) -> Compatibility:
        """The level that applies to ``subject`` (its own, else the global one)."""
        return self._subject_config.get(subject, self._global)

    def subject_compatibility(self, subject: str, *, default_to_global: bool) -> Compatibility:
        """The subject-level setting; raise 40408 if unset and not ``default_to_global``."""
        level = self._subject_config.get(subject)
        if level is None and not default_to_global:
            msg = f"Subject '{subject}' does not have subject-level compatibility configured"
            raise RegistryError(404, 40408, msg)
        return level or self._global

    def set_subject_compatibility(self, subject: str, level: Compatibility) -> None:
        """Set the level of one subject."""
        self._subject_config[subject] = level
        self.revision += 1

    def delete_subject_compatibility(self, subject: str) -> Compatibility:
        """Drop the subject's own level and return the level that applied before."""
        if subject not in self._subject_config and subject not in self._subjects:
            raise subject_not_found(subject)
        self.revision += 1
        return self._subject_config.pop(subject, self._global)

    # ------------------------------------------------------------------ persistence
    def to_data(self) -> dict[str, Any]:
        """Return the whole state as JSON-ready plain data."""
        return {
            "format": _DATA_FORMAT,
            "next_id": self._next_id,
            "compatibility": self._global.value,
            "subject_compatibility": {s: c.value for s, c in self._subject_config.items()},
            "schemas": [
                {"id": s.schema_id, "schemaType": s.schema_type} | s.to_json()
                for s in self._schemas.values()
            ],
            "subjects": {
                subject: [
                    {"version": v.version, "id": v.schema_id, "deleted": v.deleted} for v in rows
                ]
                for subject, rows in self._subjects.items()
            },
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RegistryState:
        """Rebuild a state written by :meth:`to_data`."""
        if data.get("format") != _DATA_FORMAT:
            raise ValueError(f"unsupported registry data format {data.get('format')!r}")
        state = cls()
        state._next_id = int(data["next_id"])
        state._global = Compatibility.parse(data["compatibility"])
        for subject, level in data["subject_compatibility"].items():
            state._subject_config[subject] = Compatibility.parse(level)
        for item in data["schemas"]:
            refs = tuple(SchemaReference.from_json(r) for r in item.get("references", []))
            stored = StoredSchema(int(item["id"]), item["schema"], item["schemaType"], refs)
            state._schemas[stored.schema_id] = stored
        for subject, rows in data["subjects"].items():
            state._subjects[subject] = [
                _Version(int(r["version"]), int(r["id"]), bool(r["deleted"])) for r in rows
            ]
        for stored in state._schemas.values():
            state._ids_by_key.setdefault(state._key_of(stored.schema_id), stored.schema_id)
        return state

    # ------------------------------------------------------------------ internals
    def _live(self, subject: str) -> list[_Version]:
        return [r for r in self._subjects.get(subject, []) if not r.deleted]

    def _find(self, subject: str, version: int, *, deleted: bool = False) -> _Version:
        rows = [r for r in self._subjects.get(subject, []) if deleted or not r.deleted]
        if not rows:
            raise subject_not_found(subject)
        if version == LATEST:
            return rows[-1]
        for row in rows:
            if row.version == version:
                return row
        raise version_not_found(version)

    def _refuse_if_referenced(self, subject: str, version: int) -> None:
        if self.referenced_by(subject, version):
            msg = f"One or more references exist to the schema {{{subject}, version {version}}}"
            raise RegistryError(422, 42206, msg)

    def _key_of(self, schema_id: int) -> _Key:
        if schema_id not in self._keys:
            stored = self._schemas[schema_id]
            try:
                key, parsed = self._canonical(stored.schema, stored.schema_type, stored.references)
            except RegistryError:  # unparseable now (a reference went away): use the raw text
                key = (stored.schema_type, stored.schema, stored.references)
            else:
                self._parsed[schema_id] = parsed
            self._keys[schema_id] = key
        return self._keys[schema_id]

    def _canonical(
        self, schema: str, schema_type: str | None, refs: tuple[SchemaReference, ...]
    ) -> tuple[_Key, avro.schema.Schema]:
        kind = (schema_type or "AVRO").upper()
        if kind != "AVRO":
            raise invalid_schema(
                f"schemaType {schema_type} is not supported; this local registry serves AVRO only"
            )
        parsed = self._parse(schema, refs, seen=frozenset())
        canonical = json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"))
        return (kind, canonical, refs), parsed

    def _parse(
        self,
        schema: str,
        refs: tuple[SchemaReference, ...],
        seen: frozenset[tuple[str, int]],
        names: avro.name.Names | None = None,
    ) -> avro.schema.Schema:
        names = names if names is not None else avro.name.Names()
        for ref in refs:
            if (ref.subject, ref.version) in seen:
                raise invalid_schema(f"circular reference to {ref.subject} v{ref.version}")
            try:
                target = self.get_version(ref.subject, ref.version, deleted=True).stored
            except RegistryError:
                raise invalid_schema(f"reference {ref.to_json()} does not exist") from None
            self._parse(
                target.schema, target.references, seen | {(ref.subject, ref.version)}, names
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
                return avro.schema.make_avsc_object(json.loads(schema), names)
        except (ValueError, TypeError, avro.errors.AvroException) as exc:
            raise invalid_schema(str(exc)) from None

    def _check(
        self, new: avro.schema.Schema, level: Compatibility, against: list[_Version]
    ) -> CompatibilityReport:
        """Check ``new`` against the latest of ``against`` (or all, per a transitive level)."""
        if level is Compatibility.NONE or not against:
            return CompatibilityReport(True)
        rows = against if level.is_transitive else against[-1:]
        # Parsed newest first, as they are checked: the first unparseable one is the one reported.
        olds = [(row.version, self._parsed_of(row.schema_id)) for row in reversed(rows)]
        return check_compatibility(new, level, olds[::-1])

    def _parsed_of(self, schema_id: int) -> avro.schema.Schema:
        if schema_id not in self._parsed:
            stored = self._schemas[schema_id]
            self._parsed[schema_id] = self._parse(stored.schema, stored.references, frozenset())
        return self._parsed[schema_id]
