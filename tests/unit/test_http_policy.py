"""The one HTTP failure table, Retry-After parsing, attempt counting and backoff."""

from __future__ import annotations

import math

import pytest

from pipeline.core.http_policy import (
    DEFAULT_MAX_RETRY_AFTER_S,
    Backoff,
    Decision,
    Failure,
    ResponseAction,
    Verdict,
    classify,
    decide,
    full_jitter,
    is_retriable,
    parse_retry_after,
)

NOW = 1_800_000_000.0
RETRY, FAIL = ResponseAction.RETRY, ResponseAction.FAIL


# -- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("42", 42.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        ("Fri, 15 Jan 2027 08:00:05 GMT", 5.0),  # NOW + 5 s as an HTTP date
        ("Fri, 15 Jan 2027 08:00:05 -0000", 5.0),  # no zone claimed: read as UTC
        ("Fri, 15 Jan 2027 07:59:50 GMT", 0.0),  # in the past: no wait
        ("3600", DEFAULT_MAX_RETRY_AFTER_S),  # an hour: cut to the cap
        ("1e300", DEFAULT_MAX_RETRY_AFTER_S),
        ("Fri, 15 Jan 2100 08:00:00 GMT", DEFAULT_MAX_RETRY_AFTER_S),
        ("inf", None),  # not finite: as if absent
        ("Infinity", None),
        ("-inf", None),
        ("nan", None),
        ("1e400", None),  # overflows to inf
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_caps_at_the_given_maximum() -> None:
    assert parse_retry_after("90", NOW, max_s=60.0) == 60.0
    assert parse_retry_after("30", NOW, max_s=60.0) == 30.0


# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "failure"),
    [
        (None, RETRY, Failure.TRANSPORT),
        (200, ResponseAction.DONE, Failure.NONE),
        (204, ResponseAction.DONE, Failure.NONE),
        (401, ResponseAction.REFRESH_TOKEN, Failure.UNAUTHORIZED),
        (403, FAIL, Failure.DENIED),
        (407, FAIL, Failure.DENIED),
        (404, FAIL, Failure.NOT_FOUND),
        (405, FAIL, Failure.UNSUPPORTED),
        (408, RETRY, Failure.TIMEOUT),
        (413, FAIL, Failure.TOO_LARGE),
        (429, RETRY, Failure.THROTTLED),
        (400, FAIL, Failure.CLIENT),
        (409, FAIL, Failure.CLIENT),
        (500, RETRY, Failure.SERVER),
        (503, RETRY, Failure.SERVER),
        (599, RETRY, Failure.SERVER),
        (501, FAIL, Failure.UNSUPPORTED),
        (505, FAIL, Failure.UNSUPPORTED),
        (101, FAIL, Failure.UNEXPECTED),
        (302, FAIL, Failure.UNEXPECTED),
        (0, FAIL, Failure.UNEXPECTED),
        (600, FAIL, Failure.UNEXPECTED),
    ],
)
def test_classify_rows(status: int | None, action: ResponseAction, failure: Failure) -> None:
    verdict = classify(status)

    assert (verdict.action, verdict.failure) == (action, failure)
    assert verdict.message.startswith("no answer" if status is None else f"{status}: ")


def expected_action(status: int | None) -> ResponseAction:
    """The table of the module docstring, written out independently."""
    if status is None or status in (408, 429):
        return RETRY
    if 200 <= status < 300:
        return ResponseAction.DONE
    if status == 401:
        return ResponseAction.REFRESH_TOKEN
    if 500 <= status < 600 and status not in (501, 505):
        return RETRY
    return FAIL


@pytest.mark.parametrize("status", [None, *range(100, 600)])
def test_every_status_is_in_the_table(status: int | None) -> None:
    verdict = classify(status)

    assert verdict.action is expected_action(status)
    assert (verdict.failure is Failure.NONE) == (verdict.action is ResponseAction.DONE)
    assert is_retriable(status) == (verdict.action is RETRY)


