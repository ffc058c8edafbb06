"""The notifications API: channels, their subscriptions, the topic catalogue (docs/genesys-api.md
§5.1).

Thin: parse the request, call the org's pure :class:`~pipeline.emulator.state.org.OrgState`,
answer. Creating a channel may evict the client's least recently used one (the 21st channel,
§5.4); its socket hears about it through the :class:`~.streaming.SocketHub`. The WebSocket
itself is in ``streaming.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from pipeline.emulator.errors import bad_request
from pipeline.emulator.http.answers import json_response, read_json_body
from pipeline.emulator.http.gate import principal_of
from pipeline.emulator.http.streaming import SocketHub
from pipeline.emulator.state.org import OrgState
from pipeline.emulator.state.subscriptions import parse_subscription_body

__all__ = ["CHANNELS", "NotificationsApi"]

CHANNELS = "/api/v2/notifications/channels"
_SUBSCRIPTIONS = CHANNELS + "/{channel_id}/subscriptions"


class NotificationsApi:
    """``/api/v2/notifications/**``.

    Args:
        state: the org (channels, catalogue).
        hub: the live sockets (for evicted channels).
        now: emulator time in seconds.
        ws_base_url: ``ws://host:port``, the base of every ``connectUri`` (known once the
            server listens).
    """

    def __init__(
        self,
        state: OrgState,
        hub: SocketHub,
        now: Callable[[], float],
        ws_base_url: Callable[[], str],
    ) -> None:
        self._state = state
        self._hub = hub
        self._now = now
        self._ws_base_url = ws_base_url

    def routes(self) -> list[web.RouteDef]:
        """The notifications routes."""
        return [
            web.post(CHANNELS, self.create_channel),
            web.get(CHANNELS, self.list_channels),
            web.head(CHANNELS + "/{channel_id}", self.head_channel),
            web.get(_SUBSCRIPTIONS, self.get_subscriptions),
            web.post(_SUBSCRIPTIONS, self.post_subscriptions),
            web.put(_SUBSCRIPTIONS, self.put_subscriptions),
            web.delete(_SUBSCRIPTIONS, self.delete_subscriptions),
            web.get("/api/v2/notifications/availabletopics", self.available_topics),
        ]

    async def create_channel(self, request: web.Request) -> web.Response:
        """``POST /api/v2/notifications/channels`` (body empty or ``null``)."""
        principal = principal_of(request)
        channel, evicted = self._state.channels.create_channel(
            principal.client_id, principal.token_id, self._now(), self._ws_base_url()
        )
        if evicted is not None:
            await self._hub.end_channel(evicted)
        return json_response(channel.to_json())

    async def list_channels(self, request: web.Request) -> web.Response:
        """``GET /api/v2/notifications/channels?includechannels=token|oauthclient``."""
        principal = principal_of(request)
        include = request.query.get("includechannels", "token")
        if include not in {"token", "oauthclient"}:
            raise bad_request(f"includechannels must be token or oauthclient, not {include!r}")
        listing = self._state.channels.list_channels(
            principal.client_id, principal.token_id, self._now(), include
        )
        return json_response(listing)

    async def head_channel(self, request: web.Request) -> web.Response:
        """``HEAD /api/v2/notifications/channels/{id}``: 200 if live, 404 otherwise."""
        alive = self._state.channels.channel_exists(
            request.match_info["channel_id"], self._now(), principal_of(request).client_id
        )
        return web.Response(status=200 if alive else 404)

    async def get_subscriptions(self, request: web.Request) -> web.Response:
        """``GET .../subscriptions``."""
        result = self._state.channels.get_subscriptions(
            request.match_info["channel_id"], principal_of(request).client_id, self._now()
        )
        return json_response(result.to_json())

    async def post_subscriptions(self, request: web.Request) -> web.Response:
        """``POST .../subscriptions``: add topics (extends the channel's life)."""
        return await self._change_subscriptions(request, replace=False)

    async def put_subscriptions(self, request: web.Request) -> web.Response:
        """``PUT .../subscriptions``: replace the topic list (``[]`` clears it)."""
        return await self._change_subscriptions(request, replace=True)

    async def delete_subscriptions(self, request: web.Request) -> web.Response:
        """``DELETE .../subscriptions``: remove all topics."""
        self._state.channels.delete_subscriptions(
            request.match_info["channel_id"], principal_of(request).client_id, self._now()
        )
        return web.Response(status=200)

    async def available_topics(self, request: web.Request) -> web.Response:
        """``GET /api/v2/notifications/availabletopics?expand=...&includePreview=...``."""
        expand = [part for value in request.query.getall("expand", []) for part in value.split(",")]
        include_preview = request.query.get("includePreview", "true").lower() != "false"
        listing = self._state.catalogue.available_topics(
            [e for e in expand if e], include_preview=include_preview
        )
        return json_response(listing)

    async def _change_subscriptions(self, request: web.Request, *, replace: bool) -> web.Response:
        principal = principal_of(request)
        topics = parse_subscription_body(await read_json_body(request))
        ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
        channels = self._state.channels
        change = channels.replace_subscriptions if replace else channels.add_subscriptions
        result = change(
            request.match_info["channel_id"],
            principal.client_id,
            topics,
            self._now(),
            ignore_errors,
        )
        return json_response(result.to_json())
