"""The dashboard's push endpoint, over HTTP: one signed POST per batch.

Each request carries the batch body exactly as given (``Content-Type: application/json``),
its ``Idempotency-Key`` (the same on every re-send of one batch, so the dashboard applies it
once), ``X-Signature-Timestamp`` (epoch seconds of this attempt) and ``X-Signature-SHA256``
(``v1=`` HMAC-SHA256 over timestamp, key and body: :func:`pipeline.core.workers.push.sign`).
Every attempt is signed anew, so a re-send minutes later is still inside the dashboard's
window while the key tells it the batch is already applied. The secret never reaches a log
line, and the URL is logged without its userinfo or query.

One call is one attempt: no answer at all (refused, reset, timed out) is reported as status
None, ``Retry-After`` is parsed and capped (:func:`pipeline.core.http_policy.parse_retry_after`),
and what to do about any answer is :func:`pipeline.core.workers.push.classify_push`'s
business; the dashboard worker alone counts attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from pipeline.core.http_policy import DEFAULT_MAX_RETRY_AFTER_S, parse_retry_after
from pipeline.core.redaction import redact_url
from pipeline.core.workers.push import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["DashboardClient", "PushOutcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What one push attempt got back.

    Attributes:
        status: the HTTP status, or None when no answer came (refused, reset, timed out).
        retry_after: the ``Retry-After`` header in seconds, when present, readable and
            finite, cut to ``max_retry_after_s``.
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
        max_retry_after_s: the longest ``Retry-After`` reported as given.
        clock: epoch seconds, for the signature timestamp (tests may pass their own).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        secret: SecretStr,
        timeout_s: float,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.url = url
        self._secret = secret
        self._timeout = httpx.Timeout(timeout_s)
        self._max_retry_after_s = max_retry_after_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"DashboardClient(url={redact_url(self.url)!r})"

    def headers(self, batch_body: bytes, idempotency_key: str) -> dict[str, str]:
        """The request headers for ``batch_body``, signed now.

        Args:
            batch_body: the JSON bytes as sent.
            idempotency_key: the batch's key (``A-Z a-z 0-9 _ -``).

        Returns:
            Content type, idempotency key, signature timestamp and signature.

        Raises:
            ValueError: the key has other characters.
        """
        secret = self._secret.get_secret_value().encode()
        timestamp = int(self._clock())
        return {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, idempotency_key, batch_body),
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
            log.warning(
                "dashboard push to %s got no answer: %s", redact_url(self.url), type(exc).__name__
            )
            return PushOutcome(None)
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), time.time(), self._max_retry_after_s
        )
        return PushOutcome(response.status_code, retry_after)
