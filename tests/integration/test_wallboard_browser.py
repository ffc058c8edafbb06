"""The wallboard: signed pushes in over HTTP, tiles out in a real headless Chromium.

The browser test drives Debian's Chromium (``/usr/bin/chromium``, installed by ``make
install``) through Playwright; it fails, never skips, when the browser is missing.
"""

from __future__ import annotations

import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import SecretStr

from pipeline.core.workers.push import sign
from pipeline.dashboard.client import DashboardClient
from pipeline.dashboard.wallboard import Wallboard
from tests.conftest import seconds

SECRET = "wallboard-test-secret"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SALES = "6f1c2a9e-1111-4c3b-9d5e-aaaaaaaaaaaa"
SUPPORT = "0b7d4e21-2222-4a8f-8c1d-bbbbbbbbbbbb"


def value(
    queue: str,
    metric: str,
    number: float,
    event_ms: int,
    *,
    qualifier: str | None = None,
    media: str | None = None,
    stale: bool = False,
    unit: str = "count",
) -> dict[str, Any]:
    """One batch value, shaped as :meth:`pipeline.core.workers.latest.BatchValue.to_json`."""
    return {
        "key": f"{queue}|{metric}|{qualifier or ''}|{media or ''}",
        "entity_type": "queue",
        "entity_id": queue,
        "metric": metric,
        "qualifier": qualifier,
        "media_type": media,
        "value": number,
        "unit": unit,
        "event_time": event_ms,
        "interval_start": None,
        "interval_end": None,
        "stale": stale,
        "event_id": uuid.uuid4().hex,
        "ingest_time": event_ms + 5,
        "derived": metric[0] not in "otn",
        "backfill": False,
    }


def signed(payload: bytes, key: str, ts: int, secret: bytes = SECRET.encode()) -> dict[str, str]:
    """The headers of a push of ``payload`` under ``key``, signed at ``ts``."""
    return {
        "Idempotency-Key": key,
        "X-Signature-Timestamp": str(ts),
        "X-Signature-SHA256": sign(secret, ts, key, payload),
    }


def body(values: list[dict[str, Any]]) -> tuple[bytes, str]:
    """A batch body (bytes as signed) and its idempotency key."""
    key = uuid.uuid4().hex
    document = {"batch_id": 1, "idempotency_key": key, "generated_at": 0, "values": values}
    return orjson.dumps(document), key


def queue_values(queue: str, event_ms: int, waiting_voice: int, **kw: Any) -> list[dict[str, Any]]:
    """A full set of tile values for ``queue``."""
    return [
        value(queue, "oWaiting", waiting_voice, event_ms, media="voice", **kw),
        value(queue, "oWaiting", 2, event_ms, media="chat", **kw),
        value(queue, "oLongestWaiting", 95_000, event_ms, media="voice", unit="ms", **kw),
        value(queue, "oLongestWaiting", 30_000, event_ms, media="chat", unit="ms", **kw),
        value(queue, "oOnQueueUsers", 4, event_ms, qualifier="IDLE", **kw),
        value(queue, "oOnQueueUsers", 3, event_ms, qualifier="INTERACTING", **kw),
        value(queue, "oOnQueueUsers", 9, event_ms, qualifier="OFF_QUEUE", **kw),
        value(queue, "serviceLevelPercent", 87.5, event_ms, media="voice", unit="percent", **kw),
        value(queue, "averageSpeedOfAnswerMs", 12_000, event_ms, media="voice", unit="ms", **kw),
        value(queue, "averageHandleTimeMs", 245_000, event_ms, media="voice", unit="ms", **kw),
        value(queue, "abandonRatePercent", 3.25, event_ms, media="voice", unit="percent", **kw),
    ]


@pytest.fixture
async def wallboard() -> AsyncIterator[Wallboard]:
    board = Wallboard(
        "127.0.0.1", 0, SecretStr(SECRET), queue_names={SALES: "Sales"}, max_remembered_keys=100
    )
    await board.start()
    try:
        yield board
    finally:
        await board.aclose()