# -- counting attempts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "expected"),
    [
        (200, None, 5, Decision(ResponseAction.DONE, Failure.NONE, "200: ok")),
        (429, 7.0, 1, Decision(RETRY, Failure.THROTTLED, "429: throttled", 7.0)),
        (429, None, 4, Decision(RETRY, Failure.THROTTLED, "429: throttled")),
        (
            429,
            7.0,
            5,
            Decision(FAIL, Failure.THROTTLED, "429: throttled; gave up after 5 attempts", 7.0),
        ),
        (503, 2.0, 1, Decision(RETRY, Failure.SERVER, "503: server error", 2.0)),
        (
            None,
            None,
            5,
            Decision(
                FAIL,
                Failure.TRANSPORT,
                "no answer (refused, reset or timed out); gave up after 5 attempts",
            ),
        ),
        (
            401,
            None,
            5,
            Decision(
                ResponseAction.REFRESH_TOKEN,
                Failure.UNAUTHORIZED,
                "401: unauthorized",
            ),
        ),
        (400, 3.0, 1, Decision(FAIL, Failure.CLIENT, "400: request refused")),
    ],
)
def test_decide_turns_a_retry_on_the_last_attempt_into_a_failure(
    status: int | None, retry_after: float | None, attempt: int, expected: Decision
) -> None:
    assert decide(status, retry_after, attempt, max_attempts=5) == expected


def test_a_single_attempt_never_retries() -> None:
    decision = decide(503, None, attempt=1, max_attempts=1)

    assert decision.action is FAIL
    assert decision.message == "503: server error; gave up after 1 attempt"


@pytest.mark.parametrize("status", [None, *range(100, 600)])
def test_decide_agrees_with_the_table_before_the_last_attempt(status: int | None) -> None:
    assert decide(status, None, 1, 2).action is classify(status).action
    last = decide(status, None, 2, 2).action
    assert last is (FAIL if is_retriable(status) else classify(status).action)


def test_verdict_is_a_value() -> None:
    assert classify(503) == Verdict(RETRY, Failure.SERVER, "503: server error")


# -- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(0, 0.0, 0.0), (0, 0.5, 0.25), (3, 0.5, 2.0), (10, 0.5, 15.0), (5000, 1.0, 30.0)],
)
def test_full_jitter_draws_below_the_capped_ceiling(
    attempt: int, draw: float, expected: float
) -> None:
    assert full_jitter(attempt, 0.5, 30.0, lambda: draw) == expected


def test_full_jitter_clamps_a_bad_random_source() -> None:
    assert full_jitter(0, 1.0, 10.0, lambda: 7.0) == 1.0
    assert full_jitter(0, 1.0, 10.0, lambda: -1.0) == 0.0


def test_full_jitter_rejects_negative_inputs() -> None:
    with pytest.raises(ValueError, match="must be ≥ 0"):
        full_jitter(-1, 0.5, 30.0, lambda: 0.5)


def test_backoff_obeys_retry_after_up_to_its_cap() -> None:
    backoff = Backoff(max_retry_after_s=60.0)

    assert backoff.delay(3, 7.0, lambda: 0.5) == 7.0
    assert backoff.delay(0, 3600.0, lambda: 0.5) == 60.0
    assert backoff.delay(0, -5.0, lambda: 0.5) == 0.0


@pytest.mark.parametrize("retry_after", [math.inf, -math.inf, math.nan])
def test_backoff_ignores_a_retry_after_that_is_not_finite(retry_after: float) -> None:
    assert Backoff(base_s=0.5, cap_s=30.0).delay(1, retry_after, lambda: 0.5) == 0.5


def test_backoff_without_retry_after_is_full_jitter() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)

    assert backoff.delay(0, None, lambda: 0.5) == 0.25
    assert backoff.delay(3, None, lambda: 1.0) == 4.0
    assert backoff.delay(20, None, lambda: 1.0) == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": -1.0}, {"max_retry_after_s": -1.0}, {"base_s": 2.0, "cap_s": 1.0}],
)
def test_backoff_refuses_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Backoff(**kwargs)
