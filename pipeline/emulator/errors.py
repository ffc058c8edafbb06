"""Error answers of the emulated Genesys Cloud API, as data.

The pure emulator state refuses a request by raising an :class:`EmulatorError`; the HTTP shell
catches it and answers ``status`` with ``body(correlation_id)`` and ``headers``. Two body shapes
exist, as on the real platform:

::

    EmulatorError   Platform API ``ErrorBody``: message, code, status, contextId, details, errors
    └── OAuthError  login service (``/oauth/token``): error, description, error_description

These are the emulator's answers to *its* clients, not errors of the pipeline, so they sit outside
``pipeline.errors``. Messages are built from codes, topic names and numbers only, never from
tokens or secrets.

Message texts are the ``x-inin-error-codes`` strings of the Platform API swagger
(``docs/genesys-api.md`` §0 SPEC, notifications tag, snapshot 2026-08-07): VERIFIED.
Which extra fields (``messageWithParams``/``messageParams``) real answers carry is UNVERIFIED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MESSAGES",
    "EmulatorError",
    "OAuthError",
    "authentication_required",
    "bad_credentials",
    "bad_request",
    "error_body",
    "error_for_status",
    "invalid_query_param",
    "invalid_topic",
    "not_found",
    "rate_limited",
    "too_many_subscriptions",
    "unauthorized_topic",
]

MESSAGES: Final[Mapping[str, str]] = {
    # SPEC x-inin-error-codes (VERIFIED); "%s" marks the parameters the platform fills in.
    "bad.request": "The request could not be understood by the server due to malformed syntax.",
    "invalid.query.param.value": (
        "Value [%s] is not valid for parameter [%s]. Allowable values are: %s"
    ),
    "notification.invalid.topic": "The subscription topic is not valid.",
    "notification.subscription.too.many.subscriptions": "Too many subscriptions.",
    "notification.unauthorized.topic": "Not authorized for this topic.",
    "authentication.required": "No authentication bearer token specified in authorization header.",
    "bad.credentials": "Invalid login credentials.",
    "not.authorized": "You are not authorized to perform the requested action.",
    "not.found": "The requested resource was not found.",
    "client.timeout": (
        "The client did not produce a request within the server timeout limit. This can be "
        "caused by a slow network connection and/or large payloads."
    ),
    "request.conflict": "The request conflicts with the current state of the target resource.",
    "too.many.requests.retry.after": (
        "Rate limit exceeded the maximum. Retry the request in [%s] seconds"
    ),
    "too.many.requests": "Rate limit exceeded the maximum [%s] requests within [%s] seconds",
    "internal.server.error": (
        "The server encountered an unexpected condition which prevented it from fulfilling the "
        "request."
    ),
    "service.unavailable": (
        "Service Unavailable - The server is currently unavailable (because it is overloaded or "
        "down for maintenance)."
    ),
    "request.timeout": "The request timed out.",
}
"""Error code → message text, from the swagger's ``x-inin-error-codes``."""

_CODE_FOR_STATUS: Final[Mapping[int, str]] = {
    400: "bad.request",
    401: "bad.credentials",
    403: "not.authorized",
    404: "not.found",
    408: "client.timeout",
    409: "request.conflict",
    429: "too.many.requests",
    500: "internal.server.error",
    503: "service.unavailable",
    504: "request.timeout",
}

_EXTRA_FIELDS: Final = frozenset(
    {"messageWithParams", "messageParams", "entityId", "entityName", "limit"}
)


