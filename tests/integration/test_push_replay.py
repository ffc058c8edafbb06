"""Replay protection of the dashboard push, over real HTTP: the signing client and the wallboard.

A captured push cannot be re-sent with another idempotency key, altered, or replayed after
its window; a re-sent batch (the worker's retry after a timeout) is applied once; and the
same value going fresh → stale → fresh is three states, each applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from pipeline.core.workers.latest import Batch, LatestValues
from pipeline.dashboard.client import DashboardClient
from pipeline.dashboard.wallboard import Wallboard
from pipeline.errors import ConfigError
from pipeline.local.stack import Endpoints
from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
from pipeline.settings import DashboardSettings, KafkaSettings, RegistrySettings
from tests.conftest import seconds
from tests.polling import until
from tests.processes import PipelineProcess, pipeline_env
from tests.records import metric_record
from tests.workers import KEYS, Stack, running

SECRET = "replay-test-secret-0f3a"
WORKER_SECRET = "worker-replay-secret-9b2d"
T0 = 1_800_000_000.0
TOPIC = "genesys.metrics"


class Rig:
    """A wallboard and a client that share one settable clock."""

    def __init__(self) -> None:
        self.now = T0
        self.board = Wallboard("127.0.0.1", 0, SecretStr(SECRET), clock=lambda: self.now)
        self.http = httpx.AsyncClient()
        self.client: DashboardClient | None = None

    @property
    def push_url(self) -> str:
        return f"{self.board.url}/api/push"

    async def start(self) -> None:
        await self.board.start()
        self.client = DashboardClient(
            self.http, self.push_url, SecretStr(SECRET), 5.0, clock=lambda: self.now
        )

    async def send(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.push_url, content=body, headers=headers)

    async def push(self, batch: Batch) -> httpx.Response:
        """Sign and send ``batch`` now, as the worker does (the body made once per batch)."""
        assert self.client is not None
        body = orjson.dumps(batch.body(self.now))
        return await self.send(body, self.client.headers(body, batch.idempotency_key))

    def totals(self) -> dict[str, Any]:
        totals: dict[str, Any] = self.board.state()["totals"]
        return totals


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.start()
    try:
        yield rig
    finally:
        await rig.http.aclose()
        await rig.board.aclose()


def one_value_batch(values: LatestValues, *, stale: bool = False) -> Batch:
    batch = values.take_batch(10, is_stale=lambda _: stale)
    assert batch is not None
    return batch


async def captured(rig: Rig) -> tuple[bytes, dict[str, str]]:
    """A push that was applied, as an eavesdropper recorded it."""
    values = LatestValues("capture")
    values.offer(metric_record(), TOPIC, 0, 0)
    batch = one_value_batch(values)
    body = orjson.dumps(batch.body(rig.now))
    assert rig.client is not None
    headers = rig.client.headers(body, batch.idempotency_key)
    first = await rig.send(body, headers)
    assert first.json() == {"accepted": 1}
    return body, headers


async def test_a_captured_push_with_a_new_idempotency_key_is_refused(rig: Rig) -> None:
    body, headers = await captured(rig)

    replay = await rig.send(body, {**headers, "Idempotency-Key": "a-fresh-key"})
    # The body's own idempotency_key changed too: still not signed so.
    rewritten = body.replace(headers["Idempotency-Key"].encode(), b"a-fresh-key")
    both = await rig.send(rewritten, {**headers, "Idempotency-Key": "a-fresh-key"})

    assert replay.status_code == both.status_code == 401
    assert "signature does not match" in replay.json()["error"]
    assert rig.totals()["pushes"] == 1


async def test_a_captured_push_replayed_within_the_window_is_a_duplicate(rig: Rig) -> None:
    body, headers = await captured(rig)
    rig.now += 299

    replay = await rig.send(body, headers)

    assert replay.json() == {"accepted": 0, "duplicate": True}
    assert rig.totals()["pushes"] == 1


async def test_a_captured_push_replayed_after_the_window_is_refused(rig: Rig) -> None:
    body, headers = await captured(rig)
    rig.now += 301  # the wallboard has forgotten the key by now: the timestamp refuses it

    replay = await rig.send(body, headers)

    assert replay.status_code == 401
    assert "outside the allowed window" in replay.json()["error"]
    assert rig.totals()["pushes"] == 1
    assert rig.totals()["duplicates"] == 0


async def test_a_push_signed_in_the_future_is_refused(rig: Rig) -> None:
    values = LatestValues("future")
    values.offer(metric_record(), TOPIC, 0, 0)
    batch = one_value_batch(values)
    rig.now += 400
    body = orjson.dumps(batch.body(rig.now))
    assert rig.client is not None
    headers = rig.client.headers(body, batch.idempotency_key)
    rig.now -= 400

    response = await rig.send(body, headers)

    assert response.status_code == 401


async def test_a_captured_push_with_a_modified_body_is_refused(rig: Rig) -> None:
    body, headers = await captured(rig)
    forged = body.replace(b'"value":3.0', b'"value":99.0')
    assert forged != body

    response = await rig.send(forged, headers)

    assert response.status_code == 401
    assert rig.board.state()["totals"]["values_held"] == 1
    assert rig.totals()["pushes"] == 1


async def test_fresh_stale_fresh_of_one_value_is_applied_each_time(rig: Rig) -> None:
    values = LatestValues("worker-run")
    values.offer(metric_record(), TOPIC, 0, 0)
    answers = []
    for stale in (False, True, False):
        batch = one_value_batch(values, stale=stale)
        answers.append((await rig.push(batch)).json())
        values.acknowledged(batch.batch_id)
        values.touch([batch.values[0].key])  # the staleness rule changed its mind
        rig.now += 30

    assert answers == [{"accepted": 1}] * 3
    assert rig.totals()["pushes"] == 3
    assert rig.totals()["duplicates"] == 0


async def test_a_batch_re_sent_after_a_timeout_is_applied_once(rig: Rig) -> None:
    values = LatestValues("worker-run")
    values.offer(metric_record(), TOPIC, 0, 0)
    batch = one_value_batch(values)
    body = orjson.dumps(batch.body(rig.now))
    assert rig.client is not None
    first = await rig.send(body, rig.client.headers(body, batch.idempotency_key))
    assert first.json() == {"accepted": 1}  # applied, but say the answer was lost
    rig.now += 120  # backoff; the re-send is signed anew, same bytes and key

    again = await rig.send(body, rig.client.headers(body, batch.idempotency_key))

    assert again.json() == {"accepted": 0, "duplicate": True}
    assert rig.totals()["pushes"] == 1
    assert rig.totals()["duplicates"] == 1


async def test_a_restarted_worker_pushing_the_same_values_is_not_a_duplicate(rig: Rig) -> None:
    # Batch ids restart at 1 after a restart; a new generation keeps the keys apart.
    for generation in ("run-1", "run-2"):
        values = LatestValues(generation)
        values.offer(metric_record(), TOPIC, 0, 0)
        answer = await rig.push(one_value_batch(values))
        assert answer.json() == {"accepted": 1}

    assert rig.totals()["duplicates"] == 0


# ---------------------------------------------------------------------------- the command
@pytest.mark.parametrize("secret", ["change-me", "demo-dashboard-secret", ""])
def test_wallboard_refuses_a_default_secret_without_the_dev_flag(secret: str) -> None:
    with PipelineProcess(
        ["wallboard", "--port", "0"], pipeline_env(DASHBOARD_SECRET=secret)
    ) as proc:
        code = proc.wait(seconds(30))
        lines = proc.stderr.strip().splitlines()

    assert code == 2, proc.output()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: DASHBOARD_SECRET")
    assert proc.stdout == ""


def test_wallboard_takes_a_default_secret_with_the_dev_flag() -> None:
    args = ["wallboard", "--port", "0", "--insecure-dev-secret", "--duration", "0.2"]
    with PipelineProcess(args, pipeline_env(DASHBOARD_SECRET="change-me")) as proc:
        proc.wait_for(r"^WALLBOARD_URL=http://127\.0\.0\.1:\d+$", seconds(30))
        code = proc.wait(seconds(30))

    assert code == 0, proc.output()


def test_dashboard_worker_refuses_an_empty_secret() -> None:
    spec = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
    env = pipeline_env(DASHBOARD_SECRET="", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    with PipelineProcess(["worker", "dashboard", str(spec)], env) as proc:
        code = proc.wait(seconds(30))
        lines = proc.stderr.strip().splitlines()

    assert code == 2, proc.output()
    assert lines == ["error: set DASHBOARD_SECRET: pushes are signed with HMAC-SHA256"]


async def test_dashboard_worker_service_refuses_an_empty_secret() -> None:
    config = DashboardConfig(
        KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        RegistrySettings(url="http://127.0.0.1:1"),
        dashboard=DashboardSettings(secret=SecretStr("")),
    )
    with pytest.raises(ConfigError, match="DASHBOARD_SECRET"):
        await DashboardWorker(config).run(asyncio.Event())


# ---------------------------------------------------------------------------- the worker
class LostFirstAnswer:
    """A proxy in front of the wallboard that delivers every push but answers the first one
    only after the worker's timeout: the batch is applied and the worker never hears so."""

    def __init__(self, http: httpx.AsyncClient, target: str, delay_s: float) -> None:
        self.http = http
        self.target = target
        self.delay_s = delay_s
        self.requests = 0
        self.keys: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/push", self._push)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/api/push"

    async def _push(self, request: web.Request) -> web.Response:
        self.requests += 1
        first = self.requests == 1
        self.keys.append(request.headers["Idempotency-Key"])
        forwarded = await self.http.post(
            self.target, content=await request.read(), headers=dict(request.headers)
        )
        if first:
            await asyncio.sleep(self.delay_s)  # the fault: the answer comes too late
        return web.Response(status=forwarded.status_code, body=forwarded.content)


