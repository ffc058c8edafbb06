"""Compatibility of Avro schemas, as Confluent Schema Registry judges it (pure).

The levels (``BACKWARD`` by default), and :func:`check_compatibility`, which runs the Apache
``avro`` package's reader/writer checker for real and words each failure as Confluent does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from pipeline.local.registry_model import RegistryError

__all__ = ["Compatibility", "CompatibilityReport", "check_compatibility"]


class Compatibility(StrEnum):
    """Compatibility levels, with Confluent's default ``BACKWARD``."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @classmethod
    def parse(cls, value: object) -> Compatibility:
        """Parse a level case-insensitively; raise 422/42203 for anything else."""
        try:
            return cls(str(value).upper())
        except ValueError:
            valid = ", ".join(level.value for level in cls)
            msg = f"Invalid compatibility level {value!r}. Valid values are {valid}"
            raise RegistryError(422, 42203, msg) from None

    @property
    def is_transitive(self) -> bool:
        """Whether new schemas are checked against every version, not just the latest."""
        return self.value.endswith("_TRANSITIVE")


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """Outcome of a compatibility check; ``messages`` explain each failure."""

    is_compatible: bool
    messages: tuple[str, ...] = ()


def check_compatibility(
    new: avro.schema.Schema,
    level: Compatibility,
    against: Sequence[tuple[int, avro.schema.Schema]],
) -> CompatibilityReport:
    """Check ``new`` against earlier schemas at ``level``.

    Args:
        new: the schema to register.
        level: the subject's level; a transitive one checks every earlier schema, the others
            only the last one.
        against: (version, schema) of the subject's live versions, oldest first.

    Returns:
        Compatible, or not with one message per failure (newest version first).
    """
    if level is Compatibility.NONE or not against:
        return CompatibilityReport(True)
    messages: list[str] = []
    for version, old in reversed(against if level.is_transitive else against[-1:]):
        pairs = []
        if level.value.startswith(("BACKWARD", "FULL")):
            pairs.append(("new", new, "old", old))
        if level.value.startswith(("FORWARD", "FULL")):
            pairs.append(("old", old, "new", new))
        for reader_name, reader, writer_name, writer in pairs:
            checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
            result = checker.get_compatibility(reader, writer)
            if result.compatibility is not SchemaCompatibilityType.incompatible:
                continue
            kinds = ",".join(sorted({k.name.upper() for k in result.incompatibilities}))
            messages.append(
                f"{{errorType:'{kinds}', description:'The {reader_name} schema cannot read"
                f" data written with the {writer_name} schema at"
                f" {','.join(sorted(result.locations))}', additionalInfo:"
                f"'{','.join(sorted(result.messages))}', oldSchemaVersion: {version},"
                f" compatibility:'{level.value}'}}"
            )
    return CompatibilityReport(not messages, tuple(messages))
