"""A local OIDC token endpoint (aiohttp) for the OAUTHBEARER tests: client-credentials
grant, HTTP basic auth, JWT-shaped tokens (librdkafka reads ``exp`` and ``sub``) valid
``expires_in`` seconds; every token it issues is added to a set the SASL front end accepts."""

from __future__ import annotations

import base64
import json
import time
import uuid

from aiohttp import web

__all__ = ["OidcEndpoint"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcEndpoint:
    """``POST /token`` on 127.0.0.1 (any free port).

    Args:
        client_id: the only client.
        client_secret: its secret.
        accepted: the set each issued token is added to.
        expires_in: lifetime of each token, in seconds.
    """

    def __init__(
        self, client_id: str, client_secret: str, accepted: set[str], expires_in: int = 3600
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.accepted = accepted
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.issued_at: list[float] = []
        """Wall-clock time of each issue (epoch seconds, like the ``exp`` claims)."""
        self.expires_at: list[int] = []
        """The ``exp`` claim of each token issued."""
        self.refused = 0
        self.scopes: list[str | None] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Start serving; returns the token endpoint URL."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/token"
        return self.url

    async def aclose(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {expected}" or (
            form.get("grant_type") != "client_credentials"
        ):
            self.refused += 1
            return web.json_response({"error": "invalid_client"}, status=401)
        scope = form.get("scope")
        self.scopes.append(str(scope) if scope is not None else None)
        now = int(time.time())
        claims = {"sub": self.client_id, "iat": now, "exp": now + self.expires_in,
                  "jti": uuid.uuid4().hex}  # fmt: skip
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'unsigned')}"
        self.issued.append(token)
        self.issued_at.append(time.time())
        self.expires_at.append(claims["exp"])
        self.accepted.add(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        return web.json_response(body)
