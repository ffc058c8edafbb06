"""The dashboard push, pure: the body signature and what an answer means for the batch.

:func:`sign` and :func:`verify` are the HMAC-SHA256 signature over the exact body bytes.

:func:`classify_push` narrows :func:`pipeline.core.http_policy.classify` (the one table of
HTTP failures) to what the dashboard worker can do with a batch; the statuses retried are
exactly the table's RETRY rows:

=====================================  ============  =========================================
answer                                 action        the worker
=====================================  ============  =========================================
2xx                                    ACK           ``acknowledged``, commit
408, 429, 5xx but 501/505, no answer   RETRY         the same bytes after ``Retry-After``
                                                     (capped) or full-jitter backoff; 429
                                                     does not count against the breaker
401, 403, 407, 404, 405, 501, 505,     FATAL_CONFIG  stops loudly: a wrong URL, secret or
1xx, 3xx                                             proxy, never the batch's fault, so
                                                     nothing goes to the DLQ
413                                    TOO_LARGE     splits the batch (a single value that is
                                                     still too large is rejected)
any other 4xx                          REJECT        this batch, for good: DLQ, audit
=====================================  ============  =========================================
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

from pipeline.core.http_policy import Failure, ResponseAction, classify

__all__ = ["PushAction", "PushDecision", "classify_push", "sign", "verify"]


def sign(body_bytes: bytes, secret: bytes) -> str:
    """HMAC-SHA256 of the exact body bytes, as lowercase hex.

    Args:
        body_bytes: the request body as sent.
        secret: the shared secret.

    Returns:
        64 hex characters.
    """
    return hmac.new(secret, body_bytes, hashlib.sha256).hexdigest()


def verify(body_bytes: bytes, signature: str, secret: bytes) -> bool:
    """Check a signature in constant time (``hmac.compare_digest``).

    Args:
        body_bytes: the request body as received.
        signature: the hex signature that came with it (case-insensitive).
        secret: the shared secret.

    Returns:
        True when it matches.
    """
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(body_bytes, secret), signature.lower())


class PushAction(enum.Enum):
    """What to do after a push attempt."""

    ACK = "ack"  # the dashboard holds the batch: acknowledged()
    RETRY = "retry"  # send the same batch again after a wait
    TOO_LARGE = "too_large"  # 413: send its values in smaller batches
    REJECT = "reject"  # this batch is never accepted: DLQ, audit, rejected()
    FATAL_CONFIG = "fatal_config"  # no batch will be accepted: stop, fix the configuration


@dataclass(frozen=True, slots=True)
class PushDecision:
    """An action, the wait the server asked for (None: use backoff), and why.

    Attributes:
        action: what to do.
        wait_s: ``Retry-After`` of a RETRY answer, else None.
        reason: one line for logs, audit and the DLQ record.
        is_failure: counts against the circuit breaker (5xx, 408, no answer; not 429).
        failure: the failure type from the shared table.
    """

    action: PushAction
    wait_s: float | None = None
    reason: str = ""
    is_failure: bool = False
    failure: Failure = Failure.NONE


def classify_push(status: int | None, retry_after: float | None) -> PushDecision:
    """Decide what an answer of the dashboard means (the table of the module docstring).

    Args:
        status: the HTTP status, or None when no answer came.
        retry_after: the parsed ``Retry-After`` seconds, if any
            (:func:`pipeline.core.http_policy.parse_retry_after`).

    Returns:
        The decision.
    """
    verdict = classify(status)
    failure, reason = verdict.failure, f"dashboard push: {verdict.message}"
    if verdict.action is ResponseAction.DONE:
        return PushDecision(PushAction.ACK, reason=reason)
    if verdict.action is ResponseAction.RETRY:
        counts = failure is not Failure.THROTTLED
        return PushDecision(PushAction.RETRY, retry_after, reason, counts, failure)
    if failure is Failure.TOO_LARGE:
        return PushDecision(PushAction.TOO_LARGE, reason=reason, failure=failure)
    if failure is Failure.CLIENT:
        return PushDecision(PushAction.REJECT, reason=reason, failure=failure)
    # UNAUTHORIZED, DENIED, NOT_FOUND, UNSUPPORTED, UNEXPECTED: the answer does not depend on
    # the batch, so every batch would get it; dead-lettering them all would empty the topic.
    return PushDecision(PushAction.FATAL_CONFIG, reason=reason, failure=failure)
