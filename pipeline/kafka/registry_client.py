"""Talking to a Confluent-compatible schema registry: a client whose failures are clear.

:func:`registry_client` opens a ``SchemaRegistryClient`` with defaults fit for a CLI and a
producer start, and turns transport, OAuth and registry failures into one
:class:`~pipeline.errors.SchemaError` each, with the registry URL's user-info removed
(:func:`redact_url`). The small queries the contract needs (:func:`lookup_version`,
:func:`subject_level`) tell "not there" apart from failures that end the operation.
"""

from __future__ import annotations

import importlib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.error import OAuthTokenError

from pipeline.core.http_policy import is_retriable
from pipeline.errors import RegistryUnavailableError, SchemaError

__all__ = [
    "SCHEMA_NOT_FOUND",
    "SUBJECT_LEVEL_NOT_CONFIGURED",
    "SUBJECT_NOT_FOUND",
    "describe",
    "lookup_version",
    "raise_unless",
    "redact_url",
    "registry_client",
    "subject_level",
]

# Fail fast enough for a CLI and a producer start, still riding out a registry blip.
# Any key here can be overridden through ``client_config``.
_CLIENT_DEFAULTS: Final[Mapping[str, Any]] = {
    "timeout": 10,
    "max.retries": 2,
    "retries.wait.ms": 250,
    "retries.max.wait.ms": 2000,
}

# Confluent error codes (https://docs.confluent.io/platform/current/schema-registry/develop/api.html)
SUBJECT_NOT_FOUND: Final = 40401
"""No such subject."""
SCHEMA_NOT_FOUND: Final = 40403
"""No such schema (under the subject)."""
SUBJECT_LEVEL_NOT_CONFIGURED: Final = 40408
"""The subject has no compatibility level of its own."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    # The client talks HTTP through httpx2 when installed, else httpx
    # (confluent_kafka.schema_registry.common._httpx_compat); both raise TransportError
    # subclasses for refused connections, DNS failures and timeouts.
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_TRANSPORT_ERRORS: Final = _transport_errors()


def redact_url(url: str) -> str:
    """``url`` without user-info (``http://user:secret@host`` → ``http://host``)."""
    parts = []
    for one in url.split(","):
        split = urlsplit(one.strip())
        netloc = split.netloc.rpartition("@")[2]
        parts.append(urlunsplit(split._replace(netloc=netloc)))
    return ",".join(parts)


@contextmanager
def registry_client(
    url: str, client_config: Mapping[str, Any] | None
) -> Iterator[SchemaRegistryClient]:
    """A client, closed on exit, whose failures become one clear SchemaError.

    Args:
        url: the schema registry URL (comma-separated URLs are tried in turn).
        client_config: extra ``SchemaRegistryClient`` settings; they override the defaults.

    Yields:
        The client.

    Raises:
        RegistryUnavailableError: the registry is unreachable, timed out, or answered 5xx,
            408 or 429 (a retry may succeed).
        SchemaError: an invalid URL or client setting, no OAuth token, or another registry
            failure inside the block.
    """
    safe = redact_url(url)
    parts = [part.strip() for part in url.split(",")]
    if not all(part.startswith(("http://", "https://")) for part in parts):
        raise SchemaError(
            f"schema registry URL {safe!r} is not valid: each URL must start with http:// or "
            "https://"
        )
    try:
        client = SchemaRegistryClient({**_CLIENT_DEFAULTS, **(client_config or {}), "url": url})
    except (ValueError, TypeError) as exc:
        detail = str(exc).replace(url, safe)
        raise SchemaError(f"schema registry client for {safe} is misconfigured: {detail}") from exc
    try:
        yield client
    except _TRANSPORT_ERRORS as exc:
        reason = _tls_reason(exc)
        if reason is not None:  # a wrong CA or certificate: no retry helps
            raise SchemaError(
                f"schema registry {safe}: TLS handshake failed ({reason}): check "
                "SCHEMA_REGISTRY_SSL_CA_LOCATION and the client certificate settings"
            ) from exc
        raise RegistryUnavailableError(
            f"schema registry {safe} is unreachable ({type(exc).__name__}): check the registry "
            "URL and that the registry is running"
        ) from exc
    except OAuthTokenError as exc:
        raise SchemaError(
            f"schema registry {safe}: no OAuth token (HTTP {exc.status_code}): check the "
            "registry credentials"
        ) from exc
    except SchemaRegistryError as exc:
        error = RegistryUnavailableError if is_retriable(exc.http_status_code) else SchemaError
        raise error(f"schema registry {safe} failed: {describe(exc)}") from exc
    finally:
        client.close()


def _tls_reason(exc: BaseException) -> str | None:
    """The certificate failure behind a transport error (its ``__cause__`` chain), or None."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return str(getattr(seen, "verify_message", None) or seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: SchemaRegistryError) -> str:
    """One line for a registry answer: access refused, or status, code and message."""
    if exc.http_status_code in (401, 403):
        return f"access refused (HTTP {exc.http_status_code}): check the registry credentials"
    return f"HTTP {exc.http_status_code}, code {exc.error_code}: {exc.error_message}"


def raise_unless(exc: SchemaRegistryError, *codes: int) -> None:
    """Re-raise ``exc`` unless its error code is one of ``codes`` (a "not there" answer).

    Errors that end the whole operation (access, server faults) go through this way.

    Raises:
        SchemaRegistryError: ``exc``, when its code is not one of ``codes``.
    """
    if exc.error_code not in codes:
        raise exc


def lookup_version(
    client: SchemaRegistryClient, subject: str, schema: Schema
) -> tuple[int, int] | None:
    """(version, id) of ``schema`` under ``subject``, or None when it is not registered there.

    Raises:
        SchemaError: the registry answered without a version or id.
        SchemaRegistryError: any failure but "no such subject or schema".
    """
    try:
        found = client.lookup_schema(subject, schema)
    except SchemaRegistryError as exc:
        raise_unless(exc, SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND)
        return None
    if found.version is None or found.schema_id is None:
        raise SchemaError(f"the registry's lookup of {subject} answered without version or id")
    return found.version, found.schema_id


def subject_level(client: SchemaRegistryClient, subject: str) -> tuple[str, bool]:
    """(level that applies, True when it is the subject's own rather than the global one).

    Raises:
        SchemaRegistryError: any failure but "no level of its own" or "no such subject".
    """
    try:
        return str(client.get_compatibility(subject)).upper(), True
    except SchemaRegistryError as exc:
        # Confluent ≥ 7 answers 40408 for a subject without its own level; older ones
        # answered with the global level directly.
        raise_unless(exc, SUBJECT_LEVEL_NOT_CONFIGURED, SUBJECT_NOT_FOUND)
    return str(client.get_compatibility()).upper(), False
