"""The shared request budget and the token answer rules."""

from __future__ import annotations

import orjson
import pytest

from pipeline.core.genesys.budget import RequestBudget, RequestBudgets, family_of
from pipeline.core.genesys.token import AccessToken, parse_token_answer
from pipeline.core.http_policy import DEFAULT_MAX_RETRY_AFTER_S
from pipeline.errors import AuthError

HEADERS = {
    "inin-ratelimit-count": "298",
    "inin-ratelimit-allowed": "300",
    "inin-ratelimit-reset": "20",
}


def test_budget_lets_requests_go_while_there_is_room() -> None:
    budget = RequestBudget(reserve=1)
    assert budget.delay(0.0) == 0.0
    budget.observe({**HEADERS, "inin-ratelimit-count": "10"}, now=100.0)
    assert budget.delay(100.0) == 0.0


def test_budget_waits_for_the_window_when_nearly_spent() -> None:
    budget = RequestBudget(reserve=1)
    budget.observe(HEADERS, now=100.0)  # 2 left
    budget.spend()  # 1 left = reserve
    assert budget.delay(105.0) == pytest.approx(15.0)
    assert budget.delay(121.0) == 0.0  # the window reset


def test_budget_pauses_every_caller_after_a_429() -> None:
    budget = RequestBudget()
    budget.throttled(30.0, now=50.0)
    budget.throttled(10.0, now=51.0)  # a shorter pause never shortens the first
    assert budget.delay(60.0) == pytest.approx(20.0)
    assert budget.delay(80.0) == 0.0


def test_budget_ignores_missing_or_bad_headers() -> None:
    budget = RequestBudget()
    budget.observe({"inin-ratelimit-count": "x"}, now=1.0)
    budget.observe({}, now=1.0)
    assert budget.delay(1.0) == 0.0


def test_budgets_keep_one_budget_per_family() -> None:
    budgets = RequestBudgets()
    analytics = budgets.for_path("/api/v2/analytics/queues/observations/query")
    assert analytics is budgets.of_family("analytics")
    budgets.for_path("/api/v2/analytics/x").observe(HEADERS, now=100.0)
    budgets.throttled("/api/v2/analytics/x", 30.0, now=100.0, namespace="analytics")
    assert analytics.delay(100.0) == 30.0
    assert budgets.for_path("/api/v2/notifications/channels").delay(100.0) == 0.0
    assert budgets.for_path("/api/v2/users").delay(100.0) == 0.0


def test_budgets_pause_every_family_for_the_tokens_own_budget() -> None:
    budgets = RequestBudgets()
    budgets.throttled("/api/v2/analytics/x", 10.0, now=0.0, namespace="platform.api")
    assert {budgets.of_family(f).delay(0.0) for f in ("notifications", "analytics",
            "directory", "other")} == {10.0}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "family"),
    [("/api/v2/notifications/channels/x/subscriptions", "notifications"),
     ("/api/v2/analytics/users/aggregates/query", "analytics"),
     ("/api/v2/routing/queues/q/members", "directory"), ("/api/v2/users", "directory"),
     ("/api/v2/organizations/me", "other")],
)  # fmt: skip
def test_paths_belong_to_families(path: str, family: str) -> None:
    assert family_of(path) == family


def test_token_answer_parses_and_refreshes_at_80_percent() -> None:
    body = orjson.dumps({"access_token": "abc", "token_type": "bearer", "expires_in": 1000})
    token = parse_token_answer(200, body, now=10_000.0)
    assert token.value == "abc"
    assert token.expires_at == 11_000.0
    assert token.refresh_at == 10_800.0
    assert token.is_fresh(10_799.0)
    assert not token.is_fresh(10_800.0)


def test_token_never_shows_in_repr() -> None:
    token = AccessToken("canary-token-value", 0.0, 10.0)
    assert "canary-token-value" not in repr(token)


def test_token_error_answer_carries_the_oauth_error() -> None:
    body = orjson.dumps(
        {
            "error": "invalid_client",
            "description": "authentication failed",
            "error_description": "authentication failed",
        }
    )
    with pytest.raises(AuthError) as info:
        parse_token_answer(401, body, now=0.0)
    assert info.value.status == 401
    assert info.value.error == "invalid_client"
    assert "authentication failed" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        orjson.dumps({"expires_in": 5}),
        orjson.dumps({"access_token": "t", "expires_in": 0}),
        orjson.dumps({"access_token": "t", "expires_in": True}),
    ],
)
def test_token_success_without_a_usable_token_is_an_error(body: bytes) -> None:
    with pytest.raises(AuthError, match="invalid_response"):
        parse_token_answer(200, body, now=0.0)


@pytest.mark.parametrize("reset", ["86400", "1e12"])
def test_budget_caps_a_huge_window_reset(reset: str) -> None:
    budget = RequestBudget(reserve=1)
    headers = {"inin-ratelimit-count": "300", "inin-ratelimit-allowed": "300"}
    budget.observe({**headers, "inin-ratelimit-reset": reset}, 1000.0)
    assert budget.delay(1000.0) == DEFAULT_MAX_RETRY_AFTER_S


@pytest.mark.parametrize("reset", ["inf", "nan", "-inf"])
def test_budget_ignores_a_window_reset_that_is_not_finite(reset: str) -> None:
    budget = RequestBudget(reserve=1)
    headers = {"inin-ratelimit-count": "300", "inin-ratelimit-allowed": "300"}
    budget.observe({**headers, "inin-ratelimit-reset": reset}, 1000.0)
    assert budget.delay(1000.0) == 0.0


def test_budget_caps_a_huge_pause() -> None:
    budget = RequestBudget(max_wait_s=5.0)
    budget.throttled(float("inf"), 1000.0)
    assert budget.delay(1000.0) == 0.0
    budget.throttled(1e9, 1000.0)
    assert budget.delay(1000.0) == 5.0
