"""Request budgets of the emulated Platform API: one per token, plus per-family ones (pure).

Theory of operation
-------------------
docs/genesys-api.md §4.5: a client-credentials token has one budget across every endpoint
(300 requests a minute, limit ``client.credentials.token.rate.per.minute``; VERIFIED as public
statements), and services keep limits of their own besides (``Limit.namespace``, VERIFIED to
exist; their numbers are unknown, BELIEF). So a request is counted against:

* the **token budget** (``limit`` per ``window_seconds``), keyed by the token's handle, or by
  the OAuth client with ``scope="client"`` (``per_client`` overrides the limit per client).
  The login call has no token and does not count here;
* its **family's budget**, when ``families`` configures one for it (none by default): the
  families are :data:`FAMILIES`, by path (:func:`family_of`), keyed like the token budget
  (the login family by OAuth client).

Each budget is a fixed window: it opens at its first request, admits ``limit`` requests and
closes ``window_seconds`` later; the next request opens a new one. A request that any of its
budgets refuses is answered 429 ``too.many.requests.retry.after`` with ``Retry-After`` =
seconds until that window closes (rounded up; the longest when several refuse) and an
``ErrorBody.limit`` naming the budget (``key``, ``namespace``, ``value``; when the real service
fills ``limit`` is BELIEF), and counts against none of them.

Every answer carries ``inin-ratelimit-count`` / ``-allowed`` / ``-reset`` (names VERIFIED,
semantics BELIEF, §4.3) of the *tighter* of its budgets (fewest requests left; the family's
on a tie): public examples show ``allowed=180``, not the token's 300, so the headers describe
one specific bucket (BELIEF), and a client that keeps one budget per family learns each
family's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.errors import EmulatorError, rate_limited
from pipeline.emulator.state.tokens import ClientId

__all__ = [
    "FAMILIES",
    "TOKEN_LIMIT_KEY",
    "FamilyLimit",
    "RateDecision",
    "RateLimitSettings",
    "RateLimiter",
    "family_of",
    "parse_family_limits",
]

FAMILIES: Final = ("login", "notifications", "analytics", "directory", "other")
"""The endpoint families a budget can be configured for."""
TOKEN_LIMIT_KEY: Final = "client.credentials.token.rate.per.minute"  # noqa: S105 - a name
"""The token budget's limit name (§4.5, VERIFIED as quoted from the limits page)."""
_NAMESPACES: Final = {
    # Limit.namespace enum values (SDK models/limit.py); which one a family reports: BELIEF.
    "login": "auth.api",
    "notifications": "notifications",
    "analytics": "analytics",
    "directory": "directory",
    "other": "platform.api",
}
_PREFIXES: Final = (
    ("/oauth", "login"),
    ("/api/v2/notifications", "notifications"),
    ("/api/v2/analytics", "analytics"),
    ("/api/v2/routing", "directory"),
    ("/api/v2/users", "directory"),
)


def family_of(path: str) -> str:
    """The endpoint family of a request path (one of :data:`FAMILIES`).

    Deliberately not ``core.genesys.budget.family_of``: that is the client's reading of the
    families, this is the emulator's model of Genesys (it also counts logins); sharing one
    table would make a client mistake invisible to the tests.
    """
    for prefix, family in _PREFIXES:
        if path.startswith(prefix):
            return family
    return "other"


@dataclass(frozen=True, slots=True)
class FamilyLimit:
    """A family's own budget: ``limit`` requests per ``window_seconds``."""

    limit: int
    window_seconds: int = 60