@pytest.fixture
async def client(wallboard: Wallboard) -> AsyncIterator[DashboardClient]:
    async with httpx.AsyncClient() as http:
        yield DashboardClient(http, f"{wallboard.url}/api/push", SecretStr(SECRET), 5.0)


# ------------------------------------------------------------------------------ plain HTTP
async def test_push_rejects_bad_signatures_and_malformed_bodies(wallboard: Wallboard) -> None:
    payload, key = body(queue_values(SALES, int(time.time() * 1000), 5))
    async with httpx.AsyncClient(base_url=wallboard.url) as http:
        ts = int(time.time())
        missing = await http.post("/api/push", content=payload, headers={"Idempotency-Key": key})
        wrong = await http.post(
            "/api/push", content=payload, headers=signed(payload, key, ts, secret=b"other")
        )
        tampered = payload.replace(b'"value":5', b'"value":6')
        assert tampered != payload
        altered = await http.post("/api/push", content=tampered, headers=signed(payload, key, ts))
        for response in (missing, wrong, altered):
            assert response.status_code == 401
            assert "signature" in response.json()["error"]
        for bad in (b"not json", b"[]", b'{"values": [{"key": 1}]}', b'{"values": 3}'):
            response = await http.post("/api/push", content=bad, headers=signed(bad, "x", ts))
            assert response.status_code == 400, bad
            assert response.json()["error"]
        state = (await http.get("/api/state")).json()
    assert state["tiles"] == []
    assert state["totals"]["values_held"] == 0
    assert state["totals"]["pushes"] == 0


async def test_push_is_idempotent_and_never_regresses(
    wallboard: Wallboard, client: DashboardClient
) -> None:
    now_ms = int(time.time() * 1000)
    first, first_key = body(queue_values(SALES, now_ms, 5))
    outcome = await client.push(first, first_key)
    assert outcome.status == 200
    async with httpx.AsyncClient(base_url=wallboard.url) as http:
        again = await http.post(
            "/api/push", content=first, headers=client.headers(first, first_key)
        )
        assert again.json() == {"accepted": 0, "duplicate": True}
        newer, newer_key = body([value(SALES, "oWaiting", 7, now_ms + 1000, media="voice")])
        assert (await client.push(newer, newer_key)).status == 200
        older, older_key = body([value(SALES, "oWaiting", 1, now_ms - 1000, media="voice")])
        late = await http.post("/api/push", content=older, headers=client.headers(older, older_key))
        assert late.status_code == 200
        assert late.json() == {"accepted": 0}
        state = (await http.get("/api/state")).json()
    [tile] = state["tiles"]
    assert tile["name"] == "Sales"
    assert tile["waiting"] == 7 + 2  # voice (newest, not regressed) + chat
    assert tile["longest_wait_ms"] == 95_000
    assert tile["agents_on_queue"] == 7  # IDLE + INTERACTING, OFF_QUEUE excluded
    assert tile["service_level_percent"] == 87.5
    assert tile["asa_ms"] == 12_000
    assert tile["aht_ms"] == 245_000
    assert tile["abandon_rate_percent"] == 3.25
    assert tile["freshness"] == "fresh"
    assert state["totals"]["pushes"] == 3
    assert state["totals"]["duplicates"] == 1
    assert state["totals"]["values_held"] == 11
    assert state["totals"]["last_push"] is not None


async def test_old_data_turns_stale_by_the_wallboard_clock() -> None:
    now = [1_700_000_000.0]
    board = Wallboard("127.0.0.1", 0, SecretStr(SECRET), clock=lambda: now[0])
    url = await board.start()
    try:
        async with httpx.AsyncClient() as http:
            client = DashboardClient(
                http, f"{url}/api/push", SecretStr(SECRET), 5.0, clock=lambda: now[0]
            )
            payload, key = body(queue_values(SUPPORT, int(now[0] * 1000), 1))
            assert (await client.push(payload, key)).status == 200
            for step in range(3):
                now[0] += 30.5
                tile = board.state()["tiles"][0]
                assert tile["age_s"] == pytest.approx(30.5 * (step + 1))
                assert tile["freshness"] == ("fresh" if step == 0 else "stale")
            assert tile["name"] == "0b7d4e21"  # the id's short form
            assert [p[1] for p in tile["history"]] == [30.5, 61.0, 91.5]
    finally:
        await board.aclose()


