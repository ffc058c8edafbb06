"""The login service: ``POST /oauth/token`` with the client-credentials grant (docs/genesys-api.md
§3).

The official SDK sends the login to the API's base URL when its host has no ``api.`` in it
(§2), so the emulator serves it on the same base as everything else. What to answer is the
:class:`~pipeline.emulator.state.tokens.TokenRegistry`'s business; this module only finds the
credentials in the request.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping

from aiohttp import web

from pipeline.emulator.http.answers import json_response
from pipeline.emulator.state.tokens import TokenRegistry

__all__ = ["LoginApi", "basic_credentials"]


class LoginApi:
    """``POST /oauth/token``.

    Args:
        tokens: the registry that checks clients and issues tokens.
        now: emulator time in seconds.
    """

    def __init__(self, tokens: TokenRegistry, now: Callable[[], float]) -> None:
        self._tokens = tokens
        self._now = now

    def routes(self) -> list[web.RouteDef]:
        """The login route."""
        return [web.post("/oauth/token", self.token)]

    async def token(self, request: web.Request) -> web.Response:
        """Client credentials in the Basic header (or form fields) → a token, or an OAuth error."""
        form = await request.post()
        client_id, secret = basic_credentials(request.headers.get("Authorization"))
        if client_id is None:  # form fields: UNVERIFIED whether Genesys accepts them (§3.1)
            client_id = _form_str(form, "client_id")
            secret = _form_str(form, "client_secret")
        grant = self._tokens.issue(client_id, secret, _form_str(form, "grant_type"), self._now())
        return json_response(grant.to_json())


def basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    """``(client_id, secret)`` from a ``Basic`` authorization header, else ``(None, None)``."""
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


def _form_str(form: Mapping[str, object], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
