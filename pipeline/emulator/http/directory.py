"""The org's directory as the routing API shows it: queues, members, wrap-up codes, users.

:class:`DirectoryApi` serves ``/api/v2/routing/queues[/{id}[/members]]``,
``/api/v2/routing/wrapupcodes`` and ``/api/v2/users`` from the simulated contact center
(docs/genesys-api.md §8), paged by ``pageSize`` / ``pageNumber`` (:func:`page`).

The JSON shapes (pure functions) follow the SDK models (``Queue``, ``QueueEntityListing``,
``QueueMember``, ``WrapupCode``…), so the official SDK deserialises them. Analytics call the
voice media type ``voice``; queue media settings call it ``call`` (``QueueMediaSettings``).

Paging (§8.1): page numbers start at 1, the default page size is 25. The members listing
(``QueueMemberEntityListing``) carries ``entities``, ``pageNumber``, ``pageSize``,
``firstUri``, ``selfUri``, ``nextUri`` and ``previousUri`` only — no ``total``,
``pageCount`` or ``lastUri`` (VERIFIED: FORUM-MEMBERS, SDK model); the others carry the full
set. ``nextUri`` is left out on the last page and ``previousUri`` on the first (BELIEF); the
URIs are paths with the request's other parameters kept (format BELIEF). A ``pageSize`` over
the maximum is cut to it, not refused: Genesys said so for the members endpoint's
predecessor (FORUM-PAGESIZE, VERIFIED there; BELIEF for the others). The maximum is 100 for
members (VERIFIED: "Max value is 100") and ``listing_max_page_size`` (default 100, BELIEF)
for queues, users and wrap-up codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from pipeline.emulator.errors import bad_request, not_found
from pipeline.emulator.http.answers import json_response
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import QueueInfo, UserInfo, WrapupCodeInfo

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MEMBERS_MAX_PAGE_SIZE",
    "DirectoryApi",
    "PageRequest",
    "page",
    "queue_json",
    "queue_member_json",
    "user_json",
    "wrapup_code_json",
]

T = TypeVar("T")

DEFAULT_PAGE_SIZE: Final = 25
"""``pageSize`` when the request names none (§8.1, VERIFIED)."""
MEMBERS_MAX_PAGE_SIZE: Final = 100
"""The members listing's largest page (§8.1, VERIFIED: "Max value is 100")."""

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


def queue_member_json(user: UserInfo, routing_status: str) -> dict[str, Any]:
    """A ``QueueMember`` (exactly the SDK model's fields) with the agent's routing status."""
    return {
        "id": user.id,
        "name": user.name,
        "user": user_json(user),
        "ringNumber": 1,
        "joined": True,
        "memberBy": "user",
        "routingStatus": {"userId": user.id, "status": routing_status},
        "selfUri": f"/api/v2/users/{user.id}",
    }


def wrapup_code_json(code: WrapupCodeInfo) -> dict[str, Any]:
    """A ``WrapupCode``."""
    return {"id": code.id, "name": code.name, "selfUri": f"/api/v2/routing/wrapupcodes/{code.id}"}


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page a listing call asked for, and what its URIs must repeat.

    Attributes:
        path: the request path (no query).
        size: ``pageSize``, already cut to the endpoint's maximum.
        number: ``pageNumber`` (from 1).
        query: the request's other parameters, kept in every URI of the answer.
    """

    path: str
    size: int
    number: int
    query: tuple[tuple[str, str], ...] = ()

    def uri(self, number: int) -> str:
        """The URI of page ``number`` of the same listing."""
        params = [("pageSize", str(self.size)), ("pageNumber", str(number)), *self.query]
        return f"{self.path}?{urlencode(params)}"


def page(
    items: Sequence[T], request: PageRequest, *, totals: bool
) -> tuple[list[T], dict[str, Any]]:
    """Cut one page out of ``items``; returns it and the listing's paging fields.

    Args:
        items: everything the listing holds, in order.
        request: the page asked for.
        totals: add ``total``, ``pageCount`` and ``lastUri`` (every listing but the members'
            ``QueueMemberEntityListing``).

    Returns:
        The page's items, and the paging fields (``nextUri`` only when a later page has
        items, ``previousUri`` only after the first page). An out-of-range page is empty.
    """
    size, number = request.size, request.number
    start = (number - 1) * size
    fields: dict[str, Any] = {
        "pageSize": size,
        "pageNumber": number,
        "firstUri": request.uri(1),
        "selfUri": request.uri(number),
    }
    if start + size < len(items):
        fields["nextUri"] = request.uri(number + 1)
    if number > 1:
        fields["previousUri"] = request.uri(number - 1)
    if totals:
        count = max(1, (len(items) + size - 1) // size)
        fields.update(total=len(items), pageCount=count, lastUri=request.uri(count))
    return list(items[start : start + size]), fields


class DirectoryApi:
    """The routing directory of the simulated org.

    Args:
        center: the simulated contact center (its queues, users and wrap-up codes).
        max_page_size: the largest page of the queue, user and wrap-up code listings (BELIEF:
            100, see the module docstring); the members listing's is always 100.
    """

    def __init__(self, center: ContactCenter, max_page_size: int = 100) -> None:
        self._center = center
        self._max_page_size = max_page_size

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
        entities, paging = page(queues, _page_request(request, self._max_page_size), totals=True)
        body = [queue_json(q, len(center.members(center.queue_index[q.id]))) for q in entities]
        return json_response({"entities": body, **paging})

    async def get_queue(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/queues/{id}``."""
        position = self._queue_position(request)
        queue = self._center.queues[position]
        return json_response(queue_json(queue, len(self._center.members(position))))

    async def queue_members(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/queues/{id}/members``: a ``QueueMemberEntityListing``."""
        center = self._center
        everyone = center.members(self._queue_position(request))
        members, paging = page(
            everyone, _page_request(request, MEMBERS_MAX_PAGE_SIZE), totals=False
        )
        body = []
        for user in members:
            snapshot = center.user_snapshot(user)
            body.append(queue_member_json(center.users[user], snapshot.routing_status))
        return json_response({"entities": body, **paging})

    async def list_wrapup_codes(self, request: web.Request) -> web.Response:
        """``GET /api/v2/routing/wrapupcodes`` with paging."""
        paging_request = _page_request(request, self._max_page_size)
        codes, paging = page(self._center.wrapup_codes, paging_request, totals=True)
        return json_response({"entities": [wrapup_code_json(c) for c in codes], **paging})

    async def list_users(self, request: web.Request) -> web.Response:
        """``GET /api/v2/users`` with paging."""
        paging_request = _page_request(request, self._max_page_size)
        users, paging = page(self._center.users, paging_request, totals=True)
        return json_response({"entities": [user_json(u) for u in users], **paging})

    def _queue_position(self, request: web.Request) -> int:
        position = self._center.queue_index.get(request.match_info["queue_id"])
        if position is None:
            raise not_found()
        return position


def _page_request(request: web.Request, max_size: int) -> PageRequest:
    try:
        size = int(request.query.get("pageSize", str(DEFAULT_PAGE_SIZE)))
        number = int(request.query.get("pageNumber", "1"))
    except ValueError as exc:
        raise bad_request("pageSize and pageNumber must be integers") from exc
    others = tuple(
        (key, value) for key, value in request.query.items() if key not in _PAGING_PARAMS
    )
    return PageRequest(request.path, min(max(1, size), max_size), max(1, number), others)


_PAGING_PARAMS = frozenset({"pageSize", "pageNumber"})
