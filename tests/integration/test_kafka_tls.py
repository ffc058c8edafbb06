"""Both Kafka clients over real TLS handshakes: the producer's librdkafka and the workers'
aiokafka, through a TLS-terminating proxy in front of a private local broker (which
advertises the proxy's port). Mutual TLS too; a wrong CA, an expired server certificate and
a missing client certificate each fail start-up within seconds, on one line."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.settings import KafkaSettings
from tests.conftest import seconds
from tests.processes import PipelineProcess, pipeline_env
from tests.secure_kafka import advertised_broker, refused_by_both, round_trip
from tests.tcp_proxy import TcpProxy
from tests.tls import KEY_PASSWORD, Certificates, server_context

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with advertised_broker(tmp_path_factory.mktemp("tls-broker")) as ports:
        yield ports


@contextlib.asynccontextmanager
async def tls_front(broker: tuple[int, int], context: Any) -> AsyncIterator[str]:
    """The TLS proxy on the advertised port for the block; yields the bootstrap servers."""
    proxy = TcpProxy(broker[0], broker[1], ssl=context)
    await proxy.start()
    try:
        yield f"127.0.0.1:{broker[1]}"
    finally:
        await proxy.aclose()


def tls_settings(bootstrap: str, ca_file: str, **changes: Any) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap, security_protocol="ssl", ssl_ca_location=ca_file, **changes
    )


async def test_producer_and_worker_talk_tls(broker: tuple[int, int], certs: Certificates) -> None:
    async with tls_front(broker, server_context(certs.server)) as bootstrap:
        await round_trip(tls_settings(bootstrap, certs.ca_file))


async def test_producer_and_worker_talk_mutual_tls_with_an_encrypted_key(
    broker: tuple[int, int], certs: Certificates, capfd: pytest.CaptureFixture[str]
) -> None:
    async with tls_front(broker, server_context(certs.server, client_ca=certs.ca)) as bootstrap:
        kafka = tls_settings(
            bootstrap,
            certs.ca_file,
            ssl_certificate_location=certs.client_cert,
            ssl_key_location=certs.client_key_encrypted,
            ssl_key_password=KEY_PASSWORD,
        )
        assert KEY_PASSWORD not in repr(kafka)
        await round_trip(kafka)
    out, err = capfd.readouterr()
    assert KEY_PASSWORD not in out + err


async def test_a_wrong_ca_fails_fast(broker: tuple[int, int], certs: Certificates) -> None:
    async with tls_front(broker, server_context(certs.server)) as bootstrap:
        await refused_by_both(tls_settings(bootstrap, certs.other_ca_file), "certificate verify")


async def test_an_expired_server_certificate_fails_fast(
    broker: tuple[int, int], certs: Certificates
) -> None:
    async with tls_front(broker, server_context(certs.expired)) as bootstrap:
        await refused_by_both(tls_settings(bootstrap, certs.ca_file), "certificate")


async def test_a_missing_client_certificate_fails_fast(
    broker: tuple[int, int], certs: Certificates
) -> None:
    async with tls_front(broker, server_context(certs.server, client_ca=certs.ca)) as bootstrap:
        await refused_by_both(tls_settings(bootstrap, certs.ca_file), "(?i)certificate")


async def test_the_worker_command_exits_2_on_a_wrong_ca(
    broker: tuple[int, int], certs: Certificates, endpoints: Endpoints
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
    async with tls_front(broker, server_context(certs.server)) as bootstrap:
        env = pipeline_env(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_SECURITY_PROTOCOL="SSL",
            KAFKA_SSL_CA_LOCATION=certs.other_ca_file,
            SCHEMA_REGISTRY_URL=endpoints.schema_registry_url,
            PIPELINE_TOPIC_PREFIX=prefix,
            PIPELINE_OPS_HOST="127.0.0.1",
            PIPELINE_OPS_PORT="0",
        )
        with PipelineProcess(["worker", "freshness", EXAMPLE], env) as proc:
            code = await asyncio.to_thread(proc.wait, seconds(30))
    assert code == 2, proc.err
    assert proc.err[-1].startswith(f"error: Kafka at {bootstrap} refused the connection: ")
    assert "certificate verify failed" in proc.err[-1]
