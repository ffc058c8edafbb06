"""The dashboard worker's circuit breaker: stop pushing to a dashboard that keeps failing.

Pure: the caller passes ``now`` and reports each push's result.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["BREAKER_STATES", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
"""Closed: push. Open: do not push. Half open: one trial push decides."""
BREAKER_STATES: Final[tuple[BreakerState, ...]] = get_args(BreakerState)
"""Every state, in order (the states of the ``..._circuit_state`` metric)."""


class CircuitBreaker:
    """Stop pushing to a dashboard that keeps failing; probe it once in a while.

    Closed → open after ``failure_threshold`` failures in a row. Open → half open once
    ``reset_after_s`` passed: :meth:`allow` lets one trial through. Its success closes the
    breaker, its failure opens it again. A trial never reported counts as lost after another
    ``reset_after_s`` and a new one is allowed.

    Args:
        failure_threshold: consecutive failures that open the breaker (≥ 1).
        reset_after_s: how long it stays open before a trial (> 0).
    """

    def __init__(self, failure_threshold: int = 5, reset_after_s: float = 30.0) -> None:
        if failure_threshold < 1 or not reset_after_s > 0:
            raise ValueError("failure_threshold must be ≥ 1 and reset_after_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.state: BreakerState = "closed"
        self.failures = 0
        self._since = 0.0  # when it opened, or when the trial went out

    def allow(self, now: float) -> bool:
        """Whether a push may go out at ``now`` (in half open: the one trial)."""
        if self.state == "closed":
            return True
        if now - self._since < self.reset_after_s:
            return False
        self.state, self._since = "half_open", now
        return True

    def retry_at(self) -> float | None:
        """When :meth:`allow` may say yes again, or None while closed."""
        return None if self.state == "closed" else self._since + self.reset_after_s

    def record_success(self, now: float) -> None:
        """A push succeeded (any state): close."""
        self.state, self.failures = "closed", 0

    def record_failure(self, now: float) -> None:
        """A push failed (5xx, timeout): count it; open at the threshold or after a trial."""
        self.failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.failures >= self.failure_threshold
        ):
            self.state, self._since = "open", now
