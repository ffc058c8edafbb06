"""The registry side of production security: the local registry behind HTTPS with basic
auth, a bearer token or a client certificate; ``pipeline schemas register`` and ``check`` pass
with the right ``SCHEMA_REGISTRY_*`` settings and fail on one line (without the secret)
with wrong ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pipeline.local.registry_server import RegistryServer
from tests.conftest import seconds
from tests.processes import PipelineProcess, pipeline_env
from tests.tls import Certificates, server_context

pytestmark = pytest.mark.integration

PASSWORD = "canary-registry-password-7474"
TOKEN = "canary-registry-token-2600"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("registry-certs"))


@pytest.fixture
async def secured(certs: Certificates) -> AsyncIterator[RegistryServer]:
    async with RegistryServer(ssl=server_context(certs.server), basic_auth=("sr", PASSWORD)) as r:
        yield r


async def schemas(action: str, **env: str) -> tuple[int, list[str], list[str]]:
    """Run ``pipeline schemas ACTION`` with ``env``; (exit code, stdout, stderr)."""
    with PipelineProcess(["schemas", action, "--prefix", "sec"], pipeline_env(**env)) as proc:
        code = await asyncio.to_thread(proc.wait, seconds(60))
    return code, proc.out, proc.err


def assert_secret_free(*outputs: list[str]) -> None:
    text = "\n".join(line for output in outputs for line in output)
    assert PASSWORD not in text
    assert TOKEN not in text


async def test_schemas_register_and_check_over_tls_with_basic_auth(
    secured: RegistryServer, certs: Certificates
) -> None:
    env: dict[str, Any] = {
        "SCHEMA_REGISTRY_URL": secured.url,
        "SCHEMA_REGISTRY_SSL_CA_LOCATION": certs.ca_file,
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": f"sr:{PASSWORD}",
    }
    registered = await schemas("register", **env)
    assert registered[0] == 0, registered
    checked = await schemas("check", **env)
    assert checked[0] == 0, checked
    assert_secret_free(registered[1], registered[2], checked[1], checked[2])


async def test_a_wrong_registry_password_is_one_line(
    secured: RegistryServer, certs: Certificates
) -> None:
    code, out, err = await schemas(
        "check",
        SCHEMA_REGISTRY_URL=secured.url or "",
        SCHEMA_REGISTRY_SSL_CA_LOCATION=certs.ca_file,
        SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="sr:canary-registry-password-wrong",
    )
    assert code == 1, (out, err)
    assert out[-1].rstrip("\n") == (
        f"error: schema registry {secured.url} failed: access refused (HTTP 401): check the "
        "registry credentials"
    )
    assert "canary-registry-password-wrong" not in "\n".join(out + err)


async def test_an_untrusted_registry_certificate_is_one_line(
    secured: RegistryServer, certs: Certificates
) -> None:
    code, out, err = await schemas(
        "check",
        SCHEMA_REGISTRY_URL=secured.url or "",
        SCHEMA_REGISTRY_SSL_CA_LOCATION=certs.other_ca_file,
        SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=f"sr:{PASSWORD}",
    )
    assert code == 1, (out, err)
    assert out[-1].startswith(f"error: schema registry {secured.url}: TLS handshake failed (")
    assert_secret_free(out, err)


async def test_bearer_token_and_client_certificate(certs: Certificates) -> None:
    context = server_context(certs.server, client_ca=certs.ca)
    async with RegistryServer(ssl=context, bearer_token=TOKEN) as registry:
        env = {
            "SCHEMA_REGISTRY_URL": registry.url or "",
            "SCHEMA_REGISTRY_SSL_CA_LOCATION": certs.ca_file,
            "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": certs.client_cert,
            "SCHEMA_REGISTRY_SSL_KEY_LOCATION": certs.client_key,
            "SCHEMA_REGISTRY_BEARER_TOKEN": TOKEN,
        }
        registered = await schemas("register", **env)
        assert registered[0] == 0, registered
        without_certificate = {
            k: v for k, v in env.items() if "CERTIFICATE" not in k and "KEY_LOC" not in k
        }
        refused = await schemas("check", **without_certificate)
        assert refused[0] == 1, refused
    assert_secret_free(*registered[1:], *refused[1:])


async def test_credentials_over_plain_http_to_another_host_exit_2() -> None:
    code, out, err = await schemas(
        "check",
        SCHEMA_REGISTRY_URL="http://registry.example.test:8081",
        SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=f"sr:{PASSWORD}",
    )
    assert code == 2, (out, err)
    assert err[-1].rstrip("\n") == (
        "error: SCHEMA_REGISTRY_URL: refusing to send schema registry credentials to "
        "http://registry.example.test:8081: use https:// (plain http is allowed only to "
        "localhost, 127.0.0.0/8 or ::1)"
    )
    assert_secret_free(out, err)
