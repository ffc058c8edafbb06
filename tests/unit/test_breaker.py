"""The dashboard push's circuit breaker."""

from __future__ import annotations

import pytest

from pipeline.core.workers.breaker import CircuitBreaker


# ---------------------------------------------------------------------------- circuit breaker
def test_breaker_opens_after_the_threshold_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30.0)
    for second in range(3):
        assert breaker.allow(second)
        breaker.record_failure(second)

    assert breaker.state == "open"
    assert not breaker.allow(10.0)
    assert breaker.retry_at() == 32.0


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record_failure(0.0)
    breaker.record_success(1.0)
    breaker.record_failure(2.0)

    assert breaker.state == "closed"


def test_breaker_lets_one_trial_through_after_the_reset_time() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)

    assert breaker.allow(30.0)
    assert breaker.state == "half_open"
    assert not breaker.allow(31.0)


def test_successful_trial_closes_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)

    breaker.record_success(30.5)

    assert (breaker.state, breaker.allow(30.6), breaker.retry_at()) == ("closed", True, None)


def test_failed_trial_opens_the_breaker_again() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)

    breaker.record_failure(30.5)

    assert breaker.state == "open"
    assert not breaker.allow(59.0)
    assert breaker.allow(60.5)


def test_lost_trial_allows_another_after_the_reset_time() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0)
    breaker.record_failure(0.0)
    breaker.allow(30.0)  # the trial never reports back

    assert breaker.allow(60.0)


@pytest.mark.parametrize(("threshold", "reset"), [(0, 30.0), (5, 0.0)])
def test_breaker_refuses_nonsense_settings(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError, match="must"):
        CircuitBreaker(threshold, reset)
