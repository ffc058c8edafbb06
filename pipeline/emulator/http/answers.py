"""Small helpers every route shares: JSON answers and JSON request bodies.

Every module under ``http/`` answers through :func:`json_response` (orjson) and reads bodies
through :func:`read_json_body`, so a malformed body is the same ``400 bad.request`` on every
endpoint.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from aiohttp import web

from pipeline.emulator.errors import bad_request

__all__ = ["Api", "json_response", "read_json_body"]


class Api(Protocol):
    """A group of routes over the parts it was built with (one module under ``http/``)."""

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the application."""
        ...


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer, serialised with orjson.

    Args:
        body: anything orjson serialises.
        status: the HTTP status.
        headers: extra headers.

    Returns:
        The response.
    """
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body, or ``None`` when it is empty.

    Raises:
        EmulatorError: 400 ``bad.request`` when the body is not JSON.
    """
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Unable to parse the request body as JSON: {exc}") from exc
