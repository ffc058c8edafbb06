"""SASL with both Kafka clients, through a SASL front end in front of a private local broker
(Tansu's own SASL needs users in a persistent storage engine; the tests run it in memory):
PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER via an OIDC token endpoint, SASL_SSL like Confluent
Cloud; a wrong password fails start-up in one line; no secret ever reaches the output."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from pipeline.kafka.oauth import OidcTokenProvider
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.security import aiokafka_options
from pipeline.settings import KafkaSettings
from tests.conftest import seconds
from tests.oidc import OidcEndpoint
from tests.polling import until
from tests.sasl_proxy import SaslFrontEnd
from tests.secure_kafka import advertised_broker, refused_by_both, round_trip
from tests.tls import Certificates, server_context

pytestmark = pytest.mark.integration

USER = "svc-pipeline"
PASSWORD = "canary-sasl-password-8086"
CLIENT_ID = "kafka-client"
CLIENT_SECRET = "canary-oidc-secret-6502"
CANARIES = (PASSWORD, CLIENT_SECRET)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with advertised_broker(tmp_path_factory.mktemp("sasl-broker")) as ports:
        yield ports


@contextlib.asynccontextmanager
async def sasl_front(broker: tuple[int, int], **options: object) -> AsyncIterator[SaslFrontEnd]:
    front = SaslFrontEnd(broker[0], broker[1], {USER: PASSWORD}, **options)  # type: ignore[arg-type]
    await front.start()
    try:
        yield front
    finally:
        await front.aclose()


def assert_no_canary(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    out, err = capfd.readouterr()
    for canary in CANARIES:
        assert canary not in out + err
        assert canary not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_both_clients_authenticate_with_a_password(
    broker: tuple[int, int],
    mechanism: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sasl_front(broker) as front:
        kafka = KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{broker[1]}",
            security_protocol="sasl_plaintext",
            sasl_mechanism=mechanism.lower(),
            sasl_username=USER,
            sasl_password=PASSWORD,
        )
        await round_trip(kafka)
    # librdkafka (admin, producer) and aiokafka (consumer) each logged in with the password.
    assert (mechanism, USER) in front.authenticated
    assert len(front.authenticated) >= 3
    assert front.failures == []
    assert_no_canary(capfd, caplog)


async def test_sasl_ssl_plain_like_confluent_cloud(
    broker: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    certs = Certificates(tmp_path_factory.mktemp("sasl-certs"))
    async with sasl_front(broker, ssl=server_context(certs.server)) as front:
        kafka = KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{broker[1]}",
            security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN",
            sasl_username=USER,
            sasl_password=PASSWORD,
            ssl_ca_location=certs.ca_file,
        )
        await round_trip(kafka)
    assert ("PLAIN", USER) in front.authenticated


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_wrong_password_fails_fast_in_one_line(
    broker: tuple[int, int],
    mechanism: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "canary-wrong-password-1234"
    async with sasl_front(broker) as front:
        kafka = KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{broker[1]}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username=USER,
            sasl_password=wrong,
        )
        texts = await refused_by_both(kafka, "(?i)authentication")
    assert front.failures
    for text in texts:
        assert wrong not in text
    out, err = capfd.readouterr()
    assert wrong not in out + err + caplog.text


async def test_oauthbearer_tokens_are_fetched_and_presented_by_both_clients(
    broker: tuple[int, int], capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sasl_front(broker) as front:
        oidc = OidcEndpoint(CLIENT_ID, CLIENT_SECRET, front.tokens, expires_in=3600)
        url = await oidc.start()
        try:
            kafka = KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{broker[1]}",
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauthbearer_token_endpoint_url=url,
                sasl_oauthbearer_client_id=CLIENT_ID,
                sasl_oauthbearer_client_secret=CLIENT_SECRET,
                sasl_oauthbearer_scope="kafka",
            )
            await round_trip(kafka)
        finally:
            await oidc.aclose()
    presented = {token for mechanism, token in front.authenticated if mechanism == "OAUTHBEARER"}
    assert len(presented) >= 2, "librdkafka and aiokafka each fetch and present their own"
    assert presented <= set(oidc.issued)
    assert oidc.scopes
    assert set(oidc.scopes) == {"kafka"}
    assert oidc.refused == 0
    assert_no_canary(capfd, caplog)


async def test_librdkafka_refreshes_its_token_before_expiry(broker: tuple[int, int]) -> None:
    async with sasl_front(broker) as front:
        oidc = OidcEndpoint(CLIENT_ID, CLIENT_SECRET, front.tokens, expires_in=10)
        url = await oidc.start()
        try:
            kafka = KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{broker[1]}",
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauthbearer_token_endpoint_url=url,
                sasl_oauthbearer_client_id=CLIENT_ID,
                sasl_oauthbearer_client_secret=CLIENT_SECRET,
            )
            publisher = KafkaPublisher(kafka.producer_config())
            await publisher.start()
            await until(lambda: len(oidc.issued) >= 2, seconds(20), message="a second token")
            # librdkafka asks again at 80 % of the lifetime (its timer ticks each second); the
            # exp claim has whole seconds, so tokens of a few seconds would make this a race.
            assert oidc.issued_at[1] < oidc.expires_at[0], "refreshed before expiry"
            await publisher.aclose()
        finally:
            await oidc.aclose()


async def test_the_worker_token_provider_refreshes_at_80_percent() -> None:
    accepted: set[str] = set()
    oidc = OidcEndpoint(CLIENT_ID, CLIENT_SECRET, accepted, expires_in=100)
    url = await oidc.start()
    now = [1000.0]
    try:
        provider = OidcTokenProvider(url, CLIENT_ID, SecretStr(CLIENT_SECRET), clock=lambda: now[0])
        first = await asyncio.gather(provider.token(), provider.token())
        assert first[0] == first[1] == oidc.issued[0]  # concurrent callers share one fetch
        now[0] += 79
        assert await provider.token() == oidc.issued[0]
        now[0] += 1  # 80 % of expires_in
        assert await provider.token() == oidc.issued[1]
        assert provider.fetches == 2
    finally:
        await oidc.aclose()


async def test_refused_client_credentials_are_one_line_without_the_secret() -> None:
    oidc = OidcEndpoint(CLIENT_ID, "another-secret", set())
    url = await oidc.start()
    try:
        kafka = KafkaSettings(
            bootstrap_servers="127.0.0.1:1",
            security_protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauthbearer_token_endpoint_url=url,
            sasl_oauthbearer_client_id=CLIENT_ID,
            sasl_oauthbearer_client_secret=CLIENT_SECRET,
        )
        provider = aiokafka_options(kafka)["sasl_oauth_token_provider"]
        with pytest.raises(Exception, match="refused client 'kafka-client' \\(HTTP 401\\)") as info:
            await provider.token()
        assert CLIENT_SECRET not in str(info.value)
    finally:
        await oidc.aclose()


AWS_KEY_ID = "AKIDEXAMPLE1234567"
AWS_SECRET = "canary-aws-secret-key-0451"


def is_msk_token(token: str, region: str = "eu-west-1") -> bool:
    """A token the MSK IAM signer made: a presigned kafka-cluster:Connect URL for ``region``
    signed with our access key id (the signature itself is not checked here)."""
    padded = token + "=" * (-len(token) % 4)
    url = urlsplit(base64.urlsafe_b64decode(padded).decode())
    query = parse_qs(url.query)
    return (
        url.hostname == f"kafka.{region}.amazonaws.com"
        and query.get("Action") == ["kafka-cluster:Connect"]
        and query.get("X-Amz-Credential", [""])[0].startswith(f"{AWS_KEY_ID}/")
        and bool(query.get("X-Amz-Signature"))
    )


async def test_msk_iam_tokens_are_signed_and_presented_by_both_clients(
    broker: tuple[int, int],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    certs = Certificates(tmp_path_factory.mktemp("msk-certs"))
    async with sasl_front(broker, ssl=server_context(certs.server), accepts=is_msk_token) as front:
        kafka = KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{broker[1]}",
            security_protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauthbearer_method="aws_msk_iam",
            sasl_oauthbearer_aws_region="eu-west-1",
            ssl_ca_location=certs.ca_file,
        )
        await round_trip(kafka)
    presented = {token for mechanism, token in front.authenticated if mechanism == "OAUTHBEARER"}
    assert len(presented) >= 2, "librdkafka and aiokafka each sign and present their own"
    assert all(is_msk_token(token) for token in presented)
    assert front.failures == []
    out, err = capfd.readouterr()
    assert AWS_SECRET not in out + err + caplog.text
