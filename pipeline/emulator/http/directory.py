"""The org's directory as the routing API shows it: queues, members, wrap-up codes, users.

:class:`DirectoryApi` serves ``/api/v2/routing/queues[/{id}[/members]]``,
``/api/v2/routing/wrapupcodes`` and ``/api/v2/users`` from the simulated contact center
(docs/genesys-api.md §8), paged by ``pageSize`` / ``pageNumber`` (:func:`page`).

The JSON shapes (pure functions) follow the SDK models (``Queue``, ``QueueEntityListing``,
``QueueMember``, ``WrapupCode``…), so the official SDK deserialises them. Analytics call the
voice media type ``voice``; queue media settings call it ``call`` (``QueueMediaSettings``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web

from pipeline.emulator.errors import bad_request, not_found
from pipeline.emulator.http.answers import json_response
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import QueueInfo, UserInfo, WrapupCodeInfo

__all__ = [
    "DirectoryApi",
    "page",
    "queue_json",
    "queue_member_json",
    "user_json",
    "wrapup_code_json",
]

T = TypeVar("T")

# analytics media type → QueueMediaSettings attribute
_MEDIA_SETTINGS_KEY = {
    "voice": "call",
    "chat": "chat",
    "email": "email",
    "message": "message",
    "callback": "callback",
}
_DIVISION = {"id": "00000000-0000-4000-8000-0000000000d1", "name": "Home"}


def queue_json(queue: QueueInfo, member_count: int) -> dict[str, Any]:
    """A ``Queue`` with its service-level settings per media type."""
    service_level = {
        "percentage": queue.service_level_percentage,
        "durationMs": queue.service_level_duration_ms,
    }
    media_settings = {
        _MEDIA_SETTINGS_KEY[media]: {"alertingTimeoutSeconds": 8, "serviceLevel": service_level}
        for media in queue.media_types
        if media in _MEDIA_SETTINGS_KEY
    }
    return {
        "id": queue.id,
        "name": queue.name,
        "division": {**_DIVISION, "selfUri": f"/api/v2/authorization/divisions/{_DIVISION['id']}"},
        "memberCount": member_count,
        "userMemberCount": member_count,
        "joinedMemberCount": member_count,
        "mediaSettings": media_settings,
        "scoringMethod": "TimestampAndPriority",
        "selfUri": f"/api/v2/routing/queues/{queue.id}",
    }


def user_json(user: UserInfo) -> dict[str, Any]:
    """A ``User`` (the fields a directory listing needs)."""
    return {
        "id": user.id,
        "name": user.name,
        "division": _DIVISION,
        "state": "active",
        "selfUri": f"/api/v2/users/{user.id}",
    }


def queue_member_json(user: UserInfo, routing_status: str, presence: str) -> dict[str, Any]:
    """A ``QueueMember`` with the agent's current routing status and presence."""
    return {
        "id": user.id,
        "name": user.name,
        "user": user_json(user),
        "ringNumber": 1,
        "joined": True,
        "memberBy": "user",
        "routingStatus": {"userId": user.id, "status": routing_status},
        "presence": {"presenceDefinition": {"systemPresence": presence}},
        "selfUri": f"/api/v2/users/{user.id}",
    }


def wrapup_code_json(code: WrapupCodeInfo) -> dict[str, Any]:
    """A ``WrapupCode``."""
    return {"id": code.id, "name": code.name, "selfUri": f"/api/v2/routing/wrapupcodes/{code.id}"}


def page(items: Sequence[T], page_size: int, page_number: int) -> tuple[list[T], dict[str, Any]]:
    """Cut one page out of ``items``; returns it and the listing's paging fields.

    Page numbers start at 1 (Genesys paging); an out-of-range page is empty.
    """
    size = max(1, min(page_size, 500))
    number = max(1, page_number)
    start = (number - 1) * size
    total = len(items)
    return list(items[start : start + size]), {
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": (total + size - 1) // size,
    }


class DirectoryApi:
    """The routing directory of the simulated org.

    Args:
        center: the simulated contact center (its queues, users and wrap-up codes).
    """

    def __init__(self, center: ContactCenter) -> None:
        self._center = center

    def routes(self) -> list[web.RouteDef]:
        """The directory routes."""
        return [
            web.get("/api/v2/routing/queues", self.list_queues),
            web.get("/api/v2/routing/queues/{queue_id}", self.get_queue),
            web.get("/api/v2/routing/queues/{queue_id}/members", self.queue_members),
            web.get("/api/v2/routing/wrapupcodes", self.list_wrapup_codes),
            web.get("/api/v2/users", self.list_users),
        ]

    async def list_queues(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/queues`` with ``name`` (prefix, case-insensitive) and paging."""
        center = self._center
        name = request.query.get("name", "").lower().rstrip("*")
        queues = [q for q in center.queues if q.name.lower().startswith(name)]
        entities, paging = page(queues, *_paging(request))
        body = [queue_json(q, len(center.members(center.queue_index[q.id]))) for q in entities]
        return json_response({"entities": body, **paging})

    async def get_queue(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/queues/{id}``."""
        position = self._queue_position(request)
        queue = self._center.queues[position]
        return json_response(queue_json(queue, len(self._center.members(position))))

    async def queue_members(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/queues/{id}/members`` with paging."""
        center = self._center
        members, paging = page(center.members(self._queue_position(request)), *_paging(request))
        body = []
        for user in members:
            snapshot = center.user_snapshot(user)
            body.append(
                queue_member_json(center.users[user], snapshot.routing_status, snapshot.presence)
            )
        return json_response({"entities": body, **paging})

    async def list_wrapup_codes(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/wrapupcodes`` with paging."""
        codes, paging = page(self._center.wrapup_codes, *_paging(request))
        return json_response({"entities": [wrapup_code_json(c) for c in codes], **paging})

    async def list_users(self, request: web.Request) -> web.Response:
        """``GET /api/v2/users`` with paging."""
        users, paging = page(self._center.users, *_paging(request))
        return json_response({"entities": [user_json(u) for u in users], **paging})

    def _queue_position(self, request: web.Request) -> int:
        position = self._center.queue_index.get(request.match_info["queue_id"])
        if position is None:
            raise not_found()
        return position


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        return int(request.query.get("pageSize", "25")), int(request.query.get("pageNumber", "1"))
    except ValueError as exc:
        raise bad_request("pageSize and pageNumber must be integers") from exc
