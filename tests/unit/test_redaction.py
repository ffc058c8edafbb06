"""Secrets out of logs: the redactor, the log filter, and every configured secret found."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from pydantic import SecretStr

from pipeline.cli.redaction import configured_secrets, secret_values, settings_models
from pipeline.core.redaction import MASK, Redactor, redact_url, redact_urls
from pipeline.logs import JsonFormatter, RedactingFilter
from pipeline.settings import DashboardSettings, GenesysSettings, RegistrySettings

CANARY = "canary-7f3e9d1c"


# ---------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@host:8081/x", f"https://{MASK}@host:8081/x"),
        ("https://token@host/x", f"https://{MASK}@host/x"),
        ("https://host/x?access_token=abc&page=2", f"https://host/x?access_token={MASK}&page=2"),
        ("https://h/p?api_key=k&sig=s&X-Amz-Signature=z", f"https://h/p?api_key={MASK}&sig={MASK}"
         f"&X-Amz-Signature={MASK}"),
        ("https://h/p?client_secret=s&code=c", f"https://h/p?client_secret={MASK}&code={MASK}"),
        ("https://host/x?page=2&flag", "https://host/x?page=2&flag"),
        ("http://127.0.0.1:8088/api/push", "http://127.0.0.1:8088/api/push"),
    ],
)  # fmt: skip
def test_redact_url_drops_userinfo_and_credential_query_values(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_urls_finds_urls_inside_text() -> None:
    text = "push to 'https://u:p@dash/api?token=t1' failed; see http://docs/x"

    assert (
        redact_urls(text)
        == f"push to 'https://{MASK}@dash/api?token={MASK}' failed; see http://docs/x"
    )


def test_an_unparsable_url_is_hidden_whole() -> None:
    assert redact_url("http://[::1:pw@host/") == f"http://{MASK}"


# ---------------------------------------------------------------------------- values
def test_redactor_masks_each_secret_and_its_url_encoded_form() -> None:
    secret = "p@ss word/" + CANARY
    redactor = Redactor([secret, "", "abc"])
    text = f"a {secret} b p%40ss%20word%2F{CANARY} c abc"

    assert redactor.redact(text) == f"a {MASK} b {MASK} c abc"  # "abc": too short to mask


def test_redactor_masks_the_longest_secret_first() -> None:
    redactor = Redactor([CANARY, CANARY + "-longer"])

    assert redactor.redact(f"{CANARY}-longer") == MASK


# ---------------------------------------------------------------------------- the log filter
def test_filter_masks_tracebacks_extras_and_urls_in_json_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter([CANARY]))
    log = logging.getLogger("pipeline.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"failed with {CANARY}")
        except RuntimeError:
            log.exception("push to https://u:%s@h/x?token=%s", CANARY, CANARY, extra={"s": CANARY})
    finally:
        log.removeHandler(handler)
        log.propagate = True
    line = stream.getvalue()
    doc = orjson.loads(line)

    assert CANARY not in line
    assert doc["message"] == f"push to https://{MASK}@h/x?token={MASK}"
    assert "RuntimeError: failed with " + MASK in doc["exception"]
    assert doc["s"] == MASK


def test_filter_masks_tracebacks_in_text_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter([CANARY]))
    log = logging.getLogger("pipeline.test.redaction.text")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError(CANARY)
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
        log.propagate = True

    assert CANARY not in stream.getvalue()
    assert f"ValueError: {MASK}" in stream.getvalue()


# ---------------------------------------------------------------------------- configured secrets
def _secret_variables() -> list[str]:
    """The environment variable of every SecretStr field of every settings model."""
    names = []
    for cls in settings_models():
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for name, field in cls.model_fields.items():
            if "SecretStr" in repr(field.annotation):
                names.append(f"{prefix}{name.upper()}")
    return names


def test_every_secret_setting_is_known() -> None:
    # The structural walk must at least find the secrets that exist today.
    assert {
        "GENESYS_CLIENT_SECRET",
        "DASHBOARD_SECRET",
        "KAFKA_SASL_PASSWORD",
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    } <= set(_secret_variables())


def test_configured_secrets_finds_every_secret_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = _secret_variables()
    for i, name in enumerate(variables):
        monkeypatch.setenv(name, f"user{i}:{CANARY}-{i}")

    found = configured_secrets()

    for i in range(len(variables)):
        assert f"user{i}:{CANARY}-{i}" in found
        assert f"{CANARY}-{i}" in found  # the password part of user:password


def test_a_model_that_does_not_validate_still_gives_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENESYS_REGION", "not-a-region")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", CANARY)

    assert CANARY in configured_secrets()


def test_secret_values_walk_nested_models() -> None:
    class Outer(DashboardSettings):
        inner: RegistrySettings

    model = Outer(
        secret=SecretStr("outer-secret"),
        inner=RegistrySettings(basic_auth_user_info=SecretStr("u:inner-pw")),
    )

    assert set(secret_values(model)) == {"outer-secret", "u:inner-pw", "inner-pw"}


def test_secret_values_skip_empty_secrets() -> None:
    assert list(secret_values(GenesysSettings(client_secret=SecretStr("")))) == []