async def test_the_worker_re_sends_a_timed_out_batch_and_it_is_applied_once(
    endpoints: Endpoints, group_timeouts: dict[str, int], unique_name: Callable[[str], str]
) -> None:
    stack = Stack(endpoints)
    board = Wallboard("127.0.0.1", 0, SecretStr(WORKER_SECRET))
    await stack.start()
    await board.start()
    async with httpx.AsyncClient() as http:
        proxy = LostFirstAnswer(http, f"{board.url}/api/push", delay_s=1.0)
        await proxy.start()
        group = unique_name("resend")
        config = stack.dashboard_config(
            proxy.url, group, group_timeouts["session.timeout.ms"], WORKER_SECRET, timeout_s=0.3
        )
        try:
            await stack.publish_rounds(range(1))
            async with running(DashboardWorker(config)):

                async def all_committed() -> bool:
                    return await asyncio.to_thread(stack.committed, group) == KEYS

                await until(all_committed, seconds(30), message="every record committed")
        finally:
            assert proxy.runner is not None
            await proxy.runner.cleanup()
            await board.aclose()
            await stack.aclose()
    totals = board.state()["totals"]

    assert proxy.keys[0] == proxy.keys[1], "the re-send carries the batch's key"
    assert totals["duplicates"] == 1, totals
    assert totals["pushes"] == len(set(proxy.keys)), totals
    assert totals["values_held"] == KEYS
