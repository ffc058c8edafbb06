"""A minimal fake Genesys Cloud for bench_service.py: just enough for ``pipeline produce``.

Not the emulator: no simulation, no limits, no faults. It answers the OAuth token, channel
create, PUT/GET subscriptions (every topic ``Permitted``), HEAD channel (200), empty-but-valid
analytics queries and directory listings, application pings, and serves the channel's
WebSocket. The bench drives it through two admin routes:

- ``GET /__bench/state``: ``{"sockets": n, "topics": n}`` (connected sockets, subscribed topics);
- ``POST /__bench/flood`` ``{"frames": n, "rate": r}``: sends ``n`` aggregate frames (the
  envelope and ``v2.analytics.queues.{id}.observations`` aggregate shape of
  bench_hot_path.py: 8 metrics) round-robin over the subscribed queue topics to every
  connected socket, as fast as the sockets take them (``rate`` 0) or paced at ``rate`` frames
  per second; answers ``{"seconds": s}`` once the last one is written.

Run: ``python bench/fake_genesys.py --port P`` (prints ``FAKE_GENESYS_URL=...`` when ready).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson
from aiohttp import WSMsgType, web

__all__ = ["aggregate_frame", "main", "queue_ids"]

TOPIC_PREFIX = "v2.analytics.queues."
HEARTBEAT = orjson.dumps(
    {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
).decode()
PONG = orjson.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}}).decode()


def _t(name: str, count: int, total: int, low: int, high: int) -> dict[str, Any]:
    return {"metric": name, "stats": {"count": count, "sum": total, "min": low, "max": high}}


def aggregate_frame(topic: str, queue_id: str) -> str:
    """The §6.2 aggregate frame of bench_hot_path.py (8 metric datums) for ``topic``."""
    metrics = [
        {"metric": "nOffered", "stats": {"count": 2}},
        _t("tAlert", 1, 8277, 8277, 8277),
        _t("tAbandon", 2, 86168, 11781, 74387),
        _t("tAcd", 2, 86168, 11781, 74387),
        _t("tConnected", 2, 93173, 17669, 75504),
        _t("tNotResponding", 1, 8277, 8277, 8277),
        _t("tWait", 2, 86168, 11781, 74387),
        {
            "metric": "oServiceLevel",
            "stats": {"ratio": 0, "numerator": 0, "denominator": 2, "target": 0.5},
        },
    ]
    body = {
        "group": {"queueId": queue_id, "mediaType": "voice"},
        "data": [
            {"interval": "2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z", "metrics": metrics}
        ],
    }
    return orjson.dumps(
        {
            "topicName": topic,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": str(uuid.uuid4())},
        }
    ).decode()


def queue_ids(n: int) -> list[str]:
    """The org's queue ids (the bench subscribes the first ``n``)."""
    return [f"8f7e2c1a-0000-4000-8000-{i:012d}" for i in range(n)]


class FakeGenesys:
    """The routes, the subscribed topics and the connected sockets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.topics: list[str] = []
        self.frames: list[str] = []
        self.sockets: set[web.WebSocketResponse] = set()

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post("/oauth/token", self.token)
        app.router.add_post("/api/v2/notifications/channels", self.channel)
        app.router.add_put("/api/v2/notifications/channels/{id}/subscriptions", self.subscribe)
        app.router.add_get("/api/v2/notifications/channels/{id}/subscriptions", self.listing)
        app.router.add_route("HEAD", "/api/v2/notifications/channels/{id}", self.exists)
        app.router.add_get("/channels/{id}", self.socket)
        app.router.add_get("/__bench/state", self.state)
        app.router.add_post("/__bench/flood", self.flood)
        app.router.add_post("/api/v2/analytics/{tail:.*}", self.analytics)
        app.router.add_get("/api/v2/routing/queues", self.queues)
        app.router.add_get("/api/v2/notifications/availabletopics", self.available)
        app.router.add_get("/api/v2/{tail:.*}", self.directory)
        return app

    async def token(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"access_token": "bench-token", "token_type": "bearer", "expires_in": 86400}
        )

    async def channel(self, _: web.Request) -> web.Response:
        ident = uuid.uuid4().hex
        return web.json_response(
            {
                "id": ident,
                "connectUri": f"ws://127.0.0.1:{self.port}/channels/{ident}",
                "expires": "2099-01-01T00:00:00.000Z",
            }
        )

    async def subscribe(self, request: web.Request) -> web.Response:
        self.topics = [item["id"] for item in await request.json()]
        self.frames = [
            aggregate_frame(t, t[len(TOPIC_PREFIX) :].split(".")[0])
            for t in self.topics
            if t.startswith(TOPIC_PREFIX)
        ]
        return await self.listing(request)

    async def listing(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"entities": [{"id": t, "state": "Permitted"} for t in self.topics]}
        )

    async def exists(self, _: web.Request) -> web.Response:
        return web.Response()

    async def analytics(self, _: web.Request) -> web.Response:
        return web.json_response({"results": []})

    async def available(self, _: web.Request) -> web.Response:
        return web.json_response({"entities": [{"id": f"{TOPIC_PREFIX}{{id}}.observations"}]})

    async def queues(self, _: web.Request) -> web.Response:
        entities = [{"id": q, "name": f"Bench {i:04d}"} for i, q in enumerate(queue_ids(1000))]
        return web.json_response({"entities": entities, "pageNumber": 1, "pageCount": 1})

    async def directory(self, _: web.Request) -> web.Response:
        return web.json_response({"entities": [], "pageNumber": 1, "pageCount": 1, "total": 0})

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        beat = asyncio.create_task(_heartbeats(ws))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and '"ping"' in msg.data:
                    await ws.send_str(PONG)
        finally:
            beat.cancel()
            self.sockets.discard(ws)
        return ws

    async def state(self, _: web.Request) -> web.Response:
        return web.json_response({"sockets": len(self.sockets), "topics": len(self.topics)})

    async def flood(self, request: web.Request) -> web.Response:
        ask = await request.json()
        frames, rate = int(ask["frames"]), float(ask.get("rate", 0))
        started = time.perf_counter()
        sockets = list(self.sockets)
        texts = self.frames
        for i in range(frames):
            if rate:
                ahead = started + i / rate - time.perf_counter()
                if ahead > 0.001:
                    await asyncio.sleep(ahead)
            text = texts[i % len(texts)]
            for ws in sockets:
                await ws.send_str(text)
        return web.json_response({"seconds": time.perf_counter() - started})


async def _heartbeats(ws: web.WebSocketResponse) -> None:
    while not ws.closed:
        await asyncio.sleep(5)
        await ws.send_str(HEARTBEAT)


async def _serve(port: int) -> None:
    fake = FakeGenesys(port)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"FAKE_GENESYS_URL=http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
