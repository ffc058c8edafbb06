"""OAUTHBEARER tokens for aiokafka from an OIDC token endpoint (client-credentials grant).

librdkafka fetches and refreshes its own (``sasl.oauthbearer.method=oidc``); this provider
does the same for the worker consumers: one POST with HTTP basic auth (client id and secret)
and ``grant_type=client_credentials`` (plus ``scope``), the token reused until 80 % of its
``expires_in`` has passed, then fetched again. Concurrent connections share one fetch. The
client secret and the tokens are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import httpx
from aiokafka.abc import AbstractTokenProvider
from pydantic import SecretStr

from pipeline.errors import ConfigError, PublishError
from pipeline.settings_rules import public_url

if TYPE_CHECKING:
    from pipeline.settings import KafkaSettings

__all__ = ["REFRESH_FRACTION", "OidcTokenProvider", "refresh_at"]

log = logging.getLogger(__name__)

REFRESH_FRACTION: Final = 0.8
"""A token is fetched again once this share of its lifetime has passed."""
_DEFAULT_EXPIRES_IN: Final = 300.0  # an answer without expires_in: refresh within minutes


def refresh_at(fetched_at: float, expires_in: float) -> float:
    """When a token fetched at ``fetched_at`` (monotonic seconds) should be replaced."""
    return fetched_at + REFRESH_FRACTION * max(expires_in, 0.0)


class OidcTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """aiokafka's OAUTHBEARER token callback, backed by an OIDC token endpoint.

    Args:
        url: the token endpoint.
        client_id: the OIDC client.
        client_secret: its secret.
        scope: the scope to ask for (None: none).
        timeout_s: the longest one token request may take.
        clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url, self._client_id, self._secret, self._scope = url, client_id, client_secret, scope
        self._timeout_s = timeout_s
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Tokens fetched so far."""

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> OidcTokenProvider:
        """The provider for ``KAFKA_SASL_OAUTHBEARER_*`` (checked complete by the settings)."""
        return cls(
            kafka.sasl_oauthbearer_token_endpoint_url or "",
            kafka.sasl_oauthbearer_client_id or "",
            kafka.sasl_oauthbearer_client_secret or SecretStr(""),
            kafka.sasl_oauthbearer_scope,
        )

    async def token(self) -> str:
        """A valid access token: the cached one, or a new one once it is due for refresh.

        Raises:
            ConfigError: the endpoint refused the client credentials (4xx).
            PublishError: the endpoint could not be reached or answered nonsense.
        """
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                fetched_at = self._clock()
                self._token, expires_in = await self._fetch()
                self._refresh_at = refresh_at(fetched_at, expires_in)
                self.fetches += 1
                log.info("OAUTHBEARER token fetched from %s; valid %.0f s",
                         public_url(self._url), expires_in)  # fmt: skip
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        where = public_url(self._url)
        auth = httpx.BasicAuth(self._client_id, self._secret.get_secret_value())
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                answer = await client.post(self._url, data=data, auth=auth)
        except httpx.HTTPError as exc:
            raise PublishError(
                f"OAUTHBEARER token endpoint {where} unreachable: {type(exc).__name__}"
            ) from None
        if 400 <= answer.status_code < 500:
            raise ConfigError(
                f"OAUTHBEARER token endpoint {where} refused client "
                f"{self._client_id!r} (HTTP {answer.status_code}): check "
                "KAFKA_SASL_OAUTHBEARER_CLIENT_ID / _CLIENT_SECRET / _SCOPE"
            )
        if answer.status_code != 200:
            raise PublishError(f"OAUTHBEARER token endpoint {where} answered {answer.status_code}")
        return _parse(answer, where)


def _parse(answer: httpx.Response, where: str) -> tuple[str, float]:
    try:
        body: Any = answer.json()
        token = body["access_token"]
        expires_in = float(body.get("expires_in", _DEFAULT_EXPIRES_IN))
    except (ValueError, KeyError, TypeError):
        raise PublishError(
            f"OAUTHBEARER token endpoint {where}: no access_token in the answer"
        ) from None
    if not isinstance(token, str) or not token:
        raise PublishError(f"OAUTHBEARER token endpoint {where}: empty access_token")
    return token, expires_in
