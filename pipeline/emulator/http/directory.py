"""The org's directory as the routing API shows it: queues, members, wrap-up codes (pure).

Shapes follow the SDK models (``Queue``, ``QueueEntityListing``, ``QueueMember``,
``WrapupCode``…), so the official SDK deserialises them. Analytics call the voice media type
``voice``; queue media settings call it ``call`` (reference §8, ``QueueMediaSettings``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pipeline.emulator.simulation.model import QueueInfo, UserInfo, WrapupCodeInfo

__all__ = ["page", "queue_json", "queue_member_json", "user_json", "wrapup_code_json"]

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
