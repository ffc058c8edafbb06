"""What an HTTP failure means, once for every caller: the table, Retry-After, backoff.

Every HTTP caller of the pipeline (the Genesys REST client and token provider, the channel
session's view of their outcomes, the dashboard push) starts from :func:`classify`: one status,
or ``None`` for a transport failure (refused, reset, timed out), gives one :class:`Verdict`
(a :class:`ResponseAction`, a :class:`Failure` type and a message). Each caller then narrows the
verdict to its own vocabulary without changing which statuses are retried: the session turns a
404 on a channel into "channel gone", the push turns 401/403/404 into "fix the configuration".
Airbyte's ``default_error_mapping`` and websockets' ``process_exception`` have the same shape.

The table
---------
=============================  ==============  =================  ============================
status                         action          failure            why
=============================  ==============  =================  ============================
none (transport failure)       RETRY           TRANSPORT          the network or server blinked
2xx                            DONE            NONE
401                            REFRESH_TOKEN   UNAUTHORIZED       token or credentials refused
403, 407                       FAIL            DENIED             a permission is missing
404                            FAIL            NOT_FOUND          no such resource (or URL)
405, 501, 505                  FAIL            UNSUPPORTED        the server will never do this
408                            RETRY           TIMEOUT            the server gave up waiting
413                            FAIL            TOO_LARGE          smaller requests may pass
429                            RETRY           THROTTLED          Retry-After, else backoff
other 4xx                      FAIL            CLIENT             this request is wrong
other 5xx                      RETRY           SERVER             the server's trouble
1xx, 3xx, anything else        FAIL            UNEXPECTED         redirects are not followed
=============================  ==============  =================  ============================

Why 501 and 505 are not retried while every other 5xx is: RFC 9110 §15.6.2 says 501 means
the server does not support the method at all, and §15.6.6 that 505 refuses the protocol
version; neither heals with time, unlike 500/502/503/504 (and the rarer 5xx, which we treat as
transient: retrying a few times costs little, and a stuck caller is worse). 405 is grouped
with them: the endpoint does not take this method, whatever the body. Genesys documents 429
with ``Retry-After`` in seconds, 401 for a missing, expired or revoked token, 5xx and 408 as
its trouble and other 4xx as ours (docs/genesys-api.md §4).

Retry-After
-----------
:func:`parse_retry_after` reads both forms (delta seconds and an HTTP date, RFC 9110 §10.2.3)
and caps the result at ``max_s`` (:data:`DEFAULT_MAX_RETRY_AFTER_S`, 300 s): a server that
asks for an hour, or for ``inf``, must not park a caller for that long. Non-finite values
(``inf``, ``nan``) count as absent. Retry-After is obeyed on any RETRY answer (429 and 503
carry it in practice); without it the caller backs off with full jitter (:func:`full_jitter`,
:class:`Backoff`).

Where attempts are counted
--------------------------
Exactly one loop counts the attempts of any one call:

* The channel session's calls (token, create channel, subscribe, HEAD) are retried by the
  session (:class:`~pipeline.core.genesys.session.ChannelSession`: unbounded, with its
  backoff); its shell asks :class:`~pipeline.genesys.rest.GenesysRest` and
  :class:`~pipeline.genesys.auth.TokenProvider` for ``attempts=1``, so each session retry is
  exactly one HTTP request.
* Every other REST call (directory, availability, the snapshot queries of a backfill) is
  retried by ``GenesysRest.request`` alone, up to ``max_attempts`` (6) in total; a login by
  ``TokenProvider`` alone, up to its ``max_attempts``. A backfill snapshot is a unit above
  REST calls: the session re-runs a failed one at most ``max_backfill_attempts`` (3) times,
  so across re-runs one snapshot query may be sent up to 6 × 3 times (accepted: a snapshot
  is re-run whole, and one transient 503 should not cost the whole snapshot).
* A 401 is not a retry: ``BearerAuth`` answers it once with a forced token refresh (a login,
  counted by ``TokenProvider`` as above) and one re-send; a second 401 is final for that call
  (the session then starts over with a new token and a new channel, which is what a revoked
  token needs, §5.4).
* A dashboard push is retried by the dashboard worker alone, for as long as its circuit
  breaker allows.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_MAX_RETRY_AFTER_S",
    "Backoff",
    "Decision",
    "Failure",
    "ResponseAction",
    "Verdict",
    "cap_retry_after",
    "classify",
    "decide",
    "full_jitter",
    "is_retriable",
    "parse_retry_after",
]

DEFAULT_MAX_RETRY_AFTER_S = 300.0
"""The longest ``Retry-After`` obeyed as given; longer ones are cut to it."""

# 2.0 ** 1024 overflows a float; any exponent this large is far past every sane cap anyway.
_MAX_EXPONENT = 1000


class ResponseAction(enum.Enum):
    """The caller's next move after one answer."""

    DONE = "done"  # success: use the answer
    RETRY = "retry"  # wait (Retry-After, else backoff), then send the same request again
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an action name: get a new token first
    FAIL = "fail"  # final for this request


