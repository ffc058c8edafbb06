"""Error answers of the emulator: ErrorBody shape, OAuth body, status → code table."""

from __future__ import annotations

import pytest

from pipeline.emulator.errors import (
    EmulatorError,
    OAuthError,
    error_body,
    error_for_status,
    invalid_topic,
    rate_limited,
)


def test_error_body_has_the_errorbody_fields() -> None:
    body = error_body(404, "not.found", "The requested resource was not found.", "cid-1")
    assert body == {
        "message": "The requested resource was not found.",
        "code": "not.found",
        "status": 404,
        "contextId": "cid-1",
        "details": [],
        "errors": [],
    }


def test_error_body_adds_known_extras_and_drops_none() -> None:
    body = error_body(400, "x", "y", "c", messageParams={"a": "b"}, entityId=None)
    assert body["messageParams"] == {"a": "b"}
    assert "entityId" not in body


def test_error_body_refuses_fields_errorbody_lacks() -> None:
    with pytest.raises(ValueError, match="not ErrorBody fields"):
        error_body(400, "x", "y", "c", retryAfter=3)


def test_emulator_error_body_echoes_the_correlation_id() -> None:
    error = invalid_topic("v2.nope")
    body = error.body("corr-9")
    assert (body["status"], body["code"], body["contextId"]) == (
        400,
        "notification.invalid.topic",
        "corr-9",
    )
    assert body["message"] == "The subscription topic is not valid."
    assert body["messageParams"] == {"topic": "v2.nope"}


def test_oauth_error_body_has_error_description_and_no_context_id() -> None:
    error = OAuthError("invalid_client", "authentication failed", 401)
    assert error.body("ignored") == {
        "error": "invalid_client",
        "description": "authentication failed",
        "error_description": "authentication failed",
    }
    assert error.status == 401


def test_rate_limited_with_retry_after_names_the_seconds_and_sets_the_header() -> None:
    error = rate_limited(42, limit=300, window_seconds=60)
    assert error.code == "too.many.requests.retry.after"
    assert error.message == "Rate limit exceeded the maximum. Retry the request in [42] seconds"
    assert error.headers == {"Retry-After": "42"}


def test_rate_limited_without_retry_after_has_no_header() -> None:
    error = rate_limited(None, limit=300, window_seconds=60)
    assert error.code == "too.many.requests"
    assert error.message == "Rate limit exceeded the maximum [300] requests within [60] seconds"
    assert "Retry-After" not in error.headers


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad.request"),
        (401, "bad.credentials"),
        (404, "not.found"),
        (500, "internal.server.error"),
        (502, "internal.server.error"),
        (503, "service.unavailable"),
        (504, "request.timeout"),
    ],
)
def test_error_for_status_picks_the_usual_code(status: int, code: str) -> None:
    error = error_for_status(status)
    assert (error.status, error.code) == (status, code)
    assert "%s" not in error.message


def test_error_for_status_keeps_retry_after_on_503() -> None:
    assert error_for_status(503, retry_after=5).headers == {"Retry-After": "5"}


def test_error_for_status_refuses_success_statuses() -> None:
    with pytest.raises(ValueError, match="not an error status"):
        error_for_status(200)


def test_emulator_error_str_names_status_and_code() -> None:
    assert str(EmulatorError(404, "not.found", "gone")) == "404 not.found: gone"
