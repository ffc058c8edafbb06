"""A live wallboard: the real receiving end of the dashboard worker's signed pushes.

``POST /api/push`` takes the batches of :class:`pipeline.dashboard.client.DashboardClient`
(body as :meth:`pipeline.core.workers.latest.Batch.body` makes it):

- 401 (JSON error) unless ``X-Signature-SHA256`` is the HMAC-SHA256 of the exact body;
- 400 (JSON error) on a malformed body; nothing of it is applied;
- each ``Idempotency-Key`` (header, else the body's ``idempotency_key``) is applied once: the
  last :data:`DEFAULT_REMEMBERED_KEYS` keys are remembered, a repeat answers
  ``{"accepted": 0, "duplicate": true}``;
- per value ``key`` the value with the newest ``event_time`` is kept: an older one arriving
  late never regresses it (an equal ``event_time`` replaces, so a staleness change lands);
- 200 ``{"accepted": n}``: how many values changed what the wallboard holds.

``GET /api/state`` is the tiles as JSON, one per queue (values of ``entity_type`` ``queue``):

- ``waiting``: ``oWaiting`` summed over media types;
- ``longest_wait_ms``: the largest ``oLongestWaiting`` over media types;
- ``agents_on_queue``: ``oOnQueueUsers`` summed over its qualifiers (routing statuses)
  except ``OFF_QUEUE``: agents on queue whatever they are doing (idle, interacting, …);
- ``service_level_percent``, ``asa_ms``, ``aht_ms``, ``abandon_rate_percent``: the KPIs
  ``serviceLevelPercent``, ``averageSpeedOfAnswerMs``, ``averageHandleTimeMs``,
  ``abandonRatePercent``; with several media types, the one with the newest ``event_time``;
- ``freshness``: ``stale`` when any value of the tile is flagged stale, or when its newest
  ``event_time`` is older than :data:`STALE_AFTER_S` by the wallboard's clock; else ``fresh``;
- ``age_s``: seconds since the tile's newest ``event_time`` (wallboard clock);
- ``history``: up to :data:`HISTORY_POINTS` ``[epoch_ms, age_s]`` samples of ``age_s``, at
  most one per second, taken whenever the state is read (the page reads it every second).

Missing metrics are ``null`` (never taken as zero). ``totals`` carries pushes applied,
duplicates, rejected requests, values held and the last push time (epoch ms).

``GET /`` is a self-contained page (inline CSS and JavaScript, no external resources) that
polls ``/api/state`` every second and draws one tile per queue with a data-age sparkline.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from pipeline.core.workers.push import verify

__all__ = [
    "DEFAULT_REMEMBERED_KEYS",
    "HISTORY_POINTS",
    "STALE_AFTER_S",
    "Wallboard",
    "queue_tiles",
]

log = logging.getLogger(__name__)

STALE_AFTER_S = 60.0
"""A tile whose newest value is older than this (seconds) is stale."""
HISTORY_POINTS = 60
"""Data-age samples kept per queue."""
DEFAULT_REMEMBERED_KEYS = 10_000
"""Idempotency keys remembered (oldest forgotten first)."""

_REQUIRED: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "entity_type": (str,),
    "entity_id": (str,),
    "metric": (str,),
    "event_time": (int,),
}
_OPTIONAL_STR = ("qualifier", "media_type", "unit")


class _BadBody(ValueError):
    pass


def _check_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadBody("each value must be an object")
    for name, types in _REQUIRED.items():
        item = value.get(name)
        if not isinstance(item, types) or isinstance(item, bool):
            raise _BadBody(f"value field {name!r} is missing or of the wrong type")
    for name in _OPTIONAL_STR:
        if value.get(name) is not None and not isinstance(value[name], str):
            raise _BadBody(f"value field {name!r} must be a string or null")
    number = value.get("value")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number)
    ):
        raise _BadBody("value field 'value' must be a finite number or null")
    if not isinstance(value.get("stale", False), bool):
        raise _BadBody("value field 'stale' must be a boolean")
    return value


def _parse(body: bytes) -> tuple[str | None, list[dict[str, Any]]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _BadBody("body is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("values"), list):
        raise _BadBody("body must be an object with a 'values' list")
    key = document.get("idempotency_key")
    return (key if isinstance(key, str) else None), [_check_value(v) for v in document["values"]]


def _newest(values: list[dict[str, Any]]) -> float | None:
    if not values:
        return None
    best = max(values, key=lambda v: v["event_time"])
    number = best.get("value")
    return None if number is None else float(number)


def _short(queue_id: str) -> str:
    return queue_id.split("-", 1)[0][:8] or queue_id


def queue_tiles(
    values: Mapping[str, Mapping[str, Any]],
    now: float,
    queue_names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The tiles (without history) computed from the values held.

    Args:
        values: the held values, by key (as pushed).
        now: the wallboard's clock, epoch seconds.
        queue_names: display names by queue id (else the id's short form).

    Returns:
        One tile per queue, ordered by display name (see the module docstring for fields).
    """
    by_queue: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for value in values.values():
        if value["entity_type"] == "queue":
            metrics = by_queue.setdefault(value["entity_id"], {})
            metrics.setdefault(value["metric"], []).append(dict(value))
    names = queue_names or {}
    tiles = []
    for queue_id, metrics in by_queue.items():
        all_values = [v for vs in metrics.values() for v in vs]
        newest_ms = max(v["event_time"] for v in all_values)
        age_s = max(0.0, now - newest_ms / 1000)
        any_stale = any(v.get("stale") for v in all_values)
        waiting = metrics.get("oWaiting")
        longest = [v["value"] for v in metrics.get("oLongestWaiting", []) if v["value"] is not None]
        on_queue = [
            v["value"]
            for v in metrics.get("oOnQueueUsers", [])
            if v.get("qualifier") != "OFF_QUEUE" and v["value"] is not None
        ]
        tiles.append(
            {
                "queue_id": queue_id,
                "name": names.get(queue_id, _short(queue_id)),
                "waiting": (sum(v["value"] or 0 for v in waiting) if waiting is not None else None),
                "longest_wait_ms": max(longest) if longest else None,
                "agents_on_queue": sum(on_queue) if on_queue else None,
                "service_level_percent": _newest(metrics.get("serviceLevelPercent", [])),
                "asa_ms": _newest(metrics.get("averageSpeedOfAnswerMs", [])),
                "aht_ms": _newest(metrics.get("averageHandleTimeMs", [])),
                "abandon_rate_percent": _newest(metrics.get("abandonRatePercent", [])),
                "freshness": "stale" if any_stale or age_s > STALE_AFTER_S else "fresh",
                "any_value_stale": any_stale,
                "newest_event_time": newest_ms,
                "age_s": round(age_s, 3),
                "values": len(all_values),
            }
        )
    tiles.sort(key=lambda t: (t["name"], t["queue_id"]))
    return tiles