# ------------------------------------------------------------------------------ browser
def png_colors(png: bytes, limit: int = 50) -> int:
    """Distinct pixel colors of an 8-bit RGB(A) PNG, counted up to ``limit``."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8, depth
    assert color in (2, 6), color
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colors = bytearray(stride), set()
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 255
        if y % 8 == 0:
            colors.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp * 4))
            if len(colors) >= limit:
                return len(colors)
        previous = line
    return len(colors)


@pytest.fixture
def chromium() -> Path:
    """The browser binary; its absence fails the test (the project installs it)."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: `make install` installs Debian's chromium (as root), "
        "or run `apt-get install chromium`"
    )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


def tile_of(page: Page, queue: str) -> Any:
    return page.locator(f'[data-testid="queue-tile"][data-queue-id="{queue}"]')


async def test_tiles_render_update_and_go_stale_in_chromium(
    wallboard: Wallboard, client: DashboardClient, browser: Browser, tmp_path: Path
) -> None:
    timeout_ms = seconds(5) * 1000
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    blank = await page.screenshot()

    now_ms = int(time.time() * 1000)
    payload, key = body(queue_values(SALES, now_ms, 5) + queue_values(SUPPORT, now_ms, 1))
    assert (await client.push(payload, key)).status == 200
    await page.goto(wallboard.url)

    sales, support = tile_of(page, SALES), tile_of(page, SUPPORT)
    await expect(sales).to_have_count(1, timeout=timeout_ms)
    await expect(support).to_have_count(1, timeout=timeout_ms)
    await expect(sales.get_by_test_id("queue-name")).to_have_text("Sales")
    await expect(support.get_by_test_id("queue-name")).to_have_text("0b7d4e21")
    await expect(sales.get_by_test_id("waiting")).to_have_attribute("data-value", "7")
    await expect(sales.get_by_test_id("waiting")).to_contain_text("7")
    await expect(sales.get_by_test_id("longest_wait_ms")).to_contain_text("1:35")
    await expect(sales.get_by_test_id("agents_on_queue")).to_contain_text("7")
    await expect(sales.get_by_test_id("service_level_percent")).to_contain_text("87.5%")
    await expect(sales.get_by_test_id("asa_ms")).to_contain_text("0:12")
    await expect(sales.get_by_test_id("aht_ms")).to_contain_text("4:05")
    await expect(sales.get_by_test_id("abandon_rate_percent")).to_contain_text("3.3%")
    await expect(sales.get_by_test_id("badge")).to_have_text("fresh")
    await expect(support.get_by_test_id("waiting")).to_have_attribute("data-value", "3")

    # An update reaches the open page by polling, within a few seconds.
    update, update_key = body([value(SALES, "oWaiting", 12, now_ms + 500, media="voice")])
    assert (await client.push(update, update_key)).status == 200
    await expect(sales.get_by_test_id("waiting")).to_have_attribute(
        "data-value", "14", timeout=timeout_ms
    )

    # A value flagged stale turns its tile's badge red; the other tile stays fresh.
    stale, stale_key = body(
        [value(SUPPORT, "oWaiting", 4, now_ms + 600, media="voice", stale=True)]
    )
    assert (await client.push(stale, stale_key)).status == 200
    await expect(support.get_by_test_id("badge")).to_have_text("stale", timeout=timeout_ms)
    await expect(support).to_have_attribute("data-freshness", "stale")
    assert (
        await support.get_by_test_id("badge").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(220, 38, 38)"
    )
    assert (
        await sales.get_by_test_id("badge").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(22, 163, 74)"
    )
    await expect(page.locator("#pushes")).to_have_text("3")

    # Let the sparkline collect a few age samples, then keep a picture of the board.
    await expect(sales.locator("polyline")).to_have_count(1, timeout=timeout_ms)
    shot = tmp_path / "wallboard.png"
    png = await page.screenshot(path=str(shot), full_page=True)
    assert len(png) > 10_000
    assert png != blank
    assert png_colors(blank) == 1
    assert png_colors(png) >= 20
    await page.close()
