"""The HTTP decision table and Retry-After parsing."""

from __future__ import annotations

import pytest

from pipeline.core.http_policy import Decision, Outcome, decide, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("42", 42.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("Fri, 15 Jan 2027 08:00:05 GMT", 5.0),  # NOW + 5 s as an HTTP date
        ("Fri, 15 Jan 2027 07:59:50 GMT", 0.0),  # in the past: no wait
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "expected"),
    [
        (200, None, 1, Decision(Outcome.DONE)),
        (204, None, 3, Decision(Outcome.DONE)),
        (429, 7.0, 1, Decision(Outcome.RETRY, 7.0, "429: throttled")),
        (429, None, 1, Decision(Outcome.RETRY, None, "429: throttled")),
        (429, 7.0, 5, Decision(Outcome.FAIL, 7.0, "429: still throttled")),
        (503, None, 1, Decision(Outcome.RETRY, None, "503: retrying")),
        (503, 2.0, 1, Decision(Outcome.RETRY, 2.0, "503: retrying")),
        (500, None, 5, Decision(Outcome.FAIL, reason="500: gave up")),
        (None, None, 1, Decision(Outcome.RETRY, None, "transport error: retrying")),
        (None, None, 5, Decision(Outcome.FAIL, reason="transport error: gave up")),
        (
            401,
            None,
            1,
            Decision(Outcome.REFRESH_TOKEN, reason="401: token missing, expired or revoked"),
        ),
        (401, None, 5, Decision(Outcome.FAIL, reason="401 after a fresh token")),
        (400, None, 1, Decision(Outcome.FAIL, reason="400: not retriable")),
        (404, None, 1, Decision(Outcome.FAIL, reason="404: not retriable")),
        (403, None, 1, Decision(Outcome.FAIL, reason="403: not retriable")),
    ],
)
def test_decide(
    status: int | None, retry_after: float | None, attempt: int, expected: Decision
) -> None:
    assert decide(status, retry_after, attempt, max_attempts=5) == expected