@dataclass(slots=True)
class _Totals:
    pushes: int = 0
    duplicates: int = 0
    rejected: int = 0
    bad_signatures: int = 0
    last_push_ms: int | None = None
    history: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)


class Wallboard:
    """The wallboard server (push endpoint, state API and page).

    Args:
        host: interface to bind.
        port: port (0: any free port).
        secret: the shared HMAC-SHA256 key of the push signatures.
        queue_names: display names by queue id (else the id's short form).
        clock: epoch seconds (tests may pass their own).
        remembered_keys: how many idempotency keys to remember.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secret: SecretStr,
        *,
        queue_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        remembered_keys: int = DEFAULT_REMEMBERED_KEYS,
    ) -> None:
        self._host = host
        self._port = port
        self._secret = secret
        self._queue_names = dict(queue_names or {})
        self._clock = clock
        self._remembered = remembered_keys
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._values: dict[str, dict[str, Any]] = {}
        self._totals = _Totals()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"Wallboard(url={self.url!r})"

    async def start(self) -> str:
        """Listen; returns the base URL."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/push", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        port = self._runner.addresses[0][1]
        host = "127.0.0.1" if self._host in {"0.0.0.0", ""} else self._host  # noqa: S104
        self.url = f"http://{host}:{port}"
        log.info("wallboard on %s (push to %s/api/push)", self.url, self.url)
        return self.url

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def state(self) -> dict[str, Any]:
        """The tiles and totals now (also records a data-age sample per queue)."""
        now = self._clock()
        now_ms = int(now * 1000)
        tiles = queue_tiles(self._values, now, self._queue_names)
        history = self._totals.history
        for tile in tiles:
            points = history.setdefault(tile["queue_id"], deque(maxlen=HISTORY_POINTS))
            if not points or now_ms - points[-1][0] >= 1000:
                points.append((now_ms, tile["age_s"]))
            tile["history"] = [list(p) for p in points]
        totals = self._totals
        return {
            "now": now_ms,
            "stale_after_s": STALE_AFTER_S,
            "tiles": tiles,
            "totals": {
                "pushes": totals.pushes,
                "duplicates": totals.duplicates,
                "rejected": totals.rejected,
                "bad_signatures": totals.bad_signatures,
                "values_held": len(self._values),
                "last_push": totals.last_push_ms,
            },
        }

    def _apply(self, values: list[dict[str, Any]]) -> int:
        accepted = 0
        for value in values:
            current = self._values.get(value["key"])
            if current is not None and value["event_time"] < current["event_time"]:
                continue
            self._values[value["key"]] = value
            accepted += 1
        return accepted

    def _remember(self, key: str) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        while len(self._seen) > self._remembered:
            self._seen.popitem(last=False)
        return True

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Signature-SHA256", "")
        if not verify(body, signature, self._secret.get_secret_value().encode()):
            self._totals.bad_signatures += 1
            return web.json_response({"error": "bad or missing signature"}, status=401)
        try:
            body_key, values = _parse(body)
        except _BadBody as exc:
            self._totals.rejected += 1
            return web.json_response({"error": str(exc)}, status=400)
        key = request.headers.get("Idempotency-Key") or body_key
        if not key:
            self._totals.rejected += 1
            return web.json_response({"error": "no idempotency key"}, status=400)
        if not self._remember(key):
            self._totals.duplicates += 1
            return web.json_response({"accepted": 0, "duplicate": True})
        accepted = self._apply(values)
        self._totals.pushes += 1
        self._totals.last_push_ms = int(self._clock() * 1000)
        return web.json_response({"accepted": accepted})

    async def _state(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(self.state()),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html", charset="utf-8")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Queue wallboard</title>
<style>
  :root { color-scheme: dark; }
  body { margin: 0; font: 15px/1.35 system-ui, sans-serif; background: #0f172a; color: #e2e8f0; }
  header { display: flex; gap: 1.5rem; align-items: baseline; padding: .8rem 1.2rem;
           background: #1e293b; border-bottom: 1px solid #334155; }
  header h1 { font-size: 1.2rem; margin: 0; }
  header .totals { color: #94a3b8; font-size: .9rem; }
  #conn.down { color: #f87171; }
  main { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr));
         gap: 1rem; padding: 1.2rem; }
  .tile { background: #1e293b; border: 2px solid #22c55e; border-radius: 10px;
          padding: .8rem 1rem; }
  .tile.stale { border-color: #ef4444; }
  .tile h2 { display: flex; justify-content: space-between; margin: 0 0 .6rem; font-size: 1.1rem; }
  .badge { font-size: .75rem; padding: .15rem .5rem; border-radius: 999px; font-weight: 700;
           text-transform: uppercase; background: #16a34a; color: #fff; }
  .badge.stale { background: #dc2626; }
  .big { display: grid; grid-template-columns: repeat(3, 1fr); gap: .4rem; margin-bottom: .5rem; }
  .big div, .kpis div { background: #0f172a; border-radius: 6px; padding: .35rem .5rem; }
  .big b { display: block; font-size: 1.7rem; }
  .kpis { display: grid; grid-template-columns: repeat(2, 1fr); gap: .4rem; }
  .kpis b { float: right; }
  small, .label { color: #94a3b8; font-size: .78rem; white-space: nowrap; }
  .age { display: flex; justify-content: space-between; align-items: center; margin-top: .5rem; }
  svg { background: #0f172a; border-radius: 4px; }
  #empty { padding: 2rem; color: #94a3b8; }
</style></head>
<body>
<header><h1>Queue wallboard</h1>
  <span class="totals" data-testid="totals">pushes <b id="pushes">0</b> ·
    values <b id="values">0</b> · last push <b id="last-push">never</b></span>
  <span id="conn" class="totals">connecting…</span></header>
<main id="tiles"><div id="empty">No queue data yet.</div></main>
<script>
"use strict";
const FIELDS = [
  ["waiting", "Waiting", v => String(Math.round(v))],
  ["longest_wait_ms", "Longest wait", v => clock(v / 1000)],
  ["agents_on_queue", "On queue", v => String(Math.round(v))],
];
const KPIS = [
  ["service_level_percent", "Service level", v => v.toFixed(1) + "%"],
  ["asa_ms", "ASA", v => clock(v / 1000)],
  ["aht_ms", "AHT", v => clock(v / 1000)],
  ["abandon_rate_percent", "Abandoned", v => v.toFixed(1) + "%"],
];
function clock(s) {
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60), r = s % 60;
  return m + ":" + String(r).padStart(2, "0");
}
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function metric(name, label, value, fmt) {
  const box = el("div", {"data-testid": name, "data-value": value === null ? "" : String(value)});
  box.append(el("span", {"class": "label"}, label), el("b", {}, value === null ? "–" : fmt(value)));
  return box;
}
function spark(history) {
  const NS = "http://www.w3.org/2000/svg", w = 120, h = 28;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("data-testid", "sparkline");
  if (history.length > 1) {
    const t0 = history[0][0], t1 = history[history.length - 1][0];
    const top = Math.max(1, ...history.map(p => p[1]));
    const pts = history.map(p => [
      ((p[0] - t0) / Math.max(1, t1 - t0)) * (w - 4) + 2,
      h - 2 - (p[1] / top) * (h - 4)]);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.map(p => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#38bdf8");
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  return svg;
}
function tile(t) {
  const stale = t.freshness === "stale";
  const box = el("section", {"class": "tile" + (stale ? " stale" : ""),
    "data-testid": "queue-tile", "data-queue-id": t.queue_id, "data-freshness": t.freshness});
  const title = el("h2", {}, "");
  title.append(el("span", {"data-testid": "queue-name", "title": t.queue_id}, t.name),
    el("span", {"class": "badge" + (stale ? " stale" : ""), "data-testid": "badge"}, t.freshness));
  const big = el("div", {"class": "big"});
  for (const [k, label, fmt] of FIELDS) big.append(metric(k, label, t[k], fmt));
  const kpis = el("div", {"class": "kpis"});
  for (const [k, label, fmt] of KPIS) kpis.append(metric(k, label, t[k], fmt));
  const age = el("div", {"class": "age"});
  age.append(el("small", {"data-testid": "age", "data-value": String(t.age_s)},
    "data age " + t.age_s.toFixed(1) + " s"), spark(t.history));
  box.append(title, big, kpis, age);
  return box;
}
async function poll() {
  const conn = document.getElementById("conn");
  try {
    const r = await fetch("/api/state", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    const main = document.getElementById("tiles");
    main.replaceChildren(...(s.tiles.length ? s.tiles.map(tile)
      : [el("div", {"id": "empty"}, "No queue data yet.")]));
    document.getElementById("pushes").textContent = s.totals.pushes;
    document.getElementById("values").textContent = s.totals.values_held;
    document.getElementById("last-push").textContent = s.totals.last_push === null ? "never"
      : new Date(s.totals.last_push).toLocaleTimeString();
    conn.textContent = "live"; conn.className = "totals";
    document.body.dataset.updated = String(s.now);
  } catch (e) {
    conn.textContent = "wallboard unreachable"; conn.className = "totals down";
  }
}
poll();
setInterval(poll, 1000);
</script>
</body></html>
"""