def error_body(
    status: int, code: str, message: str, correlation_id: str, **extra: Any
) -> dict[str, Any]:
    """Build a Platform API ``ErrorBody`` (``docs/genesys-api.md`` §4.1).

    Args:
        status: HTTP status, repeated in the body.
        code: Genesys error code such as ``not.found``.
        message: Human-readable text.
        correlation_id: The request's ``ININ-Correlation-Id``, echoed as ``contextId``.
        **extra: Optional ``ErrorBody`` fields by their JSON name: ``messageWithParams``,
            ``messageParams``, ``entityId``, ``entityName``, ``limit``. ``None`` values are
            left out.

    Returns:
        A JSON-ready dict the SDK deserialises as ``ErrorBody``.

    Raises:
        ValueError: An ``extra`` name is not an ``ErrorBody`` field.
    """
    unknown = set(extra) - _EXTRA_FIELDS
    if unknown:
        raise ValueError(f"not ErrorBody fields: {sorted(unknown)}")
    body: dict[str, Any] = {
        "message": message,
        "code": code,
        "status": status,
        "contextId": correlation_id,
        "details": [],
        "errors": [],
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


class EmulatorError(Exception):
    """A refused request: the HTTP shell answers ``status``, ``body()`` and ``headers``.

    Args:
        status: HTTP status.
        code: Genesys error code.
        message: Message text (safe: never holds tokens or secrets).
        headers: Extra response headers, e.g. ``Retry-After``.
        **extra: Optional ``ErrorBody`` fields, as for :func:`error_body`.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = extra

    def body(self, correlation_id: str) -> dict[str, Any]:
        """Return the JSON body of the answer for the request ``correlation_id``."""
        return error_body(self.status, self.code, self.message, correlation_id, **self.extra)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class OAuthError(EmulatorError):
    """A refusal of the login service: ``{"error", "description", "error_description"}``.

    Body fields VERIFIED (GO-CFG ``AuthErrorResponse``), ``invalid_client`` strings OBSERVED
    (ISSUE-CFV), §3.3. The HTTP status of a bad client is UNVERIFIED and configurable.

    Args:
        error: OAuth error code (``invalid_client``, ``unsupported_grant_type``...).
        description: Text for both ``description`` and ``error_description``.
        status: HTTP status.
    """

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(status, error, description)

    def body(self, correlation_id: str) -> dict[str, Any]:
        """Return the login service's error body (it carries no correlation id)."""
        del correlation_id  # the real login body has no contextId
        return {"error": self.code, "description": self.message, "error_description": self.message}


def bad_request(message: str | None = None) -> EmulatorError:
    """400 ``bad.request``, with the swagger text unless ``message`` says more."""
    return EmulatorError(400, "bad.request", message or MESSAGES["bad.request"])


def invalid_query_param(value: str, parameter: str, allowed: list[str]) -> EmulatorError:
    """400 ``invalid.query.param.value`` for a query parameter outside its enum."""
    text = MESSAGES["invalid.query.param.value"] % (value, parameter, ", ".join(allowed))
    return EmulatorError(400, "invalid.query.param.value", text)


def not_found() -> EmulatorError:
    """404 ``not.found``: unknown, expired, evicted, or another client's channel."""
    return EmulatorError(404, "not.found", MESSAGES["not.found"])


def authentication_required() -> EmulatorError:
    """401 ``authentication.required``: no usable ``Authorization: Bearer`` header."""
    return EmulatorError(401, "authentication.required", MESSAGES["authentication.required"])


def bad_credentials() -> EmulatorError:
    """401 ``bad.credentials``: unknown, expired or revoked bearer token."""
    return EmulatorError(401, "bad.credentials", MESSAGES["bad.credentials"])


def invalid_topic(topic: str) -> EmulatorError:
    """400 ``notification.invalid.topic``; the topic goes in ``messageParams`` (UNVERIFIED)."""
    return EmulatorError(
        400,
        "notification.invalid.topic",
        MESSAGES["notification.invalid.topic"],
        messageWithParams="The subscription topic {topic} is not valid.",
        messageParams={"topic": topic},
    )


def unauthorized_topic(topic: str) -> EmulatorError:
    """403 ``notification.unauthorized.topic``; the topic goes in ``messageParams`` (UNVERIFIED)."""
    return EmulatorError(
        403,
        "notification.unauthorized.topic",
        MESSAGES["notification.unauthorized.topic"],
        messageWithParams="Not authorized for topic {topic}.",
        messageParams={"topic": topic},
    )


def too_many_subscriptions() -> EmulatorError:
    """400 ``notification.subscription.too.many.subscriptions`` (over 1,000 topics, §5.4)."""
    code = "notification.subscription.too.many.subscriptions"
    return EmulatorError(400, code, MESSAGES[code])


def rate_limited(retry_after: int | None, limit: int, window_seconds: int) -> EmulatorError:
    """429 in its two forms (§4.3, FORUM-429).

    Args:
        retry_after: Seconds to wait; with a value the answer is ``too.many.requests.retry.after``
            plus a ``Retry-After`` header (the SDK then retries by itself, §4.4); ``None`` gives
            ``too.many.requests`` without the header (the SDK raises ``ApiException``).
        limit: Requests allowed per window, for the ``too.many.requests`` text.
        window_seconds: Window length, for the ``too.many.requests`` text.
    """
    if retry_after is None:
        text = MESSAGES["too.many.requests"] % (limit, window_seconds)
        return EmulatorError(429, "too.many.requests", text)
    code = "too.many.requests.retry.after"
    return EmulatorError(
        429, code, MESSAGES[code] % retry_after, headers={"Retry-After": str(retry_after)}
    )


def error_for_status(
    status: int, *, code: str | None = None, retry_after: int | None = None
) -> EmulatorError:
    """The platform's usual answer for ``status``, for injected faults.

    Args:
        status: HTTP status (4xx or 5xx).
        code: Error code to use instead of the status's usual one.
        retry_after: Adds ``Retry-After``; for 429 also picks ``too.many.requests.retry.after``.

    Raises:
        ValueError: ``status`` is not an error status.
    """
    if not 400 <= status <= 599:
        raise ValueError(f"not an error status: {status}")
    if status == 429 and code in (None, "too.many.requests", "too.many.requests.retry.after"):
        # The numbers in the no-Retry-After text are illustrative: a fault has no real budget.
        return rate_limited(retry_after, limit=300, window_seconds=60)
    fallback = "internal.server.error" if status >= 500 else "bad.request"
    chosen = code or _CODE_FOR_STATUS.get(status, fallback)
    message = MESSAGES.get(chosen, chosen).replace("%s", "?")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return EmulatorError(status, chosen, message, headers=headers)
