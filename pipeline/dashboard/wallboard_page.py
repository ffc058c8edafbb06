"""The wallboard's page: one self-contained HTML document (inline CSS and JavaScript).

It polls ``/api/state`` every second and draws one tile per queue with a data-age sparkline;
it loads no external resources.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PAGE"]

PAGE: Final = """<!doctype html>
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
