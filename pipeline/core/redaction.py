"""Hiding secrets in text, pure: known secret values, and the secret parts of URLs.

:class:`Redactor` is what the log handler (:class:`pipeline.logs.RedactingFilter`) and the
CLI's one-line errors run every line through. It replaces:

- every configured secret value (the CLI hands it every ``SecretStr`` of the settings
  models), longest first, also in its URL-encoded form;
- in every URL: the userinfo (``https://user:pass@host`` → ``https://***@host``) and the
  value of each query parameter whose name looks like a credential (``token``,
  ``access_token``, ``api_key``, ``client_secret``, ``sig``, ``X-Amz-Signature``, ...).

Secrets shorter than :data:`MIN_SECRET_CHARS` are not replaced: a one-letter "secret" would
turn every log line into asterisks, and protects nothing anyway (the wallboard refuses such
secrets outside development).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["MASK", "MIN_SECRET_CHARS", "Redactor", "redact_url", "redact_urls"]

MASK = "**********"
"""What a secret becomes."""
MIN_SECRET_CHARS = 4
"""Shorter secret values are left alone (see the module docstring)."""

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_SENSITIVE_PARAM = re.compile(
    r"token|secret|passw|pwd|key|sig|auth|credential|code|session|jwt", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """``url`` without userinfo and without the values of credential-like query parameters.

    Args:
        url: an absolute URL (anything else comes back unchanged).

    Returns:
        The URL, safe to log.
    """
    try:
        split = urlsplit(url)
    except ValueError:  # an unparsable "URL" (a bad IPv6 literal): hide everything after ://
        scheme = url.partition("://")[0]
        return f"{scheme}://{MASK}"
    netloc = split.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_param(part) for part in split.query.split("&")) if split.query else ""
    return urlunsplit(split._replace(netloc=netloc, query=query))


def _redact_param(part: str) -> str:
    name, sep, value = part.partition("=")
    if sep and value and _SENSITIVE_PARAM.search(name):
        return f"{name}={MASK}"
    return part


def redact_urls(text: str) -> str:
    """Every URL in ``text`` through :func:`redact_url`."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


class Redactor:
    """Replaces known secret values and URL credentials in text.

    Args:
        secrets: the plain-text secret values to hide (empty and very short ones are
            ignored, see :data:`MIN_SECRET_CHARS`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_CHARS:
                values.update({secret, quote(secret, safe=""), quote(secret)})
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} values)"

    def redact(self, text: str) -> str:
        """``text`` with every secret value and URL credential masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if "://" in text:
            text = redact_urls(text)
        return text
