"""OAuth client-credentials tokens: the answer's parsing and the refresh rule (pure).

``POST /oauth/token`` with Basic auth answers ``{"access_token", "token_type", "expires_in"}``
(docs/genesys-api.md §3.2); an error answers ``{"error", "description", "error_description"}``
(§3.3). Client-credentials tokens have no refresh token: a new one is simply requested before the
old
one expires. We refresh once 80 % of its life has passed (24 h tokens: after 19.2 h), so a slow
login never leaves callers without a valid token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.errors import AuthError

__all__ = ["AccessToken", "parse_token_answer"]

REFRESH_AT_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and its lifetime; ``value`` never appears in repr."""

    value: str = field(repr=False)
    issued_at: float
    expires_at: float

    @property
    def refresh_at(self) -> float:
        """When to ask for the next token."""
        return self.issued_at + (self.expires_at - self.issued_at) * REFRESH_AT_FRACTION

    def is_fresh(self, now: float) -> bool:
        """True until it is time to refresh."""
        return now < self.refresh_at


def parse_token_answer(status: int, body: bytes, now: float) -> AccessToken:
    """Turn the login service's answer into a token.

    Args:
        status: HTTP status of the answer (2xx expected).
        body: the answer's bytes.
        now: when the request was sent (epoch seconds).

    Raises:
        AuthError: an error answer, or a success without a usable token. The message holds the
            OAuth error code and description only, never credentials or the token.
    """
    doc = _json_object(body)
    if not 200 <= status < 300:
        error = str(doc.get("error") or "unknown_error")
        description = str(doc.get("error_description") or doc.get("description") or "")
        raise AuthError(status, error, description)
    token = doc.get("access_token")
    expires_in = doc.get("expires_in")
    if not isinstance(token, str) or not token:
        raise AuthError(status, "invalid_response", "no access_token in the answer")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        raise AuthError(status, "invalid_response", "no positive expires_in in the answer")
    return AccessToken(token, now, now + float(expires_in))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
