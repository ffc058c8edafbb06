"""What to do with an HTTP answer: a pure decision table, and the Retry-After rules.

The REST shell asks :func:`decide` after every answer (or transport failure) and carries out
the :class:`Decision`. Keeping the table here means one place says which failures are worth
retrying, which mean "get a new token", and which are final — the way Airbyte's
``default_error_mapping`` and websockets' ``process_exception`` do it.

Genesys rules (reference §4): 429 carries ``Retry-After`` in seconds (the SDK retries only when
it is present; we always retry, with our own backoff when it is absent); 401 means the token is
missing, expired or revoked; 5xx and 408 are the server's trouble; other 4xx are ours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["Decision", "Outcome", "decide", "parse_retry_after"]

_RETRIABLE_STATUSES = frozenset({408, 500, 502, 503, 504})


class Outcome(enum.Enum):
    """The shell's next move."""

    DONE = "done"  # success: use the answer
    RETRY = "retry"  # wait ``wait_s`` (None: your backoff), then send again
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an outcome name: get a new token, resend once
    FAIL = "fail"  # final: raise


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome, how long to wait first (None: use backoff), and why."""

    outcome: Outcome
    wait_s: float | None = None
    reason: str = ""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Args:
        value: the header value, or None.
        now: the current time (epoch seconds), for the date form.

    Returns:
        A non-negative number of seconds, or None when absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def decide(
    status: int | None, retry_after: float | None, attempt: int, max_attempts: int
) -> Decision:
    """Decide what to do after one attempt.

    Args:
        status: the HTTP status, or None when the request failed in transport
            (connection refused, reset, timeout).
        retry_after: parsed ``Retry-After`` seconds, if the answer had one.
        attempt: how many attempts were made so far (1 after the first).
        max_attempts: the most attempts allowed in total.

    Returns:
        The decision.
    """
    if status is not None and 200 <= status < 300:
        return Decision(Outcome.DONE)
    exhausted = attempt >= max_attempts
    if status == 401:
        if attempt > 1 and exhausted:
            return Decision(Outcome.FAIL, reason="401 after a fresh token")
        return Decision(Outcome.REFRESH_TOKEN, reason="401: token missing, expired or revoked")
    if status == 429:
        if exhausted:
            return Decision(Outcome.FAIL, retry_after, "429: still throttled")
        return Decision(Outcome.RETRY, retry_after, "429: throttled")
    if status is None or status in _RETRIABLE_STATUSES:
        if exhausted:
            return Decision(Outcome.FAIL, reason=f"{status or 'transport error'}: gave up")
        return Decision(Outcome.RETRY, retry_after, f"{status or 'transport error'}: retrying")
    return Decision(Outcome.FAIL, reason=f"{status}: not retriable")
