"""The dashboard push, pure: the request signature, the receiver's replay guard, and what
an answer means for the batch.

Signature (recipe ``v1``; README "Security" has it for third-party dashboards): the sender
puts the current epoch seconds in ``X-Signature-Timestamp`` and
``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{idempotency_key}.".encode() + body)>`` in
``X-Signature-SHA256``. Timestamp, key and body are all signed, so a captured push can be
neither re-sent with a new ``Idempotency-Key`` nor altered, and it expires: the receiver
(:func:`verify`) refuses a timestamp more than ``max_skew_s`` (default 5 min) from its clock.
Idempotency keys are limited to ``[A-Za-z0-9_-]`` (:func:`is_valid_key`), so the ``.``
separators cannot be shifted between key and body. The header may carry several
comma-separated ``v1=`` entries (a secret being rotated); one match is enough.

:class:`SeenKeys` is the receiver's memory of keys: a key is remembered until the newest
signature it came with expires, so within the window a replay is always recognised, and
memory never holds more than the keys pushed within one window.

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
import heapq
import hmac
import re
from dataclasses import dataclass

from pipeline.core.http_policy import Failure, ResponseAction, classify

__all__ = [
    "DEFAULT_MAX_SKEW_S",
    "KNOWN_DEFAULT_SECRETS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Admission",
    "PushAction",
    "PushDecision",
    "SeenKeys",
    "SignatureCheck",
    "classify_push",
    "is_default_secret",
    "is_valid_key",
    "sign",
    "signed_payload",
    "verify",
]

SIGNATURE_HEADER = "X-Signature-SHA256"
"""``v1=<hex>``: the HMAC-SHA256 of :func:`signed_payload`."""
TIMESTAMP_HEADER = "X-Signature-Timestamp"
"""Epoch seconds (an integer) when the request was signed."""
DEFAULT_MAX_SKEW_S = 300.0
"""How far a signature's timestamp may be from the receiver's clock, either way."""
KNOWN_DEFAULT_SECRETS = frozenset(
    {"change-me", "changeme", "change_me", "replace-me", "demo-dashboard-secret", "secret", "x"}
)
"""Secrets that ship in examples and demos: a receiver refuses them outside development."""

_VERSION = "v1"
_KEY = re.compile(r"[A-Za-z0-9_-]{1,200}")
_HEX = re.compile(r"[0-9a-f]{64}")


def is_valid_key(idempotency_key: str) -> bool:
    """Whether a key may be signed: 1-200 of ``A-Z a-z 0-9 _ -`` (no ``.`` separator)."""
    return _KEY.fullmatch(idempotency_key) is not None


def is_default_secret(secret: str) -> bool:
    """Whether ``secret`` is empty or one of :data:`KNOWN_DEFAULT_SECRETS` (any case)."""
    return not secret.strip() or secret.strip().lower() in KNOWN_DEFAULT_SECRETS


def signed_payload(timestamp: int, idempotency_key: str, body: bytes) -> bytes:
    """The bytes that are signed: ``f"{timestamp}.{idempotency_key}."`` then the body.

    Raises:
        ValueError: the key is not :func:`is_valid_key`.
    """
    if not is_valid_key(idempotency_key):
        raise ValueError("an idempotency key is 1-200 characters of A-Z a-z 0-9 _ -")
    return f"{timestamp}.{idempotency_key}.".encode() + body


def sign(secret: bytes, timestamp: int, idempotency_key: str, body: bytes) -> str:
    """The ``X-Signature-SHA256`` value of a push.

    Args:
        secret: the shared secret.
        timestamp: epoch seconds, sent as ``X-Signature-Timestamp``.
        idempotency_key: sent as ``Idempotency-Key``.
        body: the request body exactly as sent.

    Returns:
        ``v1=`` and 64 lowercase hex characters.

    Raises:
        ValueError: the key is not :func:`is_valid_key`.
    """
    payload = signed_payload(timestamp, idempotency_key, body)
    return f"{_VERSION}={hmac.new(secret, payload, hashlib.sha256).hexdigest()}"


class SignatureCheck(enum.Enum):
    """What :func:`verify` found."""

    VALID = "valid"
    MISSING = "signature or timestamp missing"
    MALFORMED = "signature, timestamp or idempotency key malformed"
    EXPIRED = "timestamp outside the allowed window"
    MISMATCH = "signature does not match"


def verify(
    secret: bytes,
    *,
    timestamp: str,
    idempotency_key: str,
    body: bytes,
    signature: str,
    now: float,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> SignatureCheck:
    """Check a push's signature in constant time (``hmac.compare_digest``).

    Args:
        secret: the shared secret.
        timestamp: the ``X-Signature-Timestamp`` header as received ("" when absent).
        idempotency_key: the ``Idempotency-Key`` header ("" when absent).
        body: the request body as received.
        signature: the ``X-Signature-SHA256`` header ("" when absent): one or more
            comma-separated ``v1=<hex>`` entries (hex in any case).
        now: the receiver's clock, epoch seconds.
        max_skew_s: the largest distance allowed between ``timestamp`` and ``now``.

    Returns:
        VALID, or why not.
    """
    if not (timestamp and signature and idempotency_key):
        return SignatureCheck.MISSING
    if not (timestamp.isascii() and timestamp.isdigit()) or not is_valid_key(idempotency_key):
        return SignatureCheck.MALFORMED
    ts = int(timestamp)
    if abs(now - ts) > max_skew_s:
        return SignatureCheck.EXPIRED
    offered = [_hex_of(entry) for entry in signature.split(",")]
    candidates = [hex_ for hex_ in offered if hex_ is not None]
    if not candidates:
        return SignatureCheck.MALFORMED
    expected = sign(secret, ts, idempotency_key, body).partition("=")[2]
    matched = False
    for candidate in candidates:  # no early exit: the time taken does not depend on which
        matched |= hmac.compare_digest(expected, candidate)
    return SignatureCheck.VALID if matched else SignatureCheck.MISMATCH


def _hex_of(entry: str) -> str | None:
    version, sep, value = entry.strip().partition("=")
    value = value.lower()
    if not sep or version != _VERSION or not value.isascii() or not _HEX.fullmatch(value):
        return None
    return value


class Admission(enum.Enum):
    """What :meth:`SeenKeys.admit` decided about a key."""

    NEW = "new"  # apply the push
    DUPLICATE = "duplicate"  # already applied: answer success, apply nothing
    FULL = "full"  # too many keys within the window: answer 429, the sender retries


class SeenKeys:
    """The idempotency keys a receiver has applied, each kept until its signature expires.

    A push signed at ``timestamp`` verifies until ``timestamp + window_s``, so its key is
    remembered exactly that long (extended when a re-send comes with a newer timestamp):
    every replay the signature check lets through is recognised, and memory holds only the
    keys of one window, at most ``max_keys`` (beyond that new keys get :attr:`Admission.FULL`
    rather than forgetting a key too early).

    Args:
        window_s: the signature window (``max_skew_s`` of :func:`verify`).
        max_keys: keys held at most.
    """

    def __init__(self, window_s: float = DEFAULT_MAX_SKEW_S, max_keys: int = 100_000) -> None:
        self._window_s = window_s
        self._max_keys = max_keys
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # (expiry, key), a min-heap; stale entries

    def __len__(self) -> int:
        return len(self._expiry)

    def admit(self, key: str, timestamp: float, now: float) -> Admission:
        """Remember ``key`` (signed at ``timestamp``) and say whether it is new.

        Args:
            key: a verified push's idempotency key.
            timestamp: its signature's timestamp, epoch seconds.
            now: the receiver's clock.

        Returns:
            NEW (apply it), DUPLICATE (already applied) or FULL (refuse for now).
        """
        self._forget(now)
        expiry = timestamp + self._window_s
        known = self._expiry.get(key)
        if known is None and len(self._expiry) >= self._max_keys:
            return Admission.FULL
        if known is None or expiry > known:
            self._expiry[key] = expiry
            heapq.heappush(self._queue, (expiry, key))
        return Admission.NEW if known is None else Admission.DUPLICATE

    def _forget(self, now: float) -> None:
        while self._queue and self._queue[0][0] < now:
            expiry, key = heapq.heappop(self._queue)
            if self._expiry.get(key) == expiry:
                del self._expiry[key]


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
