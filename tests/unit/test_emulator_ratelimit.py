"""Per-client fixed-window rate limiting with inin-ratelimit-* headers and 429 bodies."""

from __future__ import annotations

from typing import Any

from pipeline.emulator.state.ratelimit import RateLimiter, RateLimitSettings
from pipeline.emulator.state.tokens import ClientId

A, B = ClientId("client-a"), ClientId("client-b")


def limiter(limit: int = 3, window: int = 60, **extra: Any) -> RateLimiter:
    return RateLimiter(RateLimitSettings(limit=limit, window_seconds=window, **extra))


def test_default_budget_is_300_per_minute() -> None:
    decision = RateLimiter().check(A, now=0.0)
    assert (decision.allowed_limit, decision.window_seconds) == (300, 60)


def test_requests_within_budget_pass_and_count_up() -> None:
    rates = limiter()
    decisions = [rates.check(A, now=float(i)) for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.count for d in decisions] == [1, 2, 3]
    assert decisions[2].headers() == {
        "inin-ratelimit-count": "3",
        "inin-ratelimit-allowed": "3",
        "inin-ratelimit-reset": "58",
    }


def test_request_over_budget_is_refused_with_retry_after_until_reset() -> None:
    rates = limiter()
    for _ in range(3):
        rates.check(A, now=0.0)
    decision = rates.check(A, now=20.5)
    assert not decision.allowed
    assert (decision.count, decision.reset_seconds, decision.retry_after) == (3, 40, 40)
    error = decision.error()
    assert (error.status, error.code) == (429, "too.many.requests.retry.after")
    assert error.message == "Rate limit exceeded the maximum. Retry the request in [40] seconds"
    assert error.headers["Retry-After"] == "40"
    assert error.headers["inin-ratelimit-count"] == "3"


def test_refused_requests_do_not_use_budget() -> None:
    rates = limiter(limit=1)
    rates.check(A, now=0.0)
    assert [rates.check(A, now=1.0).count for _ in range(3)] == [1, 1, 1]


def test_window_resets_after_its_length() -> None:
    rates = limiter(limit=1, window=10)
    assert rates.check(A, now=0.0).allowed
    assert not rates.check(A, now=9.99).allowed
    fresh = rates.check(A, now=10.0)
    assert (fresh.allowed, fresh.count, fresh.reset_seconds) == (True, 1, 10)


def test_clients_have_separate_budgets() -> None:
    rates = limiter(limit=1)
    assert rates.check(A, now=0.0).allowed
    assert rates.check(B, now=0.0).allowed
    assert not rates.check(A, now=0.0).allowed


def test_per_client_override() -> None:
    rates = limiter(limit=1, per_client={B: 2})
    rates.check(B, now=0.0)
    assert rates.check(B, now=0.0).allowed
    assert not rates.check(B, now=0.0).allowed


def test_disabled_limiter_never_refuses() -> None:
    rates = limiter(limit=1, enabled=False)
    assert all(rates.check(A, now=0.0).allowed for _ in range(10))


def test_reset_forgets_a_window() -> None:
    rates = limiter(limit=1)
    rates.check(A, now=0.0)
    rates.reset(A)
    assert rates.check(A, now=1.0).allowed
