"""The REST calls a channel session makes, and what a failed one means for it.

A :class:`~pipeline.core.genesys.session.ChannelSession` has at most one REST call in flight
(:class:`Call`). When it fails, :func:`classify_failure` narrows the one HTTP table of
:func:`pipeline.core.http_policy.classify` to what a session can do (:class:`Outcome`):

- a refused login (401, other 4xx) → ``FATAL``: the credentials are wrong, retrying cannot help;
- 401 → ``REAUTH``: a new token, and a new channel (channels die with their token, §5.4);
- 404 on subscribe, extend or HEAD → ``GONE``: the channel is gone, build a new one;
- every RETRY row of the table (408, 429, 5xx but 501/505, no answer), and a 2xx the shell
  could not use → ``RETRY``: the same call after a delay;
- anything else (other 4xx, 501, 505, 1xx, 3xx) → ``FATAL``: the session fails.

The tables name the audit kind of each call's failure (:data:`FAILED_KIND`) and of a final
refusal (:data:`REJECTED_KIND`), and which failure input answers which call
(:data:`ANSWERED_BY`).
"""

from __future__ import annotations

import enum
from typing import Final

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.inputs import (
    ChannelCheckFailed,
    ChannelCreateFailed,
    SubscribeFailed,
    TokenFailed,
)
from pipeline.core.http_policy import Failure, ResponseAction, classify

__all__ = [
    "ANSWERED_BY",
    "FAILED_KIND",
    "ON_A_CHANNEL",
    "REJECTED_KIND",
    "Call",
    "Outcome",
    "classify_failure",
    "no_answer",
]


class Call(enum.Enum):
    """A REST call of the session (the value names it in audits and logs)."""

    TOKEN = "token"  # noqa: S105 - a name, not a password
    CREATE = "channel.create"
    SUBSCRIBE = "subscribe"
    EXTEND = "channel.extend"
    CHECK = "channel.check"


class Outcome(enum.Enum):
    """What a failed call means for the session (see the module docstring)."""

    RETRY = "retry"
    REAUTH = "reauth"
    GONE = "gone"
    FATAL = "fatal"


ON_A_CHANNEL: Final = (Call.SUBSCRIBE, Call.EXTEND, Call.CHECK)
"""The calls that address one channel: a 404 on them means the channel is gone."""

FAILED_KIND: Final = {
    Call.TOKEN: AuditKind.TOKEN_FAILED,
    Call.CREATE: AuditKind.CHANNEL_CREATE_FAILED,
    Call.SUBSCRIBE: AuditKind.SUBSCRIBE_FAILED,
    Call.EXTEND: AuditKind.CHANNEL_EXTEND_FAILED,
    Call.CHECK: AuditKind.CHANNEL_CHECK_FAILED,
}
"""The audit kind of a failure the session recovers from, per call."""

REJECTED_KIND: Final = {
    Call.TOKEN: AuditKind.TOKEN_REJECTED,
    Call.CREATE: AuditKind.CHANNEL_CREATE_REJECTED,
}
"""The audit kind of a ``FATAL`` failure; calls not listed use ``SUBSCRIBE_REJECTED``."""

ANSWERED_BY: Final[dict[type, tuple[Call, ...]]] = {
    TokenFailed: (Call.TOKEN,),
    ChannelCreateFailed: (Call.CREATE,),
    SubscribeFailed: (Call.SUBSCRIBE, Call.EXTEND),
    ChannelCheckFailed: (Call.CHECK,),
}
"""Which calls each failure input can answer."""


def no_answer(
    call: Call, now: float, reason: str
) -> TokenFailed | ChannelCreateFailed | SubscribeFailed | ChannelCheckFailed:
    """The failure input for ``call`` when it got no answer at all (a timeout, status None).

    Args:
        call: the call that timed out.
        now: when the session gave up on it.
        reason: a short, safe text.

    Returns:
        The input the shell would have sent for a failure without an answer.
    """
    if call is Call.TOKEN:
        return TokenFailed(now, reason)
    if call is Call.CREATE:
        return ChannelCreateFailed(now, reason)
    if call is Call.CHECK:
        return ChannelCheckFailed(now, reason)
    return SubscribeFailed(now, reason)


def classify_failure(call: Call, status: int | None) -> Outcome:
    """What a failed REST call means for the session.

    Args:
        call: the call that failed.
        status: its HTTP status; None for a network error or timeout.

    Returns:
        The outcome (module docstring).
    """
    verdict = classify(status)
    if call is Call.TOKEN and verdict.action in (ResponseAction.REFRESH_TOKEN, ResponseAction.FAIL):
        return Outcome.FATAL  # the login service refused the credentials: fix the config
    if verdict.action is ResponseAction.REFRESH_TOKEN:
        return Outcome.REAUTH
    if verdict.failure is Failure.NOT_FOUND and call in ON_A_CHANNEL:
        return Outcome.GONE
    if verdict.action in (ResponseAction.RETRY, ResponseAction.DONE):
        return Outcome.RETRY  # DONE: a 2xx whose answer the shell could not use
    # Other 4xx (400 too many topics, 403 missing permission, a 404 on the channel list ...)
    # will not heal by retrying the same topic set (§5.1, §5.4); nor will 501/505 or a 3xx.
    return Outcome.FATAL