class Failure(enum.Enum):
    """What kind of failure an answer is (``NONE`` for a success)."""

    NONE = "none"
    TRANSPORT = "transport"  # no answer: refused, reset, timed out
    TIMEOUT = "timeout"  # 408
    THROTTLED = "throttled"  # 429
    SERVER = "server"  # 5xx but 501/505
    UNAUTHORIZED = "unauthorized"  # 401
    DENIED = "denied"  # 403, 407
    NOT_FOUND = "not_found"  # 404
    UNSUPPORTED = "unsupported"  # 405, 501, 505
    TOO_LARGE = "too_large"  # 413
    CLIENT = "client"  # any other 4xx
    UNEXPECTED = "unexpected"  # 1xx, 3xx, out of range


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one answer means, before anyone counts attempts.

    Attributes:
        action: the next move.
        failure: the kind of failure (``Failure.NONE`` for a success).
        message: one safe line for logs, audit and errors (status and meaning only).
    """

    action: ResponseAction
    failure: Failure
    message: str


_SPECIAL: dict[int, tuple[ResponseAction, Failure, str]] = {
    401: (ResponseAction.REFRESH_TOKEN, Failure.UNAUTHORIZED, "unauthorized"),
    403: (ResponseAction.FAIL, Failure.DENIED, "forbidden: a permission is missing"),
    404: (ResponseAction.FAIL, Failure.NOT_FOUND, "not found"),
    405: (ResponseAction.FAIL, Failure.UNSUPPORTED, "method not allowed here"),
    407: (ResponseAction.FAIL, Failure.DENIED, "proxy authentication required"),
    408: (ResponseAction.RETRY, Failure.TIMEOUT, "the server timed out waiting"),
    413: (ResponseAction.FAIL, Failure.TOO_LARGE, "request too large"),
    429: (ResponseAction.RETRY, Failure.THROTTLED, "throttled"),
    501: (ResponseAction.FAIL, Failure.UNSUPPORTED, "not implemented"),
    505: (ResponseAction.FAIL, Failure.UNSUPPORTED, "HTTP version not supported"),
}


def classify(status: int | None) -> Verdict:
    """Look one answer up in the table of the module docstring.

    Args:
        status: the HTTP status, or None when no answer came (refused, reset, timed out).

    Returns:
        The verdict.
    """
    if status is None:
        return Verdict(
            ResponseAction.RETRY, Failure.TRANSPORT, "no answer (refused, reset or timed out)"
        )
    special = _SPECIAL.get(status)
    if special is not None:
        action, failure, meaning = special
        return Verdict(action, failure, f"{status}: {meaning}")
    if 200 <= status < 300:
        return Verdict(ResponseAction.DONE, Failure.NONE, f"{status}: ok")
    if 400 <= status < 500:
        return Verdict(ResponseAction.FAIL, Failure.CLIENT, f"{status}: request refused")
    if 500 <= status < 600:
        return Verdict(ResponseAction.RETRY, Failure.SERVER, f"{status}: server error")
    return Verdict(ResponseAction.FAIL, Failure.UNEXPECTED, f"{status}: unexpected answer")


def is_retriable(status: int | None) -> bool:
    """Whether sending the same request again later can succeed (the table's RETRY rows).

    Args:
        status: the HTTP status, or None for a transport failure.

    Returns:
        True for transport failures, 408, 429 and 5xx but 501/505.
    """
    return classify(status).action is ResponseAction.RETRY


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict after counting attempts, with the wait the server asked for.

    Attributes:
        action: the next move (a RETRY past the last attempt becomes FAIL).
        failure: the kind of failure.
        message: one safe line.
        wait_s: ``Retry-After`` seconds for a RETRY (None: use your backoff).
    """

    action: ResponseAction
    failure: Failure
    message: str
    wait_s: float | None = None


def decide(
    status: int | None, retry_after: float | None, attempt: int, max_attempts: int
) -> Decision:
    """Decide what to do after attempt number ``attempt`` of at most ``max_attempts``.

    Args:
        status: the HTTP status, or None for a transport failure.
        retry_after: parsed ``Retry-After`` seconds (:func:`parse_retry_after`), if any.
        attempt: attempts made so far, this one included (1 after the first).
        max_attempts: the most attempts allowed in total (1: never retry).

    Returns:
        The decision: the table's verdict, except that a RETRY on the last attempt is a
        FAIL ("gave up after N attempts"), keeping ``wait_s`` for the error it raises.
    """
    verdict = classify(status)
    if verdict.action is not ResponseAction.RETRY:
        return Decision(verdict.action, verdict.failure, verdict.message)
    if attempt >= max_attempts:
        tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
        message = f"{verdict.message}; gave up after {tries}"
        return Decision(ResponseAction.FAIL, verdict.failure, message, retry_after)
    return Decision(ResponseAction.RETRY, verdict.failure, verdict.message, retry_after)


def parse_retry_after(
    value: str | None, now: float, max_s: float = DEFAULT_MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date).

    Args:
        value: the header value, or None.
        now: the current time (epoch seconds), for the date form.
        max_s: the longest wait returned; longer ones are cut to it.

    Returns:
        Seconds in ``[0, max_s]``, or None when absent, unreadable or not finite.
    """
    if value is None:
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _date_delta(text, now)
    return cap_retry_after(seconds, max_s)


def _date_delta(text: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
        if moment.tzinfo is None:  # "-0000": UTC with no claim about local time (RFC 5322)
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def cap_retry_after(seconds: float | None, max_s: float) -> float | None:
    """``seconds`` clamped to ``[0, max_s]``; None when absent or not finite."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), max_s)


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Delay before retry number ``attempt`` (0 for the first): exponential, full jitter.

    "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015) draws the
    whole delay at random, ``uniform(0, min(cap, base * 2**attempt))``, so clients that failed
    together spread out instead of retrying in lockstep; confluent-kafka's schema-registry
    client uses the same formula. The draw is injected, so callers (and tests) decide where
    randomness comes from.

    Args:
        attempt: how many delays came before this one (≥ 0).
        base: the ceiling of the first delay, in seconds (≥ 0).
        cap: the largest ceiling, in seconds (≥ 0).
        rand: returns a float in [0, 1); values outside are clamped to [0, 1].

    Returns:
        A delay in ``[0, min(cap, base * 2**attempt)]`` seconds.

    Raises:
        ValueError: a negative ``attempt``, ``base`` or ``cap``.
    """
    if attempt < 0 or base < 0 or cap < 0:
        raise ValueError(f"attempt, base and cap must be ≥ 0, got {attempt}, {base}, {cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    return ceiling * min(max(rand(), 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before a retry: ``Retry-After`` (capped), else full jitter.

    Attributes:
        base_s: ceiling of the first backoff delay.
        cap_s: largest ceiling of a backoff delay.
        max_retry_after_s: the longest ``Retry-After`` obeyed as given (longer ones are cut
            to it, so a misconfigured server cannot park a caller for a day).

    Raises:
        ValueError: a negative value, or ``cap_s`` below ``base_s``.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S

    def __post_init__(self) -> None:
        if min(self.base_s, self.cap_s, self.max_retry_after_s) < 0:
            raise ValueError("base_s, cap_s and max_retry_after_s must be ≥ 0")
        if self.cap_s < self.base_s:
            raise ValueError("cap_s must be ≥ base_s")

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first).

        Args:
            attempt: delays so far for this request (≥ 0).
            retry_after: what the server asked for, if anything (non-finite: ignored).
            rand: uniform [0, 1) source for the jitter.

        Returns:
            ``retry_after`` cut to ``[0, max_retry_after_s]`` when given, else
            :func:`full_jitter` over ``base_s`` and ``cap_s``.
        """
        wait = cap_retry_after(retry_after, self.max_retry_after_s)
        if wait is not None:
            return wait
        return full_jitter(attempt, self.base_s, self.cap_s, rand)
