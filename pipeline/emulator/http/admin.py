"""The emulator's admin API for tests: look inside, inject faults, account for every frame.

``/__emulator`` is a path the real service does not have. Endpoints:

- ``GET  /__emulator/state``: queues, users, channels, tokens (handles only, never secrets).
- ``GET  /__emulator/frames?channel=ID&since=SEQ``: every frame sent, with correlation ids.
- ``GET  /__emulator/requests``: every HTTP request answered (method, path, status).
- ``POST /__emulator/faults``: ``{"type": "drop_socket", "channel_id": "..."}``; the types are
  the keys of :data:`FAULT_TYPES`, other keys are the fault's fields. ``fail_requests`` takes
  ``count``, ``status``, ``retry_after``, ``path_prefix``, ``code``.
- ``POST /__emulator/faults/clear``: forget planned faults.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from pipeline.emulator.server import EMULATOR_KEY, json_response
from pipeline.emulator.state import faults

__all__ = ["FAULT_TYPES", "add_admin_routes", "parse_fault"]

FAULT_TYPES: dict[str, type[faults.Fault]] = {
    "drop_socket": faults.DropSocket,
    "socket_closing": faults.SendSocketClosing,
    "stall_socket": faults.StallSocket,
    "stop_heartbeats": faults.StopHeartbeats,
    "resume_heartbeats": faults.ResumeHeartbeats,
    "malformed_frames": faults.MalformedFrames,
    "truncated_frames": faults.TruncatedFrames,
    "duplicate_frames": faults.DuplicateFrames,
    "reorder_frames": faults.ReorderFrames,
    "expire_channel": faults.ExpireChannel,
    "evict_channel": faults.EvictChannel,
    "expire_token": faults.ExpireToken,
    "revoke_token": faults.RevokeToken,
}


def add_admin_routes(app: web.Application) -> None:
    """Register ``/__emulator/**``."""
    app.router.add_get("/__emulator/state", state)
    app.router.add_get("/__emulator/frames", frames)
    app.router.add_get("/__emulator/requests", requests)
    app.router.add_post("/__emulator/faults", inject_fault)
    app.router.add_post("/__emulator/faults/clear", clear_faults)


def parse_fault(doc: dict[str, Any]) -> faults.Fault:
    """Build a fault from its JSON form.

    Raises:
        web.HTTPBadRequest: unknown type or wrong fields.
    """
    params = dict(doc)
    name = params.pop("type", None)
    cls = FAULT_TYPES.get(str(name))
    if cls is None:
        raise web.HTTPBadRequest(
            reason=f"unknown fault type {name!r}; one of {sorted(FAULT_TYPES)}"
        )
    try:
        return cls(**params)
    except TypeError as exc:
        raise web.HTTPBadRequest(reason=f"bad fields for {name}: {exc}") from exc


async def state(request: web.Request) -> web.Response:
    """What the emulator holds right now."""
    emulator = request.app[EMULATOR_KEY]
    now = emulator.now()
    center = emulator.center
    tokens = emulator.state.tokens
    return json_response(
        {
            "now": now,
            "simulatedTime": center.now().isoformat(),
            "queues": [
                {"id": q.id, "name": q.name, "mediaTypes": q.media_types} for q in center.queues
            ],
            "users": len(center.users),
            "wrapupCodes": len(center.wrapup_codes),
            "channels": [
                {
                    "id": c.id,
                    "clientId": c.client_id,
                    "tokenId": c.token_id,
                    "expires": c.expires,
                    "socketConnected": c.socket_connected,
                    "topics": len(c.topics),
                }
                for c in emulator.state.channels.channels(now)
            ],
            "tokens": [{"id": t, "state": tokens.state_of(t, now)} for t in tokens.token_ids()],
            "pendingRequestFaults": emulator.state.faults.pending_request_faults(),
        }
    )


async def frames(request: web.Request) -> web.Response:
    """Frames sent, optionally of one channel, after a sequence number."""
    emulator = request.app[EMULATOR_KEY]
    since = int(request.query.get("since", "0"))
    sent = emulator.frames.frames(request.query.get("channel"), since)
    return json_response([f.to_json() for f in sent])


async def requests(request: web.Request) -> web.Response:
    """HTTP requests answered, oldest first."""
    emulator = request.app[EMULATOR_KEY]
    return json_response(
        [
            {
                "at": r.at,
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "clientId": r.client_id,
            }
            for r in emulator.requests
        ]
    )


async def inject_fault(request: web.Request) -> web.Response:
    """Plan a fault, or fail the next requests (``{"type": "fail_requests", ...}``)."""
    emulator = request.app[EMULATOR_KEY]
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(reason=f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(reason="a fault is a JSON object")
    if doc.get("type") == "fail_requests":
        try:
            emulator.state.faults.fail_requests(
                int(doc["count"]),
                int(doc["status"]),
                doc.get("retry_after"),
                doc.get("path_prefix"),
                code=doc.get("code"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(reason=f"bad fail_requests: {exc}") from exc
        return json_response({"planned": doc})
    fault = parse_fault(doc)
    try:
        await emulator.inject(fault)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from exc
    return json_response({"planned": doc})


async def clear_faults(request: web.Request) -> web.Response:
    """Forget every planned fault."""
    request.app[EMULATOR_KEY].state.faults.clear()
    return json_response({"cleared": True})
