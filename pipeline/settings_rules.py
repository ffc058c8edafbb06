"""The consistency rules of the connection settings: one line per problem, never a secret.

:func:`kafka_problems` checks a :class:`~pipeline.settings.KafkaSettings` (protocol,
mechanism, credentials, TLS files) and :func:`registry_problems` a
:class:`~pipeline.settings.RegistrySettings`; :func:`require_secure_url` refuses to send a
secret over plain HTTP to anything but this machine (the emulator, a local registry).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import ConfigError

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "file_problem",
    "is_loopback_url",
    "kafka_problems",
    "public_url",
    "registry_problems",
    "require_secure_url",
]

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
"""The values of ``KAFKA_SECURITY_PROTOCOL``."""
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
"""The values of ``KAFKA_SASL_MECHANISM``."""
_IDENTIFICATION: Final = ("https", "none")
_OIDC: Final = (
    "sasl_oauthbearer_token_endpoint_url",
    "sasl_oauthbearer_client_id",
    "sasl_oauthbearer_client_secret",
)


def _env(name: str) -> str:
    return f"KAFKA_{name.upper()}"


def _is_set(value: Any) -> bool:
    secret = getattr(value, "get_secret_value", None)
    return bool(secret() if secret is not None else value)


def public_url(url: str) -> str:
    """``url`` without user-info, query or fragment: safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> None:
    """Refuse ``url`` for sending a secret unless it is https or on this machine.

    Args:
        url: where the secret would go.
        what: the secret's name, for the message (``the Genesys client secret``).

    Raises:
        ConfigError: a plain-HTTP URL to another host (the message names the URL without
            credentials).
    """
    if urlsplit(url).scheme.lower() == "https" or is_loopback_url(url):
        return
    raise ConfigError(
        f"refusing to send {what} to {public_url(url)}: use https:// "
        "(plain http is allowed only to localhost, 127.0.0.0/8 or ::1)"
    )


def file_problem(variable: str, path: str | None) -> str | None:
    """Why ``path`` (the value of ``variable``) cannot be read, or None when it can."""
    if not path:
        return None
    if not os.path.isfile(path):
        return f"{variable}: no such file: {path}"
    if not os.access(path, os.R_OK):
        return f"{variable}: cannot read {path} (permissions)"
    return None


