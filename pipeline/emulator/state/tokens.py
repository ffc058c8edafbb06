"""OAuth clients and bearer tokens of the emulated login service (pure).

Theory of operation
-------------------
The emulator knows a fixed set of OAuth clients (:class:`OAuthClientConfig`). A client-credentials
grant (``docs/genesys-api.md`` §3.1) checks the client id and secret and mints an opaque
access token valid for the client's lifetime (§3.2: default 86399 s, UNVERIFIED exact value).

Every token gets a non-secret handle, a :data:`TokenId` (``tok-0001``...). The rest of the
emulator only ever sees handles: channels remember the handle of the token that created them,
fault hooks name tokens by handle, logs and reprs show handles. Raw tokens are stored as SHA-256
digests, so the registry holds no usable secret and a lookup compares digests, not secrets.

A token is valid while ``now < expires_at`` and it is not revoked. ``expire()`` moves its expiry
to ``now``; ``revoke()`` kills it and returns a :class:`TokenRevoked` report so the caller can end
the channels made with it and send them ``v2.system.token_revoked`` (§5.3).

Time: every method takes ``now``, seconds on one monotonic-like clock supplied by the shell.
Nothing here reads a clock, and ids come from the injected ``random.Random``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, NewType

from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.errors import (
    OAuthError,
    authentication_required,
    bad_credentials,
)

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "ClientId",
    "OAuthClientConfig",
    "Principal",
    "TokenGrant",
    "TokenId",
    "TokenRegistry",
    "TokenRevoked",
]

ClientId = NewType("ClientId", str)
"""An OAuth client id."""
TokenId = NewType("TokenId", str)
"""A non-secret handle for one access token (never the token itself)."""

DEFAULT_TOKEN_LIFETIME: Final = DEFAULTS.token_lifetime_s
"""Seconds; §3.2: default 24 h, exact ``expires_in`` (86399 or 86400) UNVERIFIED."""

_GRANT_TYPE: Final = "client_credentials"


@dataclass(frozen=True, slots=True)
class OAuthClientConfig:
    """One configured OAuth client (client-credentials grant).

    Args:
        client_id: The client id.
        secret: The client secret; kept out of ``repr``.
        token_lifetime: Seconds a token lives (``expires_in``).
        denied_topics: Topic templates this client may not subscribe to (its "roles" lack the
            permission), e.g. ``{"v2.users.{id}.presence"}``.
    """

    client_id: ClientId
    secret: str = field(repr=False)
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    denied_topics: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A successful token answer: ``{"access_token", "token_type", "expires_in"}`` (§3.2)."""

    access_token: str = field(repr=False)
    token_id: TokenId
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret; casing UNVERIFIED

    def to_json(self) -> dict[str, str | int]:
        """Return the JSON body of the answer."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid bearer token speaks for: the client and the token's handle."""

    client_id: ClientId
    token_id: TokenId


@dataclass(frozen=True, slots=True)
class TokenRevoked:
    """Report of a revocation: the channels made with ``token_id`` must be told (§5.3)."""

    client_id: ClientId
    token_id: TokenId


