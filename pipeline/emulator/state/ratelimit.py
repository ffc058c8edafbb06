"""Per-client request budget of the emulated Platform API (pure).

Theory of operation
-------------------
Each OAuth client has a fixed window: it opens at the client's first request, admits ``limit``
requests, and closes ``window_seconds`` later; the next request opens a new one. A request over
the budget is refused with 429 ``too.many.requests.retry.after`` and ``Retry-After`` = seconds
until the window closes (rounded up), and does not count toward the budget.

Every answer carries ``inin-ratelimit-count`` (requests admitted in this window),
``inin-ratelimit-allowed`` (the budget) and ``inin-ratelimit-reset`` (seconds until the window
closes) — names VERIFIED, semantics UNVERIFIED (``docs/genesys-api.md`` §4.3). The
default budget (``EmulatorConfig.rate_limit`` per ``rate_window_s``: 300 per 60 s) is
UNVERIFIED (the official limits page was not read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.errors import EmulatorError, rate_limited
from pipeline.emulator.state.tokens import ClientId

__all__ = ["RateDecision", "RateLimitSettings", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Budget per client; ``per_client`` overrides ``limit`` for named clients."""

    limit: int = DEFAULTS.rate_limit
    window_seconds: int = DEFAULTS.rate_window_s
    enabled: bool = True
    per_client: Mapping[ClientId, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may pass, and what the rate-limit headers say."""

    allowed: bool
    count: int
    allowed_limit: int
    reset_seconds: int
    retry_after: int | None
    window_seconds: int

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
        return error


@dataclass(slots=True)
class _Window:
    opened_at: float
    count: int = 0


class RateLimiter:
    """Fixed-window budgets keyed by OAuth client.

    Args:
        settings: Budget and window; defaults to ``EmulatorConfig``'s.
    """

    def __init__(self, settings: RateLimitSettings | None = None) -> None:
        self.settings = settings or RateLimitSettings()
        self._windows: dict[ClientId, _Window] = {}

    def check(self, client_id: ClientId, now: float) -> RateDecision:
        """Count one request of ``client_id`` at ``now`` and decide.

        Returns:
            The decision; when disabled every request passes (headers still count).
        """
        window_length = self.settings.window_seconds
        limit = self.settings.per_client.get(client_id, self.settings.limit)
        window = self._windows.get(client_id)
        if window is None or now >= window.opened_at + window_length:
            window = self._windows[client_id] = _Window(now)
        remaining = window.opened_at + window_length - now
        reset = max(1, math.ceil(remaining))
        if window.count >= limit and self.settings.enabled:
            return RateDecision(False, window.count, limit, reset, reset, window_length)
        window.count += 1
        return RateDecision(True, window.count, limit, reset, None, window_length)

    def reset(self, client_id: ClientId | None = None) -> None:
        """Forget the window of ``client_id`` (or of everyone)."""
        if client_id is None:
            self._windows.clear()
        else:
            self._windows.pop(client_id, None)