def parse_family_limits(text: str) -> dict[str, FamilyLimit]:
    """``"analytics=60,notifications=120/30"`` → family budgets (window 60 s unless given).

    Raises:
        ValueError: an unknown family, or a limit or window that is not a positive integer.
    """
    limits: dict[str, FamilyLimit] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        family, sep, budget = item.partition("=")
        family = family.strip()
        if not sep or family not in FAMILIES:
            raise ValueError(f"family_rate_limits: {item!r} is not FAMILY=N[/SECONDS] "
                             f"with FAMILY one of {', '.join(FAMILIES)}")  # fmt: skip
        count, _, window = budget.partition("/")
        try:
            limit = FamilyLimit(int(count), int(window or 60))
        except ValueError as exc:
            raise ValueError(f"family_rate_limits: {item!r} needs whole numbers") from exc
        if limit.limit < 1 or limit.window_seconds < 1:
            raise ValueError(f"family_rate_limits: {item!r} needs positive numbers")
        limits[family] = limit
    return limits


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """The token budget (``per_client`` overrides ``limit`` for named clients), what it is
    keyed by, and the families' own budgets."""

    limit: int = DEFAULTS.rate_limit
    window_seconds: int = DEFAULTS.rate_window_s
    enabled: bool = True
    per_client: Mapping[ClientId, int] = field(default_factory=dict)
    scope: Literal["token", "client"] = "token"
    families: Mapping[str, FamilyLimit] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may pass, and what the rate-limit headers say.

    Attributes:
        namespace: the ``Limit.namespace`` of the budget the headers (and a 429) describe.
        limit_key: that budget's limit name.
    """

    allowed: bool
    count: int
    allowed_limit: int
    reset_seconds: int
    retry_after: int | None
    window_seconds: int
    namespace: str = "platform.api"
    limit_key: str = TOKEN_LIMIT_KEY

    def headers(self) -> dict[str, str]:
        """The ``inin-ratelimit-*`` headers for the answer."""
        return {
            "inin-ratelimit-count": str(self.count),
            "inin-ratelimit-allowed": str(self.allowed_limit),
            "inin-ratelimit-reset": str(self.reset_seconds),
        }

    def error(self) -> EmulatorError:
        """The 429 to answer when not :attr:`allowed`, rate-limit headers included."""
        error = rate_limited(self.retry_after, self.allowed_limit, self.window_seconds)
        error.headers.update(self.headers())
        limit = {"key": self.limit_key, "namespace": self.namespace, "value": self.allowed_limit}
        error.extra["limit"] = limit
        return error


@dataclass(slots=True)
class _Window:
    opened_at: float
    count: int = 0


@dataclass(frozen=True, slots=True)
class _Budget:
    key: tuple[str, str]
    limit: int
    window_seconds: int
    namespace: str
    limit_key: str


class RateLimiter:
    """Fixed-window budgets per token (or client) and per family.

    Args:
        settings: Budgets and keys; defaults to ``EmulatorConfig``'s.
    """

    def __init__(self, settings: RateLimitSettings | None = None) -> None:
        self.settings = settings or RateLimitSettings()
        self._windows: dict[tuple[str, str], _Window] = {}

    def check(
        self,
        client_id: ClientId,
        now: float,
        *,
        token_id: str | None = None,
        path: str = "/api/v2/",
    ) -> RateDecision:
        """Count one request at ``now`` and decide.

        Args:
            client_id: the OAuth client.
            now: emulator time in seconds.
            token_id: the token's handle (``None``: key the budget by client).
            path: the request path, for its family.

        Returns:
            The decision; when disabled every request passes (headers still count).
        """
        decisions = [self._peek(budget, now) for budget in self._budgets(client_id, token_id, path)]
        if not decisions:
            return RateDecision(True, 0, 0, 0, None, 0)
        refused = [d for d in decisions if not d[1].allowed]
        if refused and self.settings.enabled:
            return max((d for _, d in refused), key=lambda d: d.retry_after or 0)
        answers = []
        for window, decision in decisions:
            window.count += 1
            answers.append(_counted(decision))
        # The tighter budget's headers: fewest left; the later (the family's) on a tie.
        return min(reversed(answers), key=lambda d: d.allowed_limit - d.count)

    def reset(self, owner: str | None = None) -> None:
        """Forget the windows of ``owner`` (a client id or a token handle), or everyone's."""
        for key in [k for k in self._windows if owner is None or k[1] == owner]:
            del self._windows[key]

    def _budgets(self, client_id: ClientId, token_id: str | None, path: str) -> list[_Budget]:
        settings, family = self.settings, family_of(path)
        owner = token_id if settings.scope == "token" and token_id else client_id
        budgets = []
        if family != "login":  # the login call has no token
            limit = settings.per_client.get(client_id, settings.limit)
            budgets.append(
                _Budget(("*", owner), limit, settings.window_seconds, "platform.api",
                        TOKEN_LIMIT_KEY)
            )  # fmt: skip
        own = settings.families.get(family)
        if own is not None:
            key = client_id if family == "login" else owner
            budgets.append(
                _Budget((family, key), own.limit, own.window_seconds, _NAMESPACES[family],
                        f"{family}.rate.per.window")
            )  # fmt: skip
        return budgets

    def _peek(self, budget: _Budget, now: float) -> tuple[_Window, RateDecision]:
        window = self._windows.get(budget.key)
        if window is None or now >= window.opened_at + budget.window_seconds:
            window = self._windows[budget.key] = _Window(now)
        reset = max(1, math.ceil(window.opened_at + budget.window_seconds - now))
        allowed = window.count < budget.limit
        decision = RateDecision(
            allowed,
            window.count,
            budget.limit,
            reset,
            None if allowed else reset,
            budget.window_seconds,
            budget.namespace,
            budget.limit_key,
        )
        return window, decision


def _counted(decision: RateDecision) -> RateDecision:
    return RateDecision(
        True,
        decision.count + 1,
        decision.allowed_limit,
        decision.reset_seconds,
        None,
        decision.window_seconds,
        decision.namespace,
        decision.limit_key,
    )
