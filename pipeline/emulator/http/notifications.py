"""The emulator's HTTP and WebSocket routes (thin: parse, call the pure state, answer).

Login (§3), notifications (§5.1), the WebSocket (§5.3), analytics queries (§7), routing
directory (§8) and the admin API under ``/__emulator``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from pipeline.emulator.analytics.activity import query_routing_activity
from pipeline.emulator.analytics.queries import (
    query_conversation_aggregates,
    query_queue_observations,
    query_user_aggregates,
)
from pipeline.emulator.analytics.request import QueryError
from pipeline.emulator.errors import EmulatorError, bad_request, not_found
from pipeline.emulator.http import directory
from pipeline.emulator.http.sockets import SocketSession
from pipeline.emulator.server import EMULATOR_KEY, Emulator, json_response, principal_of
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.state.subscriptions import parse_subscription_body

__all__ = ["add_routes"]

log = logging.getLogger(__name__)

_CHANNELS = "/api/v2/notifications/channels"


def add_routes(app: web.Application) -> None:
    """Register every route on ``app``."""
    from pipeline.emulator.http.admin import add_admin_routes

    app.router.add_post("/oauth/token", token)
    app.router.add_post(_CHANNELS, create_channel)
    app.router.add_get(_CHANNELS, list_channels)
    app.router.add_route("HEAD", _CHANNELS + "/{channel_id}", head_channel)
    subscriptions = _CHANNELS + "/{channel_id}/subscriptions"
    app.router.add_get(subscriptions, get_subscriptions)
    app.router.add_post(subscriptions, post_subscriptions)
    app.router.add_put(subscriptions, put_subscriptions)
    app.router.add_delete(subscriptions, delete_subscriptions)
    app.router.add_get("/api/v2/notifications/availabletopics", available_topics)
    for path, query in _QUERIES.items():
        app.router.add_post(path, _query_handler(query))
    app.router.add_get("/api/v2/routing/queues", list_queues)
    app.router.add_get("/api/v2/routing/queues/{queue_id}", get_queue)
    app.router.add_get("/api/v2/routing/queues/{queue_id}/members", queue_members)
    app.router.add_get("/api/v2/routing/wrapupcodes", list_wrapup_codes)
    app.router.add_get("/api/v2/users", list_users)
    app.router.add_get("/channels/{channel_id}", channel_socket)
    add_admin_routes(app)


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Unable to parse the request body as JSON: {exc}") from exc


# ---------------------------------------------------------------------------- login (§3)


async def token(request: web.Request) -> web.Response:
    """``POST /oauth/token``: client credentials in the Basic header (or form fields)."""
    emulator = _emulator(request)
    form = await request.post()
    client_id, secret = _basic_credentials(request.headers.get("Authorization"))
    if client_id is None:  # form fields: UNVERIFIED whether Genesys accepts them (§3.1)
        client_id = _form_str(form, "client_id")
        secret = _form_str(form, "client_secret")
    grant = emulator.state.tokens.issue(
        client_id, secret, _form_str(form, "grant_type"), emulator.now()
    )
    return json_response(grant.to_json())


def _form_str(form: Mapping[str, object], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


# ---------------------------------------------------------------------------- channels (§5.1)


async def create_channel(request: web.Request) -> web.Response:
    """``POST /api/v2/notifications/channels`` (body empty or ``null``)."""
    emulator, principal = _emulator(request), principal_of(request)
    channel, evicted = emulator.state.channels.create_channel(
        principal.client_id, principal.token_id, emulator.now(), emulator.ws_base_url
    )
    if evicted is not None:
        await emulator.end_channel(evicted)
    return json_response(channel.to_json())


async def list_channels(request: web.Request) -> web.Response:
    """``GET /api/v2/notifications/channels?includechannels=token|oauthclient``."""
    emulator, principal = _emulator(request), principal_of(request)
    include = request.query.get("includechannels", "token")
    if include not in {"token", "oauthclient"}:
        raise bad_request(f"includechannels must be token or oauthclient, not {include!r}")
    listing = emulator.state.channels.list_channels(
        principal.client_id, principal.token_id, emulator.now(), include
    )
    return json_response(listing)


async def head_channel(request: web.Request) -> web.Response:
    """``HEAD /api/v2/notifications/channels/{id}``: 200 if live, 404 otherwise."""
    emulator, principal = _emulator(request), principal_of(request)
    alive = emulator.state.channels.channel_exists(
        request.match_info["channel_id"], emulator.now(), principal.client_id
    )
    return web.Response(status=200 if alive else 404)


async def get_subscriptions(request: web.Request) -> web.Response:
    """``GET .../subscriptions``."""
    emulator, principal = _emulator(request), principal_of(request)
    result = emulator.state.channels.get_subscriptions(
        request.match_info["channel_id"], principal.client_id, emulator.now()
    )
    return json_response(result.to_json())


async def post_subscriptions(request: web.Request) -> web.Response:
    """``POST .../subscriptions``: add topics (extends the channel's life)."""
    return await _change_subscriptions(request, replace=False)


async def put_subscriptions(request: web.Request) -> web.Response:
    """``PUT .../subscriptions``: replace the topic list (``[]`` clears it)."""
    return await _change_subscriptions(request, replace=True)


async def _change_subscriptions(request: web.Request, *, replace: bool) -> web.Response:
    emulator, principal = _emulator(request), principal_of(request)
    topics = parse_subscription_body(await _json_body(request))
    ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
    channels = emulator.state.channels
    change = channels.replace_subscriptions if replace else channels.add_subscriptions
    result = change(
        request.match_info["channel_id"],
        principal.client_id,
        topics,
        emulator.now(),
        ignore_errors,
    )
    return json_response(result.to_json())


async def delete_subscriptions(request: web.Request) -> web.Response:
    """``DELETE .../subscriptions``: remove all topics."""
    emulator, principal = _emulator(request), principal_of(request)
    emulator.state.channels.delete_subscriptions(
        request.match_info["channel_id"], principal.client_id, emulator.now()
    )
    return web.Response(status=200)


async def available_topics(request: web.Request) -> web.Response:
    """``GET /api/v2/notifications/availabletopics?expand=...&includePreview=...``."""
    emulator = _emulator(request)
    expand = [part for value in request.query.getall("expand", []) for part in value.split(",")]
    include_preview = request.query.get("includePreview", "true").lower() != "false"
    listing = emulator.state.catalogue.available_topics(
        [e for e in expand if e], include_preview=include_preview
    )
    return json_response(listing)


# ---------------------------------------------------------------------------- analytics (§7)

_Query = Callable[[ContactCenter, Mapping[str, object]], dict[str, object]]
_QUERIES: dict[str, _Query] = {
    "/api/v2/analytics/queues/observations/query": query_queue_observations,
    "/api/v2/analytics/conversations/aggregates/query": query_conversation_aggregates,
    "/api/v2/analytics/users/aggregates/query": query_user_aggregates,
    "/api/v2/analytics/routing/activity/query": query_routing_activity,
}


def _query_handler(query: _Query) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        emulator = _emulator(request)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        emulator.advance()  # answer from the same instant the socket frames come from
        try:
            return json_response(query(emulator.center, body))
        except QueryError as exc:
            raise EmulatorError(exc.status, exc.code, exc.message) from exc

    return handle


# ---------------------------------------------------------------------------- directory (§8)


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        return int(request.query.get("pageSize", "25")), int(request.query.get("pageNumber", "1"))
    except ValueError as exc:
        raise bad_request("pageSize and pageNumber must be integers") from exc


async def list_queues(request: web.Request) -> web.Response:
    """``GET /api/v2/routing/queues`` with ``name`` (prefix, case-insensitive) and paging."""
    center = _emulator(request).center
    name = request.query.get("name", "").lower().rstrip("*")
    queues = [q for q in center.queues if q.name.lower().startswith(name)]
    entities, paging = directory.page(queues, *_paging(request))
    body = [
        directory.queue_json(q, len(center.members(center.queue_index[q.id]))) for q in entities
    ]
    return json_response({"entities": body, **paging})


async def get_queue(request: web.Request) -> web.Response:
    """``GET /api/v2/routing/queues/{id}``."""
    center = _emulator(request).center
    position = center.queue_index.get(request.match_info["queue_id"])
    if position is None:
        raise not_found()
    queue = center.queues[position]
    return json_response(directory.queue_json(queue, len(center.members(position))))


async def queue_members(request: web.Request) -> web.Response:
    """``GET /api/v2/routing/queues/{id}/members`` with paging."""
    center = _emulator(request).center
    position = center.queue_index.get(request.match_info["queue_id"])
    if position is None:
        raise not_found()
    members, paging = directory.page(center.members(position), *_paging(request))
    body = []
    for user in members:
        snapshot = center.user_snapshot(user)
        body.append(
            directory.queue_member_json(
                center.users[user], snapshot.routing_status, snapshot.presence
            )
        )
    return json_response({"entities": body, **paging})


async def list_wrapup_codes(request: web.Request) -> web.Response:
    """``GET /api/v2/routing/wrapupcodes`` with paging."""
    codes, paging = directory.page(_emulator(request).center.wrapup_codes, *_paging(request))
    return json_response({"entities": [directory.wrapup_code_json(c) for c in codes], **paging})


async def list_users(request: web.Request) -> web.Response:
    """``GET /api/v2/users`` with paging."""
    users, paging = directory.page(_emulator(request).center.users, *_paging(request))
    return json_response({"entities": [directory.user_json(u) for u in users], **paging})


# ---------------------------------------------------------------------------- socket (§5.3)


async def channel_socket(request: web.Request) -> web.StreamResponse:
    """The notification WebSocket: one per channel, a new one kicks the old (§5.4)."""
    emulator = _emulator(request)
    channel_id = request.match_info["channel_id"]
    kicked = emulator.state.channels.connect_socket(channel_id, emulator.now())
    old = emulator.sockets.get(channel_id)
    if kicked and old is not None:
        # Close code for the kicked socket is UNVERIFIED; 1000 with a reason.
        await old.close(1000, b"another connection to this channel")
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    session = SocketSession(
        ws,
        request.transport,
        channel_id,
        faults=emulator.state.faults,
        frames=emulator.frames,
        topics_of=lambda: _topics(emulator, channel_id),
        bodies_for=emulator.center.topic_bodies,
        clock=emulator.now,
        heartbeat_s=emulator.config.heartbeat_s,
        tick_s=emulator.config.tick_s,
        frame_interval_s=emulator.config.frame_interval_s,
        send_initial_state=emulator.config.send_initial_state,
    )
    emulator.sockets[channel_id] = session
    log.info("socket connected on channel %s", channel_id)
    try:
        await session.run()
    finally:
        if emulator.sockets.get(channel_id) is session:
            del emulator.sockets[channel_id]
            emulator.state.channels.disconnect_socket(channel_id, emulator.now())
        log.info("socket closed on channel %s", channel_id)
    return ws


def _topics(emulator: Emulator, channel_id: str) -> tuple[str, ...]:
    channel = emulator.state.channels.get_channel(channel_id, emulator.now())
    return () if channel is None else tuple(channel.topics)