def kafka_problems(settings: Any) -> list[str]:
    """Every inconsistency of a ``KafkaSettings``, one line each (no secret in any).

    Args:
        settings: the KafkaSettings (normalised: protocol and mechanism upper-case).

    Returns:
        The problems; empty when the settings can be used.
    """
    protocol = settings.security_protocol
    if protocol not in PROTOCOLS:
        return [f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, not {protocol!r}"]
    return [*_sasl_problems(settings, protocol), *_ssl_problems(settings, protocol)]


def _sasl_problems(settings: Any, protocol: str) -> list[str]:
    mechanism = settings.sasl_mechanism
    sasl_fields = ("sasl_mechanism", "sasl_username", "sasl_password", *_OIDC,
                   "sasl_oauthbearer_scope", "sasl_oauthbearer_aws_region")  # fmt: skip
    if not protocol.startswith("SASL_"):
        given = [_env(name) for name in sasl_fields if _is_set(getattr(settings, name))]
        if given:
            return [
                f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "SASL (use SASL_SSL or SASL_PLAINTEXT, or remove them)"
            ]
        return []
    if not mechanism:
        return [f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM "
                f"({', '.join(MECHANISMS)})"]  # fmt: skip
    if mechanism not in MECHANISMS:
        return [f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, not {mechanism!r}"]
    if mechanism == "OAUTHBEARER":
        return _oauth_problems(settings)
    return _password_problems(settings, mechanism)


def _password_problems(settings: Any, mechanism: str) -> list[str]:
    problems = []
    missing = [
        _env(n) for n in ("sasl_username", "sasl_password") if not _is_set(getattr(settings, n))
    ]
    if missing:
        problems.append(f"KAFKA_SASL_MECHANISM={mechanism} needs {' and '.join(missing)}")
    oidc = [_env(n) for n in (*_OIDC, "sasl_oauthbearer_scope", "sasl_oauthbearer_aws_region")
            if _is_set(getattr(settings, n))]  # fmt: skip
    if oidc:
        problems.append(f"{', '.join(oidc)} set but KAFKA_SASL_MECHANISM={mechanism} "
                        "(they are for OAUTHBEARER)")  # fmt: skip
    return problems


def _oauth_problems(settings: Any) -> list[str]:
    method = settings.sasl_oauthbearer_method
    if method == "aws_msk_iam":
        return _msk_problems(settings)
    if method != "oidc":
        return [f"KAFKA_SASL_OAUTHBEARER_METHOD must be oidc or aws_msk_iam, not {method!r}"]
    problems = []
    missing = [_env(name) for name in _OIDC if not _is_set(getattr(settings, name))]
    if missing:
        problems.append(f"KAFKA_SASL_MECHANISM=OAUTHBEARER needs {', '.join(missing)}")
    given = [_env(n) for n in ("sasl_username", "sasl_password") if _is_set(getattr(settings, n))]
    if given:
        problems.append(f"{', '.join(given)} set but KAFKA_SASL_MECHANISM=OAUTHBEARER "
                        "(it uses the KAFKA_SASL_OAUTHBEARER_* settings)")  # fmt: skip
    url = settings.sasl_oauthbearer_token_endpoint_url
    if url:
        try:
            require_secure_url(url, "the OAUTHBEARER client secret")
        except ConfigError as exc:
            problems.append(f"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: {exc}")
    return problems


def _msk_problems(settings: Any) -> list[str]:
    problems = []
    if settings.security_protocol != "SASL_SSL":
        problems.append("KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs "
                        "KAFKA_SECURITY_PROTOCOL=SASL_SSL")  # fmt: skip
    if not settings.sasl_oauthbearer_aws_region:
        problems.append("KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs "
                        "KAFKA_SASL_OAUTHBEARER_AWS_REGION")  # fmt: skip
    if importlib.util.find_spec("aws_msk_iam_sasl_signer") is None:
        problems.append("KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs the msk extra: "
                        "pip install 'genesys-kafka-pipeline[msk]'")  # fmt: skip
    given = [_env(n) for n in (*_OIDC, "sasl_username", "sasl_password")
             if _is_set(getattr(settings, n))]  # fmt: skip
    if given:
        problems.append(f"{', '.join(given)} set but KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam "
                        "(it signs with AWS credentials)")  # fmt: skip
    return problems


def _ssl_problems(settings: Any, protocol: str) -> list[str]:
    files = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
    if protocol not in ("SSL", "SASL_SSL"):
        given = [_env(n) for n in (*files, "ssl_key_password") if _is_set(getattr(settings, n))]
        if given:
            return [f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                    "TLS (use SSL or SASL_SSL, or remove them)"]  # fmt: skip
        return []
    problems = [p for n in files if (p := file_problem(_env(n), getattr(settings, n)))]
    problems += _pair_problems(
        "KAFKA_", settings.ssl_certificate_location, settings.ssl_key_location,
        _is_set(settings.ssl_key_password),
    )  # fmt: skip
    algorithm = settings.ssl_endpoint_identification_algorithm
    if algorithm not in _IDENTIFICATION:
        problems.append("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM must be https or none, "
                        f"not {algorithm!r}")  # fmt: skip
    return problems


def _pair_problems(prefix: str, cert: str | None, key: str | None, password: bool) -> list[str]:
    if cert and not key:
        return [f"{prefix}SSL_CERTIFICATE_LOCATION set without {prefix}SSL_KEY_LOCATION "
                "(mutual TLS needs both)"]  # fmt: skip
    if key and not cert:
        return [f"{prefix}SSL_KEY_LOCATION set without {prefix}SSL_CERTIFICATE_LOCATION "
                "(mutual TLS needs both)"]  # fmt: skip
    if password and not key:
        return [f"{prefix}SSL_KEY_PASSWORD set without {prefix}SSL_KEY_LOCATION"]
    return []


def registry_problems(settings: Any) -> list[str]:
    """Every inconsistency of a ``RegistrySettings``, one line each (no secret in any).

    Args:
        settings: the RegistrySettings.

    Returns:
        The problems; empty when the settings can be used.
    """
    prefix = "SCHEMA_REGISTRY_"
    names: Sequence[str] = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
    problems = [p for n in names if (p := file_problem(prefix + n.upper(), getattr(settings, n)))]
    problems += _pair_problems(
        prefix, settings.ssl_certificate_location, settings.ssl_key_location,
        _is_set(settings.ssl_key_password),
    )  # fmt: skip
    basic = settings.basic_auth_user_info
    if _is_set(basic) and ":" not in basic.get_secret_value():
        problems.append(f"{prefix}BASIC_AUTH_USER_INFO must be user:password")
    if _is_set(basic) and _is_set(settings.bearer_token):
        problems.append(f"set {prefix}BASIC_AUTH_USER_INFO or {prefix}BEARER_TOKEN, not both")
    if _is_set(basic) or _is_set(settings.bearer_token):
        try:
            require_secure_url(settings.url, "schema registry credentials")
        except ConfigError as exc:
            problems.append(f"{prefix}URL: {exc}")
    return problems
