"""A live wallboard: the real receiving end of the dashboard worker's signed pushes.

``POST /api/push`` takes the batches of :class:`pipeline.dashboard.client.DashboardClient`
(body as :meth:`pipeline.core.workers.latest.Batch.body` makes it):

- 413 (JSON error) for a body over ``max_body_bytes`` (:data:`DEFAULT_MAX_BODY_BYTES`, 1 MiB:
  aiohttp's default, and a common limit of web servers and proxies); nothing of it is read;
- 401 (JSON error) unless ``X-Signature-SHA256`` is the signature of timestamp, idempotency
  key and exact body (:func:`pipeline.core.workers.push.verify`, recipe in the README's
  "Security" section) and ``X-Signature-Timestamp`` is within ``max_skew_s`` (default 5 min)
  of the wallboard's clock: a captured push cannot be re-sent with another key, altered, or
  replayed once expired;
- 400 (JSON error) on a malformed body, or a body ``idempotency_key`` other than the signed
  header's; nothing of it is applied;
- each ``Idempotency-Key`` is applied once: it is remembered until its newest signature
  expires (:class:`~pipeline.core.workers.push.SeenKeys`), a repeat answers
  ``{"accepted": 0, "duplicate": true}``; with ``max_remembered_keys`` keys inside one window
  a new key gets 429 (``Retry-After: 1``) rather than forgetting one too early;
- per value ``key`` the value with the newest ``event_time`` is kept: an older one arriving
  late never regresses it (an equal ``event_time`` replaces, so a staleness change lands);
- 200 ``{"accepted": n}``: how many values changed what the wallboard holds.

``GET /api/state`` is the tiles as JSON, one per queue (fields:
:mod:`pipeline.dashboard.wallboard_tiles`), each with its ``history``: up to
:data:`HISTORY_POINTS` ``[epoch_ms, age_s]`` samples of ``age_s``, at most one per second,
taken whenever the state is read (the page reads it every second). ``totals`` carries pushes
applied, duplicates, rejected requests, values held and the last push time (epoch ms).

``GET /`` is a self-contained page (:mod:`pipeline.dashboard.wallboard_page`) that polls
``/api/state`` every second and draws one tile per queue with a data-age sparkline.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from pipeline.core.workers.push import (
    DEFAULT_MAX_SKEW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Admission,
    SeenKeys,
    SignatureCheck,
    is_default_secret,
    verify,
)
from pipeline.dashboard.wallboard_page import PAGE
from pipeline.dashboard.wallboard_tiles import STALE_AFTER_S, BadBody, parse_push, queue_tiles
from pipeline.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_REMEMBERED_KEYS", "HISTORY_POINTS", "Wallboard"]

log = logging.getLogger(__name__)

HISTORY_POINTS = 60
"""Data-age samples kept per queue."""
DEFAULT_REMEMBERED_KEYS = 100_000
"""Idempotency keys held at most within one signature window."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""The largest push body taken; a larger one gets 413."""


@dataclass(slots=True)
class _Totals:
    pushes: int = 0
    duplicates: int = 0
    rejected: int = 0
    too_large: int = 0
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
        clock: epoch seconds (tests may pass their own); also the signature window's clock.
        max_remembered_keys: idempotency keys held at most within one window.
        max_body_bytes: the largest push body taken (413 above it).
        max_skew_s: how far a signature timestamp may be from ``clock``, either way.
        insecure_dev_secret: accept an empty or well-known secret (``change-me``,
            ``demo-dashboard-secret``, ...): the demo and local development only.

    Raises:
        ConfigError: the secret is empty or well known and ``insecure_dev_secret`` is False.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secret: SecretStr,
        *,
        queue_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        max_remembered_keys: int = DEFAULT_REMEMBERED_KEYS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        insecure_dev_secret: bool = False,
    ) -> None:
        if is_default_secret(secret.get_secret_value()) and not insecure_dev_secret:
            raise ConfigError(
                "DASHBOARD_SECRET is empty or a well-known example value: set a random secret "
                "(e.g. `openssl rand -hex 32`), or pass --insecure-dev-secret for local use"
            )
        self._host = host
        self._port = port
        self._secret = secret
        self._queue_names = dict(queue_names or {})
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._max_skew_s = max_skew_s
        self._seen = SeenKeys(max_skew_s, max_remembered_keys)
        self._values: dict[str, dict[str, Any]] = {}
        self._totals = _Totals()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"Wallboard(url={self.url!r})"

    async def start(self) -> str:
        """Listen; returns the base URL."""
        app = web.Application(client_max_size=self._max_body_bytes)
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
                "too_large": totals.too_large,
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

    async def _push(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._totals.too_large += 1
            limit = self._max_body_bytes
            return web.json_response({"error": f"body over {limit} bytes"}, status=413)
        key = request.headers.get("Idempotency-Key", "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        check = verify(
            self._secret.get_secret_value().encode(),
            timestamp=timestamp,
            idempotency_key=key,
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            now=self._clock(),
            max_skew_s=self._max_skew_s,
        )
        if check is not SignatureCheck.VALID:
            self._totals.bad_signatures += 1
            return web.json_response({"error": f"bad signature: {check.value}"}, status=401)
        try:
            body_key, values = parse_push(body)
        except BadBody as exc:
            self._totals.rejected += 1
            return web.json_response({"error": str(exc)}, status=400)
        if body_key is not None and body_key != key:
            self._totals.rejected += 1
            error = "body idempotency_key differs from the signed Idempotency-Key header"
            return web.json_response({"error": error}, status=400)
        admission = self._seen.admit(key, int(timestamp), self._clock())
        if admission is Admission.FULL:
            return web.json_response(
                {"error": "too many pushes in one window"}, status=429, headers={"Retry-After": "1"}
            )
        if admission is Admission.DUPLICATE:
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
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8")
