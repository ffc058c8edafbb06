"""The Kafka and registry connection settings: names as librdkafka spells them, normalised,
turned into both clients' settings, and every inconsistent combination refused on one line
per problem (exit 2 from the CLI), never with a secret in it."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pipeline.cli.dispatch import main
from pipeline.errors import ConfigError
from pipeline.kafka.oauth import OidcTokenProvider, refresh_at
from pipeline.kafka.security import SaslRedactionFilter, aiokafka_options, librdkafka_config
from pipeline.settings import GenesysSettings, KafkaSettings, RegistrySettings

SECRET = "canary-unit-secret-31337"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", "SCHEMA_REGISTRY_", "GENESYS_")):
            monkeypatch.delenv(name)


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "any.pem"
    path.write_text("not really PEM\n")
    return str(path)


def problems(**settings: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        KafkaSettings(**settings)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
    return str(info.value).splitlines()


def test_environment_names_are_librdkafkas_upper_cased(
    monkeypatch: pytest.MonkeyPatch, pem: str
) -> None:
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": SECRET,
        "KAFKA_SSL_CA_LOCATION": pem,
        "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "HTTPS",
    }.items():
        monkeypatch.setenv(name, value)
    kafka = KafkaSettings()
    assert kafka.client_config() == {
        "bootstrap.servers": "localhost:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": SECRET,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": pem,
    }
    assert SECRET not in repr(kafka)


def test_oauthbearer_uses_librdkafkas_oidc_method() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/token",
        sasl_oauthbearer_client_id="c",
        sasl_oauthbearer_client_secret=SECRET,
        sasl_oauthbearer_scope="kafka",
    )
    config = kafka.client_config()
    assert config["sasl.oauthbearer.method"] == "oidc"
    assert config["sasl.oauthbearer.client.secret"] == SECRET
    assert config["sasl.oauthbearer.scope"] == "kafka"
    options = aiokafka_options(kafka)
    assert isinstance(options["sasl_oauth_token_provider"], OidcTokenProvider)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["security_protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, "
         "SASL_PLAINTEXT, SASL_SSL, not 'TLS'"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"},
         "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, "
         "not 'GSSAPI'"),
        ({"security_protocol": "SASL_SSL"}, "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
         "KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"),
        ({"sasl_username": "u", "sasl_password": SECRET},
         "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT "
         "does not use SASL (use SASL_SSL or SASL_PLAINTEXT, or remove them)"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
         "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_PASSWORD"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
         "KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL, "
         "KAFKA_SASL_OAUTHBEARER_CLIENT_ID, KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
          "sasl_oauthbearer_token_endpoint_url": "http://idp.example/token",
          "sasl_oauthbearer_client_id": "c", "sasl_oauthbearer_client_secret": SECRET},
         "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: refusing to send the OAUTHBEARER client "
         "secret to http://idp.example/token: use https:// (plain http is allowed only to "
         "localhost, 127.0.0.0/8 or ::1)"),
        ({"ssl_ca_location": "/nowhere/ca.pem"},
         "KAFKA_SSL_CA_LOCATION set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS "
         "(use SSL or SASL_SSL, or remove them)"),
        ({"security_protocol": "SSL", "ssl_ca_location": "/nowhere/ca.pem"},
         "KAFKA_SSL_CA_LOCATION: no such file: /nowhere/ca.pem"),
        ({"security_protocol": "SSL", "ssl_endpoint_identification_algorithm": "sometimes"},
         "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM must be https or none, not 'sometimes'"),
    ],
)  # fmt: skip
def test_inconsistent_settings_are_refused(settings: dict[str, object], expected: str) -> None:
    assert problems(**settings) == [expected]


def test_half_configured_mutual_tls_is_refused(pem: str) -> None:
    assert problems(security_protocol="SSL", ssl_certificate_location=pem) == [
        "KAFKA_SSL_CERTIFICATE_LOCATION set without KAFKA_SSL_KEY_LOCATION (mutual TLS needs both)"
    ]
    assert problems(security_protocol="SSL", ssl_key_location=pem) == [
        "KAFKA_SSL_KEY_LOCATION set without KAFKA_SSL_CERTIFICATE_LOCATION (mutual TLS needs both)"
    ]
    assert problems(security_protocol="SSL", ssl_key_password=SECRET) == [
        "KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_LOCATION"
    ]


def test_several_problems_are_one_line_each_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("KAFKA_SSL_KEY_LOCATION", "/nowhere/client.key")
    example = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
    assert main(["worker", "freshness", str(example)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-3:] == [
        "error: KAFKA_SASL_MECHANISM=SCRAM-SHA-256 needs KAFKA_SASL_USERNAME",
        "error: KAFKA_SSL_KEY_LOCATION: no such file: /nowhere/client.key",
        "error: KAFKA_SSL_KEY_LOCATION set without KAFKA_SSL_CERTIFICATE_LOCATION "
        "(mutual TLS needs both)",
    ]
    assert SECRET not in "\n".join(err)


def test_skipping_host_name_checks_is_allowed_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_endpoint_identification_algorithm="NONE")
    assert kafka.client_config()["ssl.endpoint.identification.algorithm"] == "none"
    assert "host names are not checked" in caplog.text
    assert aiokafka_options(kafka)["ssl_context"].check_hostname is False


def test_a_wrong_key_password_is_named_without_the_password(pem: str) -> None:
    kafka = KafkaSettings(
        security_protocol="SSL",
        ssl_certificate_location=pem,
        ssl_key_location=pem,
        ssl_key_password=SECRET,
    )
    with pytest.raises(ConfigError, match="cannot load the client certificate") as info:
        aiokafka_options(kafka)
    assert SECRET not in str(info.value)


def test_registry_settings_become_client_settings(pem: str) -> None:
    registry = RegistrySettings(
        url="https://sr.example",
        bearer_token=SECRET,
        bearer_logical_cluster="lsrc-1",
        ssl_ca_location=pem,
    )
    assert registry.client_config() == {
        "timeout": 10.0,
        "bearer.auth.credentials.source": "STATIC_TOKEN",
        "bearer.auth.token": SECRET,
        "bearer.auth.logical.cluster": "lsrc-1",
        "ssl.ca.location": pem,
    }
    assert SECRET not in repr(registry)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"basic_auth_user_info": SECRET}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO must be "
         "user:password"),
        ({"url": "https://sr", "basic_auth_user_info": f"u:{SECRET}", "bearer_token": SECRET},
         "set SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO or SCHEMA_REGISTRY_BEARER_TOKEN, not both"),
        ({"ssl_key_location": "/nowhere/k.pem"}, "SCHEMA_REGISTRY_SSL_KEY_LOCATION: no such "
         "file: /nowhere/k.pem"),
    ],
)  # fmt: skip
def test_inconsistent_registry_settings_are_refused(
    settings: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        RegistrySettings(**settings)  # type: ignore[arg-type]
    assert expected in str(info.value).splitlines()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.mypurecloud.com", True),
        ("http://127.0.0.1:8089", True),
        ("http://127.8.9.10:8089", True),
        ("http://localhost:8089", True),
        ("http://[::1]:8089", True),
        ("http://emulator:8089", False),
        ("http://api.example.com", False),
    ],
)
def test_the_genesys_secret_goes_over_https_or_to_this_machine(url: str, allowed: bool) -> None:
    settings = GenesysSettings(api_url=url, client_secret=SECRET)  # type: ignore[arg-type]
    if allowed:
        assert settings.api_base() == url
        return
    with pytest.raises(ConfigError) as info:
        settings.api_base()
    assert str(info.value) == (
        f"refusing to send the Genesys client secret to {url}: use https:// (plain http is "
        "allowed only to localhost, 127.0.0.0/8 or ::1)"
    )
    assert GenesysSettings(api_url=url, allow_plain_http=True).api_base() == url


def test_the_refused_url_is_printed_without_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        GenesysSettings(api_url=f"http://user:{SECRET}@api.example.com/x?k={SECRET}").api_base()
    assert SECRET not in str(info.value)
    assert "http://api.example.com/x" in str(info.value)


def test_tokens_are_refreshed_at_80_percent_of_their_lifetime() -> None:
    assert refresh_at(100.0, 3600) == pytest.approx(100.0 + 2880)
    assert refresh_at(100.0, -5) == 100.0


def test_aiokafkas_debug_dump_of_sasl_authenticate_is_redacted() -> None:
    class SaslAuthenticateRequest_v1:
        def __repr__(self) -> str:
            return f"SaslAuthenticateRequest_v1(auth_bytes=b'\\x00u\\x00{SECRET}')"

    import logging

    record = logging.LogRecord(
        "aiokafka.conn", logging.DEBUG, "conn.py", 1, "Request to %s:%d %d: %s",
        ("h", 1, 3, SaslAuthenticateRequest_v1()), None,
    )  # fmt: skip
    assert SaslRedactionFilter().filter(record)
    assert SECRET not in record.getMessage()
    assert "redacted" in record.getMessage()


def test_msk_iam_needs_sasl_ssl_and_a_region() -> None:
    assert problems(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_method="AWS_MSK_IAM",
        sasl_oauthbearer_client_secret=SECRET,
    ) == [
        "KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        "KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs KAFKA_SASL_OAUTHBEARER_AWS_REGION",
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET set but KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam "
        "(it signs with AWS credentials)",
    ]
    assert problems(
        security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", sasl_oauthbearer_method="x"
    ) == ["KAFKA_SASL_OAUTHBEARER_METHOD must be oidc or aws_msk_iam, not 'x'"]
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_method="aws_msk_iam",
        sasl_oauthbearer_aws_region="eu-west-1",
    )
    config = librdkafka_config(kafka)
    assert callable(config["oauth_cb"])
    assert "sasl.oauthbearer.method" not in config
