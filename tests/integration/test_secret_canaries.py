"""Canary secrets in every secret setting, real commands, and nowhere a canary shows up.

Every ``SecretStr`` setting of every settings model (found by walking the models, so a new
secret setting is planted automatically) gets a unique canary value, and so do the userinfo
and the ``token`` query parameter of the URLs the commands log. Then real commands run at
DEBUG: ``pipeline produce`` against the emulator (whose OAuth secret is the canary: the
secret is really used) and against a registry URL that answers nothing; ``pipeline worker
dashboard`` against a dashboard that refuses batches (dead letters and audit records are
written) and then every push (exit 2). Their stdout, stderr, the dead letters and the audit
records must not hold a single canary.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from pipeline.cli.redaction import settings_models
from pipeline.emulator.config import DEMO_CLIENT_ID
from pipeline.emulator.thread import EmulatorThread
from pipeline.local.process import free_port
from pipeline.local.stack import Endpoints
from tests.conftest import seconds
from tests.processes import PipelineProcess, pipeline_env
from tests.reading import read_topic
from tests.workers import Stack

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
TAG = uuid.uuid4().hex[:8]


def canary(name: str) -> str:
    """A value that appears nowhere unless a secret leaked."""
    return f"canary{TAG}{name.lower().replace('_', '')}"


def secret_env() -> dict[str, str]:
    """A canary in every secret setting (basic-auth user info as ``user:canary``)."""
    env = {}
    for cls in settings_models():
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for name, field in cls.model_fields.items():
            if "SecretStr" in repr(field.annotation):
                variable = f"{prefix}{name.upper()}"
                env[variable] = canary(variable)
    env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"] = "user:" + canary("registrypassword")
    return env


USABLE_TOGETHER = {
    "GENESYS_CLIENT_SECRET",
    "DASHBOARD_SECRET",
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
}
"""The secrets one run against the local stack can hold at once: the settings refuse the
others here (SASL or TLS secrets on a PLAINTEXT broker, a registry bearer token next to basic
auth); those are covered by the refused-settings run and tests/integration/test_kafka_sasl.py."""


def usable_secret_env() -> dict[str, str]:
    """The canaries of :data:`USABLE_TOGETHER`."""
    return {k: v for k, v in secret_env().items() if k in USABLE_TOGETHER}


def assert_no_canary(*texts: str | bytes) -> None:
    marker = f"canary{TAG}"
    for text in texts:
        data = text if isinstance(text, str) else text.decode(errors="replace")
        assert marker not in data, data[max(0, data.find(marker) - 300) :][:600]


def test_every_secret_setting_gets_a_canary() -> None:
    planted = secret_env()
    assert {"GENESYS_CLIENT_SECRET", "DASHBOARD_SECRET", "KAFKA_SASL_PASSWORD"} <= set(planted)


def test_refused_settings_never_echo_a_secret() -> None:
    # Every secret setting at once is inconsistent (SASL and TLS secrets on PLAINTEXT, basic
    # auth and a bearer token): the refusal names the variables, never their values.
    env = pipeline_env(
        **secret_env(),
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
        SCHEMA_REGISTRY_URL="http://127.0.0.1:9",
        GENESYS_API_URL="http://127.0.0.1:9",
        GENESYS_CLIENT_ID=DEMO_CLIENT_ID,
    )
    with PipelineProcess(["--log-level", "DEBUG", "produce", str(SPEC)], env) as proc:
        code = proc.wait(seconds(30))
        out, err = proc.stdout, proc.stderr
    assert code == 2, err[-3000:]
    assert "KAFKA_SASL_PASSWORD" in err, err[-3000:]
    assert_no_canary(out, err)


def test_produce_never_logs_a_secret(
    endpoints: Endpoints, emulator_factory: Callable[..., EmulatorThread]
) -> None:
    secrets = usable_secret_env()
    emulator = emulator_factory(
        speed=60.0, client_id=DEMO_CLIENT_ID, client_secret=secrets["GENESYS_CLIENT_SECRET"]
    )
    prefix = f"canary{uuid.uuid4().hex[:6]}"
    env = pipeline_env(
        **secrets,
        KAFKA_BOOTSTRAP_SERVERS=endpoints.bootstrap_servers,
        SCHEMA_REGISTRY_URL=endpoints.schema_registry_url,
        PIPELINE_TOPIC_PREFIX=prefix,
        PIPELINE_PARTITIONS="1",
        PIPELINE_AUTO_REGISTER="true",
        PIPELINE_OPS_HOST="127.0.0.1",
        PIPELINE_OPS_PORT=str(free_port()),
        GENESYS_API_URL=emulator.base_url,
        GENESYS_CLIENT_ID=DEMO_CLIENT_ID,
    )
    args = ["--log-level", "DEBUG", "produce", str(SPEC), "--duration", "4"]
    with PipelineProcess(args, env) as proc:
        code = proc.wait(seconds(60))
        out, err = proc.stdout, proc.stderr
    audit = read_topic(endpoints, f"{prefix}.audit", 1, idle_s=seconds(0.5))
    dead = read_topic(endpoints, f"{prefix}.dlq", 1, idle_s=seconds(0.5))

    assert code == 0, err[-3000:]
    assert re.search(r"[1-9]\d* records delivered", err), err[-3000:]  # the secrets were used
    assert audit, "the producer's lifecycle is audited"
    assert_no_canary(out, err, repr(audit), repr(dead))


def test_produce_with_a_wrong_registry_url_never_logs_its_credentials() -> None:
    port = free_port()  # nothing listens there
    url = f"http://user:{canary('urlpassword')}@127.0.0.1:{port}/?token={canary('urltoken')}"
    env = pipeline_env(
        **usable_secret_env(),
        SCHEMA_REGISTRY_URL=url,
        SCHEMA_REGISTRY_TIMEOUT_S="0.5",
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        PIPELINE_OPS_HOST="127.0.0.1",
        PIPELINE_OPS_PORT=str(free_port()),
        GENESYS_API_URL="http://127.0.0.1:1",
        GENESYS_CLIENT_ID=DEMO_CLIENT_ID,
    )
    args = ["--log-level", "DEBUG", "--log-format", "json", "produce", str(SPEC)]
    with PipelineProcess([*args, "--duration", "3"], env) as proc:
        proc.wait_for(f"127.0.0.1:{port}", seconds(30), stream="err")
        proc.wait(seconds(60))
        out, err = proc.stdout, proc.stderr

    assert f"127.0.0.1:{port}" in err  # the URL is logged, without its secrets
    assert_no_canary(out, err)


class RefusingDashboard:
    """Answers 400 to the first ``rejects`` pushes (the batches are dead-lettered and
    audited), then 401 to every push (the worker stops with exit 2)."""

    def __init__(self, rejects: int) -> None:
        self.rejects = rejects
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self._push)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def _push(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        return web.Response(status=400 if self.requests <= self.rejects else 401)


async def test_dashboard_worker_never_leaks_a_secret(
    endpoints: Endpoints,
    group_timeouts: dict[str, int],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    stack = Stack(endpoints)
    await stack.start()
    dashboard = RefusingDashboard(rejects=2)
    await dashboard.up()
    try:
        await stack.publish_rounds(range(1))
        secrets = usable_secret_env()
        url = (
            f"http://pusher:{canary('dashurlpassword')}@127.0.0.1:{dashboard.port}/push"
            f"?access_token={canary('dashurltoken')}"
        )
        env = {
            **secrets,
            **stack.env(unique_name("canary"), group_timeouts["session.timeout.ms"], url, ""),
            "DASHBOARD_SECRET": secrets["DASHBOARD_SECRET"],
            "DASHBOARD_MAX_BATCH": "10",
        }
        log = tmp_path / "worker.log"
        with log.open("ab") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pipeline", "--log-level", "DEBUG", "worker", "dashboard",
                str(SPEC), env=pipeline_env(**env), stdout=sink, stderr=sink,
            )  # fmt: skip
        try:
            code = await asyncio.wait_for(proc.wait(), seconds(60))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        text = log.read_text()
        assert code == 2, text[-3000:]
        assert dashboard.requests == 3
        dead = await stack.dead_letters(idle_s=0.5)
        audit = await asyncio.to_thread(
            read_topic, endpoints, stack.topic("audit"), 1, idle_s=seconds(0.5)
        )
    finally:
        if dashboard.runner is not None:
            await dashboard.runner.cleanup()
        await stack.aclose()

    assert len(dead) == 2
    assert [r[2]["kind"] for r in audit].count("dashboard.rejected") == 2
    assert_no_canary(text, repr(dead), repr(audit))
    assert "127.0.0.1" in text.splitlines()[-1]  # the URL is named, without its secrets
