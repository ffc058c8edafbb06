"""The emulator's admin API for tests: look inside, inject faults, account for every frame.

``/__emulator`` is a path the real service does not have. Endpoints:

- ``GET  /__emulator/state``: queues, users, channels, tokens (handles only, never secrets).
- ``GET  /__emulator/frames?channel=ID&since=SEQ``: every frame sent, with correlation ids.
- ``GET  /__emulator/requests``: every HTTP request answered (method, path, status).
- ``POST /__emulator/faults``: ``{"type": "drop_socket", "channel_id": "..."}``; the types are
  the keys of :data:`FAULT_TYPES`, other keys are the fault's fields
  (``{"type": "restrict_entities", "entity_ids": ["<queue id>"]}`` hides a queue from
  subscriptions, §5.6). ``fail_requests`` takes ``count``, ``status``, ``retry_after``,
  ``path_prefix``, ``code``; ``rest_garbage`` (200 with a body that is not JSON) takes
  ``count`` and ``path_prefix``.
- ``POST /__emulator/faults/clear``: forget planned faults.
- ``POST /__emulator/presence``: ``{"user_id": ..., "presence": "AVAILABLE"}`` sets a user's
  system presence now (the org changes as if the agent did it).
- ``POST /__emulator/members/remove``: ``{"queue_id": ..., "user_id": ...}`` takes a user
  out of a queue now (the queue's ``.users`` topic says ``joined: false``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from pipeline.emulator.http.answers import json_response
from pipeline.emulator.http.frames import FrameLog
from pipeline.emulator.http.gate import RequestRecord
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.state import faults
from pipeline.emulator.state.org import OrgState

__all__ = ["FAULT_TYPES", "AdminApi", "parse_fault"]

FAULT_TYPES: dict[str, type[faults.Fault]] = {
    "drop_socket": faults.DropSocket,
    "socket_closing": faults.SendSocketClosing,
    "stall_socket": faults.StallSocket,
    "stop_heartbeats": faults.StopHeartbeats,
    "resume_heartbeats": faults.ResumeHeartbeats,
    "malformed_frames": faults.MalformedFrames,
    "truncated_frames": faults.TruncatedFrames,
    "oversized_frames": faults.OversizedFrames,
    "duplicate_frames": faults.DuplicateFrames,
    "reorder_frames": faults.ReorderFrames,
    "expire_channel": faults.ExpireChannel,
    "evict_channel": faults.EvictChannel,
    "expire_token": faults.ExpireToken,
    "revoke_token": faults.RevokeToken,
    "restrict_entities": faults.RestrictEntities,
}


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


class AdminApi:
    """``/__emulator/**``: look inside the emulator and plan faults.

    Args:
        state: the org (channels, tokens, the fault plan).
        center: the simulated contact center.
        frames: the frame log.
        requests: the request log.
        now: emulator time in seconds.
        inject: runs a fault now (state faults end channels, whose sockets must be told).
    """

    def __init__(
        self,
        state: OrgState,
        center: ContactCenter,
        frames: FrameLog,
        requests: deque[RequestRecord],
        now: Callable[[], float],
        inject: Callable[[faults.Fault], Awaitable[None]],
    ) -> None:
        self._state = state
        self._center = center
        self._frames = frames
        self._requests = requests
        self._now = now
        self._inject = inject

    def routes(self) -> list[web.RouteDef]:
        """The admin routes."""
        return [
            web.get("/__emulator/state", self.state),
            web.get("/__emulator/frames", self.frames),
            web.get("/__emulator/requests", self.requests),
            web.post("/__emulator/faults", self.inject_fault),
            web.post("/__emulator/faults/clear", self.clear_faults),
            web.post("/__emulator/presence", self.set_presence),
            web.post("/__emulator/members/remove", self.remove_member),
        ]

    async def state(self, request: web.Request) -> web.Response:
        """What the emulator holds right now (token handles, never tokens)."""
        now = self._now()
        center, tokens = self._center, self._state.tokens
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
                    for c in self._state.channels.channels(now)
                ],
                "tokens": [{"id": t, "state": tokens.state_of(t, now)} for t in tokens.token_ids()],
                "pendingRequestFaults": self._state.faults.pending_request_faults(),
            }
        )

    async def frames(self, request: web.Request) -> web.Response:
        """Frames sent, optionally of one channel, after a sequence number."""
        since = int(request.query.get("since", "0"))
        sent = self._frames.frames(request.query.get("channel"), since)
        return json_response([f.to_json() for f in sent])

    async def requests(self, request: web.Request) -> web.Response:
        """HTTP requests answered, oldest first."""
        return json_response(
            [
                {
                    "at": r.at,
                    "method": r.method,
                    "path": r.path,
                    "status": r.status,
                    "clientId": r.client_id,
                }
                for r in self._requests
            ]
        )

    async def inject_fault(self, request: web.Request) -> web.Response:
        """Plan a fault, or fail the next requests (``{"type": "fail_requests", ...}``)."""
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise web.HTTPBadRequest(reason=f"invalid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise web.HTTPBadRequest(reason="a fault is a JSON object")
        if doc.get("type") == "fail_requests":
            try:
                self._state.faults.fail_requests(
                    int(doc["count"]),
                    int(doc["status"]),
                    doc.get("retry_after"),
                    doc.get("path_prefix"),
                    code=doc.get("code"),
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise web.HTTPBadRequest(reason=f"bad fail_requests: {exc}") from exc
            return json_response({"planned": doc})
        if doc.get("type") == "rest_garbage":
            try:
                self._state.faults.answer_garbage(int(doc["count"]), doc.get("path_prefix"))
            except (KeyError, ValueError, TypeError) as exc:
                raise web.HTTPBadRequest(reason=f"bad rest_garbage: {exc}") from exc
            return json_response({"planned": doc})
        fault = parse_fault(doc)
        try:
            await self._inject(fault)
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from exc
        return json_response({"planned": doc})

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Forget every planned fault."""
        self._state.faults.clear()
        return json_response({"cleared": True})

    async def set_presence(self, request: web.Request) -> web.Response:
        """Set a user's system presence now (``{"user_id", "presence"}``)."""
        doc = await _object(request)
        try:
            self._center.set_presence(str(doc["user_id"]), str(doc["presence"]))
        except (KeyError, ValueError) as exc:
            raise web.HTTPBadRequest(reason=f"bad presence change: {exc}") from exc
        return json_response({"changed": doc})

    async def remove_member(self, request: web.Request) -> web.Response:
        """Take a user out of a queue now (``{"queue_id", "user_id"}``)."""
        doc = await _object(request)
        try:
            removed = self._center.remove_member(str(doc["queue_id"]), str(doc["user_id"]))
        except KeyError as exc:
            raise web.HTTPBadRequest(reason=f"bad member removal: {exc}") from exc
        if not removed:
            raise web.HTTPConflict(reason="the user is not a member of the queue")
        return json_response({"removed": doc})


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(reason=f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return doc
