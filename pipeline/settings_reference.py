"""The configuration reference, generated from the settings models (``pipeline config``).

``docs/configuration.md`` is this output; a test fails when the two drift apart.
"""

from __future__ import annotations

import re

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from pipeline.settings import (
    DashboardSettings,
    GenesysSettings,
    KafkaSettings,
    ProducerSettings,
    RegistrySettings,
    ShutdownSettings,
    WorkerSettings,
)

__all__ = ["SETTINGS", "render_reference"]

SETTINGS: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("Genesys Cloud (producer, `plan`, `watch`)", GenesysSettings),
    ("Kafka (every service)", KafkaSettings),
    ("Schema registry (every service)", RegistrySettings),
    ("Producer (`pipeline produce`)", ProducerSettings),
    ("Workers (`pipeline worker freshness|dashboard`)", WorkerSettings),
    ("Dashboard push (`pipeline worker dashboard`, `pipeline wallboard`)", DashboardSettings),
    ("Shutdown (every long-running command)", ShutdownSettings),
)


# Read by the CLI itself (pipeline/cli/dispatch.py, pipeline/logs.py select_logging), before
# any settings model: the flag wins over the variable, the variable over the default.
_LOGGING: tuple[tuple[str, str, str], ...] = (
    (
        "PIPELINE_LOG_LEVEL",
        "`INFO`",
        "DEBUG, INFO, WARNING, ERROR or CRITICAL, any case (`--log-level` wins); another value "
        "is a usage error (exit 2)",
    ),
    (
        "PIPELINE_LOG_FORMAT",
        "`text` (`json` in the container image)",
        "`json` (one object per line) or `text` (`--log-format` wins)",
    ),
)


def _attribute_docs(cls: type[BaseSettings]) -> dict[str, str]:
    """``name: text`` entries of the class docstring's Attributes section (continued lines)."""
    doc = cls.__doc__ or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    docs: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        match = re.match(r"\s{8}(\w+): (.*)", line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2).strip()
        elif name and line.strip():
            docs[name] += " " + line.strip()
    return docs


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(secret, empty)" if not value.get_secret_value() else "(secret)"
    if value is None or value == "":
        return "—"
    return f"`{value}`"


def render_reference() -> str:
    """The whole reference as Markdown."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `pipeline/settings.py` by `pipeline config` — do not edit by hand.",
        "Every setting is an environment variable; secrets are never logged.",
    ]
    lines += [
        "",
        "## Logging (every command)",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {default} | {meaning} |" for name, default, meaning in _LOGGING]
    for title, cls in SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        docs = _attribute_docs(cls)
        lines += ["", f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            meaning = docs.get(name, "").replace("|", "\\|")
            lines.append(f"| `{prefix}{name.upper()}` | {_default(field.default)} | {meaning} |")
    return "\n".join(lines) + "\n"
