"""``pipeline schemas register|check``: the Kafka contract in the schema registry, for operators.

``register`` is run once per release, before the producer starts (the producer never
auto-registers). ``check`` reports what the producer would refuse at start, plus warnings, and
is the command to run in a deploy pipeline. Both print one line per subject or problem and
return an exit code: 0 all well, 1 problems (or the registry is unreachable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, TextIO

from pipeline.errors import SchemaError
from pipeline.kafka.registry import (
    RegisteredSubject,
    SubjectStatus,
    inspect_contract,
    register_contract,
)

__all__ = ["check", "register"]

log = logging.getLogger(__name__)


def register(
    url: str, prefix: str, out: TextIO, *, client_config: Mapping[str, Any] | None = None
) -> int:
    """Register this build's schemas under every subject of the contract.

    Prints ``created`` or ``exists`` with subject, version, id, schema file and compatibility
    for each subject, or ``error:`` lines when the registry refuses.

    Args:
        url: the schema registry URL.
        prefix: the topic prefix.
        out: where the lines go.
        client_config: extra ``SchemaRegistryClient`` settings (auth, TLS, timeouts).

    Returns:
        0 when every subject holds this build's schema, 1 otherwise.

    Raises:
        ConfigError: ``prefix`` is not a valid topic prefix.
    """
    try:
        registered = register_contract(url, prefix, client_config=client_config)
    except SchemaError as exc:
        _print_error(exc, out)
        return 1
    for entry in registered:
        print(_registered_line(entry), file=out)
    return 0


def check(
    url: str,
    prefix: str,
    out: TextIO,
    *,
    client_config: Mapping[str, Any] | None = None,
    as_json: bool = False,
) -> int:
    """Compare every subject of the contract in the registry with this build's schemas.

    Prints ``ok`` per subject in order, else its ``problem`` and ``warning`` lines; with
    ``as_json``, one JSON document instead: ``{"ok", "error", "subjects": [...]}``, each
    subject with its topic, schema, version, id, compatibility, problems and warnings.

    Args:
        url, prefix, out, client_config: as in :func:`register`.
        as_json: print JSON instead of lines.

    Returns:
        0 when every subject's latest version is this build's schema and its compatibility
        level is at least BACKWARD_TRANSITIVE; 1 on any problem or warning, or when the
        registry cannot be reached.

    Raises:
        ConfigError: ``prefix`` is not a valid topic prefix.
    """
    try:
        statuses = inspect_contract(url, prefix, client_config=client_config)
    except SchemaError as exc:
        if as_json:
            doc = {"ok": False, "error": " ".join(str(exc).split()), "subjects": []}
            print(json.dumps(doc, indent=2), file=out)
        else:
            _print_error(exc, out)
        return 1
    ok = all(status.is_ok for status in statuses)
    if as_json:
        subjects = [{**asdict(status), "ok": status.is_ok} for status in statuses]
        print(json.dumps({"ok": ok, "error": None, "subjects": subjects}, indent=2), file=out)
        return 0 if ok else 1
    for status in statuses:
        for line in _status_lines(status):
            print(line, file=out)
    return 0 if ok else 1


def _registered_line(entry: RegisteredSubject) -> str:
    action = "created" if entry.created else "exists "
    return (
        f"{action} {entry.subject} version {entry.version} id {entry.schema_id} "
        f"({entry.schema_name}.avsc, {entry.compatibility})"
    )


def _status_lines(status: SubjectStatus) -> list[str]:
    if status.is_ok:
        return [
            f"ok      {status.subject} version {status.version} id {status.schema_id} "
            f"({status.schema_name}.avsc, {status.compatibility})"
        ]
    return [f"problem {status.subject}: {p}" for p in status.problems] + [
        f"warning {status.subject}: {w}" for w in status.warnings
    ]


def _print_error(exc: SchemaError, out: TextIO) -> None:
    for line in str(exc).splitlines():
        print(f"error: {line}", file=out)
