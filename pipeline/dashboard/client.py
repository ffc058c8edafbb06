"""The dashboard's push endpoint, over HTTP: one signed POST per batch.

Each request carries the batch body exactly as signed (``Content-Type: application/json``),
its ``Idempotency-Key`` (the same on every re-send of one batch, so the dashboard applies it
once) and ``X-Signature-SHA256``: the lowercase hex HMAC-SHA256 of the body bytes under the
shared secret (:func:`pipeline.core.workers.coalesce.sign`). The secret never reaches a log line.

No answer at all (refused, reset, timed out) is reported as status None; what to do about
any answer is :func:`pipeline.core.workers.coalesce.classify_push`'s business, not this module's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from pipeline.core.http_policy import parse_retry_after
from pipeline.core.workers.coalesce import sign

__all__ = ["DashboardClient", "PushOutcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What one push attempt got back.

    Attributes:
        status: the HTTP status, or None when no answer came (refused, reset, timed out).
        retry_after: the ``Retry-After`` header in seconds, when present and readable.
    """

    status: int | None
    retry_after: float | None = None


class DashboardClient:
    """Signed pushes to the dashboard.

    Args:
        http: the HTTP client to send with (owned by the caller, who closes it).
        url: the dashboard's push endpoint.
        secret: the HMAC-SHA256 key of the signature header.
        timeout_s: the whole-request timeout of one push.
    """

    def __init__(
        self, http: httpx.AsyncClient, url: str, secret: SecretStr, timeout_s: float
    ) -> None:
        self._http = http
        self.url = url
        self._secret = secret
        self._timeout = httpx.Timeout(timeout_s)

    def __repr__(self) -> str:
        return f"DashboardClient(url={self.url!r})"

    def headers(self, batch_body: bytes, idempotency_key: str) -> dict[str, str]:
        """The request headers for ``batch_body`` (signature included)."""
        secret = self._secret.get_secret_value().encode()
        return {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "X-Signature-SHA256": sign(batch_body, secret),
        }

    async def push(self, batch_body: bytes, idempotency_key: str) -> PushOutcome:
        """POST one batch body, exactly as given.

        Args:
            batch_body: the JSON bytes (signed as they are).
            idempotency_key: the batch's idempotency key.

        Returns:
            The status and ``Retry-After``; status None when no answer came.
        """
        try:
            response = await self._http.post(
                self.url,
                content=batch_body,
                headers=self.headers(batch_body, idempotency_key),
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            log.warning("dashboard push to %s got no answer: %s", self.url, type(exc).__name__)
            return PushOutcome(None)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        return PushOutcome(response.status_code, retry_after)
