"""Logging set-up: one JSON object per line (or plain text for humans), secrets redacted.

Library modules only do ``log = logging.getLogger(__name__)``; the CLI alone calls
:func:`configure_logging`. The redaction filter is a backstop: secrets are ``SecretStr`` end
to end and should never reach a log call in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging"]

_REDACTED = "**********"
# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class RedactingFilter(logging.Filter):
    """Replace every occurrence of the given secrets in a record's final message.

    Args:
        secrets: the plain-text secret values to hide (empty strings are ignored).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, _REDACTED)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(
    level: str = "INFO", json_format: bool = True, secrets: Iterable[str] = ()
) -> None:
    """Send logs to stderr, as JSON lines or plain text, with secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One INFO line per HTTP request is too much for a service that polls; keep warnings.
    for noisy in ("httpx", "httpx2", "httpcore", "websockets", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
