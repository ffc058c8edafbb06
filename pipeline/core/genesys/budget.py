"""One OAuth client's request budgets, shared by every REST caller of that client.

Genesys counts a token's requests in one budget across endpoints and keeps stricter limits of
its own for some services (docs/genesys-api.md §4.5), so the client keeps one
:class:`RequestBudget` per endpoint family (:class:`RequestBudgets`, :func:`family_of`): each
learns from its own family's answers, and a 429 pauses its family only — an analytics storm
does not hold up channel recovery. A 429 whose ``ErrorBody.limit.namespace`` is
``platform.api`` (the token's own budget) pauses every family (:meth:`RequestBudgets.throttled`).

Genesys puts ``inin-ratelimit-count``, ``inin-ratelimit-allowed`` and ``inin-ratelimit-reset``
on its answers (docs/genesys-api.md §4.3; read as "requests used in this window", "requests
allowed", "seconds until the window resets" — the usual reading, UNVERIFIED). A 429 carries
``Retry-After``. The budget learns from both and tells each caller how long to wait before its
next request, so that a burst of callers slows down *before* Genesys says 429 rather than
after, and a 429 seen by one caller pauses all of them.

Every wait is capped at ``max_wait_s`` (the Retry-After cap of :mod:`pipeline.core.http_policy`,
300 s by default): a server that announces a window reset in a day, or ``inf``, must not park
every caller for that long; a value that is not finite counts as absent.

Pure: the caller passes ``now`` (epoch seconds) and the headers.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.core.http_policy import DEFAULT_MAX_RETRY_AFTER_S, cap_retry_after

__all__ = ["FAMILIES", "PLATFORM_NAMESPACE", "RequestBudget", "RequestBudgets", "family_of"]

FAMILIES = ("notifications", "analytics", "directory", "other")
"""The endpoint families of the Platform API, each with a budget of its own."""
PLATFORM_NAMESPACE = "platform.api"
"""The ``Limit.namespace`` of the token's own budget (a 429 for it pauses every family)."""
_PREFIXES = (
    ("/api/v2/notifications", "notifications"),
    ("/api/v2/analytics", "analytics"),
    ("/api/v2/routing", "directory"),
    ("/api/v2/users", "directory"),
)


def family_of(path: str) -> str:
    """The endpoint family of a Platform API path (one of :data:`FAMILIES`)."""
    for prefix, family in _PREFIXES:
        if path.startswith(prefix):
            return family
    return "other"


class RequestBudget:
    """How long the next request must wait.

    Args:
        reserve: requests to keep in hand at the end of a window (for the session's urgent
            calls, such as re-subscribing a dropped channel).
        max_wait_s: the longest wait a window reset or a 429 can impose.
    """

    def __init__(self, reserve: int = 1, max_wait_s: float = DEFAULT_MAX_RETRY_AFTER_S) -> None:
        self.reserve = reserve
        self.max_wait_s = max_wait_s
        self._remaining: int | None = None
        self._window_ends_at = 0.0
        self._paused_until = 0.0

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        """Learn from an answer's ``inin-ratelimit-*`` headers (ignored when absent)."""
        try:
            count = int(headers["inin-ratelimit-count"])
            allowed = int(headers["inin-ratelimit-allowed"])
            reset = cap_retry_after(float(headers["inin-ratelimit-reset"]), self.max_wait_s)
        except (KeyError, ValueError):
            return
        if reset is None:
            return
        self._remaining = allowed - count
        self._window_ends_at = now + reset

    def throttled(self, retry_after: float, now: float) -> None:
        """A 429 said wait ``retry_after`` seconds (capped): every caller waits."""
        wait = cap_retry_after(retry_after, self.max_wait_s)
        if wait is not None:
            self._paused_until = max(self._paused_until, now + wait)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request (0 when it may go now)."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._remaining is not None and self._remaining <= self.reserve:
            if now < self._window_ends_at:
                return self._window_ends_at - now
            self._remaining = None  # a new window: unknown until the next answer
        return 0.0

    def spend(self) -> None:
        """Count a request about to go out (so concurrent callers see it at once)."""
        if self._remaining is not None:
            self._remaining -= 1


class RequestBudgets:
    """One :class:`RequestBudget` per endpoint family, made on first use.

    Args:
        reserve: as for :class:`RequestBudget`, in every family.
    """

    def __init__(self, reserve: int = 1) -> None:
        self.reserve = reserve
        self._budgets: dict[str, RequestBudget] = {}

    def for_path(self, path: str) -> RequestBudget:
        """The budget of the family ``path`` belongs to."""
        return self.of_family(family_of(path))

    def of_family(self, family: str) -> RequestBudget:
        """The budget of ``family`` (one of :data:`FAMILIES`)."""
        budget = self._budgets.get(family)
        if budget is None:
            budget = self._budgets[family] = RequestBudget(self.reserve)
        return budget

    def throttled(self, path: str, retry_after: float, now: float, namespace: str | None) -> None:
        """A 429 on ``path``: its family waits, or every family for the token's own budget.

        Args:
            path: the request path.
            retry_after: seconds to wait.
            now: epoch seconds.
            namespace: the answer's ``ErrorBody.limit.namespace``, if any.
        """
        families = FAMILIES if namespace == PLATFORM_NAMESPACE else (family_of(path),)
        for family in families:
            self.of_family(family).throttled(retry_after, now)