@dataclass(slots=True)
class _TokenRecord:
    token_id: TokenId
    client_id: ClientId
    issued_at: float
    expires_at: float
    revoked: bool = False

    def is_valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenRegistry:
    """Configured OAuth clients and the tokens issued to them.

    Args:
        clients: The clients the login service accepts.
        rng: Source of token bytes (inject a seeded one for repeatable tests).
        bad_client_status: HTTP status of ``invalid_client`` (§3.3: 400 or 401, UNVERIFIED;
            default 401).
    """

    def __init__(
        self,
        clients: Iterable[OAuthClientConfig],
        rng: random.Random,
        *,
        bad_client_status: int = DEFAULTS.bad_credentials_status,
    ) -> None:
        self._clients: dict[ClientId, OAuthClientConfig] = {}
        self._tokens: dict[bytes, _TokenRecord] = {}
        self._by_id: dict[TokenId, bytes] = {}
        self._rng = rng
        self._bad_client_status = bad_client_status
        self._serial = 0
        for client in clients:
            self.add_client(client)

    # ------------------------------------------------------------------ clients

    def add_client(self, client: OAuthClientConfig) -> None:
        """Register (or replace) an OAuth client."""
        self._clients[client.client_id] = client

    def client(self, client_id: ClientId) -> OAuthClientConfig | None:
        """Return the configuration of ``client_id``, if known."""
        return self._clients.get(client_id)

    def clients(self) -> Iterator[OAuthClientConfig]:
        """Iterate over the configured clients."""
        return iter(self._clients.values())

    # ------------------------------------------------------------------ grant

    def issue(
        self, client_id: str | None, secret: str | None, grant_type: str | None, now: float
    ) -> TokenGrant:
        """Answer ``POST /oauth/token`` for the client-credentials grant (§3.1).

        The client is checked before the grant type, as an OAuth server authenticates the
        client first (order UNVERIFIED for Genesys).

        Args:
            client_id: From the Basic header (or form field); ``None`` if absent.
            secret: Likewise.
            grant_type: The form's ``grant_type``; ``None`` if absent.
            now: Current time, seconds.

        Returns:
            The new token.

        Raises:
            OAuthError: ``invalid_client`` (unknown client or wrong secret, status configurable,
                §3.3); ``invalid_request`` (no ``grant_type``, 400, RFC 6749 §5.2, UNVERIFIED for
                Genesys); ``unsupported_grant_type`` (any other grant, 400, RFC 6749, UNVERIFIED).
        """
        client = self._clients.get(ClientId(client_id)) if client_id else None
        if (
            client is None
            or secret is None
            or not hmac.compare_digest(secret.encode(), client.secret.encode())
        ):
            raise OAuthError("invalid_client", "authentication failed", self._bad_client_status)
        if not grant_type:
            raise OAuthError("invalid_request", "Missing grant type", 400)
        if grant_type != _GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", "Unsupported grant type", 400)
        self._serial += 1
        token_id = TokenId(f"tok-{self._serial:04d}")
        # 48 random bytes, base64url: opaque like the real thing; the real format is UNVERIFIED.
        access_token = base64.urlsafe_b64encode(self._rng.randbytes(48)).decode().rstrip("=")
        digest = _digest(access_token)
        self._tokens[digest] = _TokenRecord(
            token_id, client.client_id, now, now + client.token_lifetime
        )
        self._by_id[token_id] = digest
        return TokenGrant(access_token, token_id, client.token_lifetime)

    # ------------------------------------------------------------------ bearer check

    def authenticate(self, authorization: str | None, now: float) -> Principal:
        """Check an ``Authorization`` header on ``/api/v2/**`` (§10 item 2).

        Args:
            authorization: The raw header value, or ``None`` when absent.
            now: Current time, seconds.

        Returns:
            The client and token handle the token speaks for.

        Raises:
            EmulatorError: 401 ``authentication.required`` when the header is missing, is not
                ``Bearer <token>`` or has an empty token; 401 ``bad.credentials`` when the
                token is unknown, expired or revoked.
        """
        if not authorization:
            raise authentication_required()
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise authentication_required()
        record = self._tokens.get(_digest(token))
        if record is None or not record.is_valid(now):
            raise bad_credentials()
        return Principal(record.client_id, record.token_id)

    # ------------------------------------------------------------------ fault hooks

    def expire(self, token_id: TokenId, now: float) -> bool:
        """Make ``token_id`` expire at ``now``; returns False if it is unknown."""
        record = self._record(token_id)
        if record is None:
            return False
        record.expires_at = min(record.expires_at, now)
        return True

    def revoke(self, token_id: TokenId) -> TokenRevoked | None:
        """Revoke ``token_id``; returns the report, or None if unknown or already revoked."""
        record = self._record(token_id)
        if record is None or record.revoked:
            return None
        record.revoked = True
        return TokenRevoked(record.client_id, record.token_id)

    # ------------------------------------------------------------------ queries

    def is_valid(self, token_id: TokenId, now: float) -> bool:
        """True while ``token_id`` is neither expired nor revoked."""
        record = self._record(token_id)
        return record is not None and record.is_valid(now)

    def token_ids(self, client_id: ClientId | None = None) -> list[TokenId]:
        """Handles of known tokens, oldest first, optionally of one client."""
        return [
            r.token_id
            for r in self._tokens.values()
            if client_id is None or r.client_id == client_id
        ]

    def state_of(self, token_id: TokenId, now: float) -> Literal["valid", "expired", "revoked"]:
        """Where ``token_id`` stands (for the admin API).

        Raises:
            KeyError: ``token_id`` is unknown.
        """
        record = self._record(token_id)
        if record is None:
            raise KeyError(token_id)
        if record.revoked:
            return "revoked"
        return "valid" if record.is_valid(now) else "expired"

    def pop_expired(self, now: float) -> list[Principal]:
        """Forget tokens that expired by ``now``; returns them, each exactly once.

        Revoked tokens stay until they expire too, so a revocation is never reported as an
        expiry. Forgotten tokens answer ``bad.credentials`` like any unknown token.
        """
        gone = [r for r in self._tokens.values() if now >= r.expires_at]
        for record in gone:
            del self._tokens[self._by_id.pop(record.token_id)]
        return [Principal(r.client_id, r.token_id) for r in gone if not r.revoked]

    def _record(self, token_id: TokenId) -> _TokenRecord | None:
        digest = self._by_id.get(token_id)
        return None if digest is None else self._tokens.get(digest)
