"""Per-client fixed-window rate limiting with inin-ratelimit-* headers and 429 bodies."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.emulator.state.ratelimit import (
    FamilyLimit,
    RateLimiter,
    RateLimitSettings,
    family_of,
    parse_family_limits,
)
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


# -- §4.5: one budget per token across endpoints, plus per-family budgets -----------------------

ANALYTICS = "/api/v2/analytics/queues/observations/query"
CHANNELS = "/api/v2/notifications/channels"


def test_the_token_budget_counts_per_token_across_families() -> None:
    rates = limiter(limit=2)
    assert rates.check(A, 0.0, token_id="tok-1", path=ANALYTICS).allowed
    assert rates.check(A, 0.0, token_id="tok-1", path=CHANNELS).allowed
    refused = rates.check(A, 0.0, token_id="tok-1", path="/api/v2/routing/queues")
    assert not refused.allowed
    assert refused.error().body("c")["limit"] == {
        "key": "client.credentials.token.rate.per.minute",
        "namespace": "platform.api",
        "value": 2,
    }
    assert rates.check(A, 0.0, token_id="tok-2", path=ANALYTICS).allowed  # a new token


def test_client_scope_shares_one_budget_across_tokens() -> None:
    rates = limiter(limit=1, scope="client")
    assert rates.check(A, 0.0, token_id="tok-1").allowed
    assert not rates.check(A, 0.0, token_id="tok-2").allowed


def test_a_family_budget_refuses_its_family_only() -> None:
    rates = limiter(limit=100, families={"analytics": FamilyLimit(1, 30)})
    first = rates.check(A, 0.0, token_id="t", path=ANALYTICS)
    assert first.headers()["inin-ratelimit-allowed"] == "1"  # the tighter budget's headers
    refused = rates.check(A, 10.0, token_id="t", path=ANALYTICS)
    assert (refused.allowed, refused.retry_after, refused.namespace) == (False, 20, "analytics")
    error = refused.error()
    assert error.headers["Retry-After"] == "20"
    assert error.body("c")["limit"]["namespace"] == "analytics"
    channels = rates.check(A, 10.0, token_id="t", path=CHANNELS)
    assert channels.allowed
    assert channels.headers()["inin-ratelimit-count"] == "2"  # the token budget: 2 of 100


def test_a_refused_request_counts_against_no_budget() -> None:
    rates = limiter(limit=2, families={"analytics": FamilyLimit(1)})
    rates.check(A, 0.0, token_id="t", path=ANALYTICS)
    rates.check(A, 0.0, token_id="t", path=ANALYTICS)  # refused by the family
    assert rates.check(A, 0.0, token_id="t", path=CHANNELS).count == 2


def test_the_login_family_counts_per_client_and_login_has_no_token_budget() -> None:
    rates = limiter(limit=1, families={"login": FamilyLimit(2)})
    assert rates.check(A, 0.0, path="/oauth/token").allowed
    assert rates.check(A, 0.0, path="/oauth/token").allowed
    assert not rates.check(A, 0.0, path="/oauth/token").allowed
    assert rates.check(A, 0.0, token_id="t", path=CHANNELS).allowed
    assert RateLimiter().check(A, 0.0, path="/oauth/token").allowed_limit == 0  # no budget


@pytest.mark.parametrize(
    ("path", "family"),
    [("/oauth/token", "login"), (CHANNELS, "notifications"), (ANALYTICS, "analytics"),
     ("/api/v2/routing/queues", "directory"), ("/api/v2/users", "directory"),
     ("/api/v2/organizations/me", "other")],
)  # fmt: skip
def test_paths_belong_to_families(path: str, family: str) -> None:
    assert family_of(path) == family


def test_family_limits_parse_from_the_config_text() -> None:
    assert parse_family_limits(" analytics=60, notifications=120/30 ,") == {
        "analytics": FamilyLimit(60, 60),
        "notifications": FamilyLimit(120, 30),
    }
    assert parse_family_limits("") == {}


@pytest.mark.parametrize("text", ["billing=5", "analytics", "analytics=x", "analytics=0/60"])
def test_family_limits_refuse_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="family_rate_limits"):
        parse_family_limits(text)
