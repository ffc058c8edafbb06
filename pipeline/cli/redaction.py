"""Every configured secret, for the log redaction filter and the CLI's error lines.

The hook is structural, not a list of names: :func:`configured_secrets` loads every settings
model of :mod:`pipeline.settings` (and of the configuration reference) from the environment
and walks it for ``SecretStr`` values (:func:`secret_values`), nested models included. A
secret setting added later is redacted without touching this file.

A model that does not validate (a bad value elsewhere in it) cannot be loaded; its secret
fields are then read straight from their environment variables, so a configuration error
never turns the redaction off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings

import pipeline.settings
from pipeline.errors import ConfigError
from pipeline.settings_reference import SETTINGS

__all__ = ["configured_secrets", "secret_values", "settings_models"]


def settings_models() -> list[type[BaseSettings]]:
    """Every settings model: those of the reference, then any other in pipeline.settings."""
    models = [cls for _, cls in SETTINGS]
    for value in vars(pipeline.settings).values():
        is_model = isinstance(value, type) and issubclass(value, BaseSettings)
        if is_model and value not in models and value.__module__ == pipeline.settings.__name__:
            models.append(value)
    return models


def secret_values(model: BaseModel) -> Iterator[str]:
    """The plain values of every ``SecretStr`` in ``model``, nested models included.

    A ``user:password`` value (basic-auth user info) also yields its password part, which
    may be logged on its own by a client library.

    Args:
        model: a loaded settings model.

    Yields:
        Non-empty secret values.
    """
    for name in type(model).model_fields:
        yield from _values_of(getattr(model, name))


def _values_of(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        plain = value.get_secret_value()
        if plain:
            yield plain
            if ":" in plain:
                yield plain.partition(":")[2]
    elif isinstance(value, BaseModel):
        yield from secret_values(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _values_of(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _values_of(item)


def configured_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret the settings models load from the environment.

    Args:
        environ: the environment (default ``os.environ``; only read for models that do not
            validate).

    Returns:
        The distinct non-empty secret values.
    """
    env = os.environ if environ is None else environ
    found: dict[str, None] = {}
    for cls in settings_models():
        try:
            values: Iterable[str] = list(secret_values(cls()))
        except (ValidationError, ConfigError):  # invalid or inconsistent: still mask them
            values = _raw_secrets(cls, env)
        found.update(dict.fromkeys(values))
    return list(found)


def _raw_secrets(cls: type[BaseSettings], env: Mapping[str, str]) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names = {
        f"{prefix}{name}".upper()
        for name, field in cls.model_fields.items()
        if "SecretStr" in repr(field.annotation)
    }
    values = [value for key, value in env.items() if key.upper() in names and value]
    return values + [v.partition(":")[2] for v in values if ":" in v]
