"""Logging set-up: one JSON object per line (or plain text for humans), secrets redacted,
repeated warnings held back.

Library modules only do ``log = logging.getLogger(__name__)``; the CLI alone calls
:func:`configure_logging`. The redaction filter is a backstop: secrets are ``SecretStr`` end
to end and should never reach a log call in the first place. The repeat filter keeps a dead
dependency from flooding the log: with the broker gone, aiokafka alone logs some 200 errors a
second (one demo wrote 520,000 lines); we keep the first of each kind per interval and say
how many like it were held back.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson

from pipeline.core.redaction import Redactor

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "LogChoice",
    "RedactingFilter",
    "RepeatFilter",
    "configure_logging",
    "select_logging",
]

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
        if record.exc_text:  # set (redacted) by RedactingFilter
            doc["exception"] = record.exc_text
        elif record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class RedactingFilter(logging.Filter):
    """Mask secrets and URL credentials in everything a record will print.

    The message (arguments merged in), the traceback and stack text, and string ``extra=``
    fields all go through one :class:`~pipeline.core.redaction.Redactor`: the given secret
    values, and the userinfo and credential-like query values of every URL.

    Args:
        secrets: the plain-text secret values to hide (the CLI passes every ``SecretStr``
            of the settings models).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        redact = self._redactor.redact
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


_TRACEBACKS = logging.Formatter()


class RepeatFilter(logging.Filter):
    """Let one warning or error of a kind through per ``interval_s``; count the rest.

    A record's kind is its logger, level and message template with every number replaced
    (so ``Unable connect to node with id 111`` and ``... id 112`` are one kind). The next
    record of a kind let through says how many were held back since:
    ``... (and 230 more like it in the last 10 s)``. INFO and DEBUG records always pass.

    Args:
        interval_s: the shortest time between two records of one kind.
        max_kinds: kinds remembered at most (the oldest are forgotten: bounded memory).
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        interval_s: float = 10.0,
        max_kinds: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._max_kinds = max_kinds
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within the interval; otherwise True (with the held count)."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, _NUMBER.sub("N", str(record.msg)))
        now = self._clock()
        with self._lock:
            last, held = self._seen.pop(key, (None, 0))
            if last is not None and now - last < self._interval_s:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
            while len(self._seen) > self._max_kinds:
                del self._seen[next(iter(self._seen))]
        if held:
            since = now - last if last is not None else self._interval_s
            record.msg = (
                f"{record.getMessage()} (and {held} more like it in the last {since:.0f} s)"
            )
            record.args = None
        return True


_NUMBER = re.compile(r"\d+")


def configure_logging(
    level: str = "INFO", json_format: bool = True, secrets: Iterable[str] = ()
) -> None:
    """Send logs to stderr, as JSON lines or plain text, secrets redacted, repeats held back."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One INFO line per HTTP request is too much for a service that polls; keep warnings.
    for noisy in ("httpx", "httpx2", "httpcore", "websockets", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# ------------------------------------------------------------------ format and level selection
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The levels ``--log-level`` and ``PIPELINE_LOG_LEVEL`` accept (in any case)."""
LOG_FORMATS: Final = ("json", "text")
"""The formats ``--log-format`` and ``PIPELINE_LOG_FORMAT`` accept (in any case)."""


@dataclass(frozen=True, slots=True)
class LogChoice:
    """How to log: a level of :data:`LOG_LEVELS`, JSON lines or text."""

    level: str
    json_format: bool


def select_logging(
    level: str | None, log_format: str | None, environ: Mapping[str, str]
) -> LogChoice:
    """The level and format to log with: the flag, else the environment, else INFO and text.

    The container image sets ``PIPELINE_LOG_FORMAT=json``; a terminal gets text.

    Args:
        level: ``--log-level`` (already checked by the parser), or None when not given.
        log_format: ``--log-format``, or None when not given.
        environ: the environment (``PIPELINE_LOG_LEVEL``, ``PIPELINE_LOG_FORMAT``).

    Returns:
        The choice.

    Raises:
        ValueError: an environment variable holds a value outside the choices; the message
            names the variable and the choices, on one line.
    """
    chosen_level = level or _from_env(environ, "PIPELINE_LOG_LEVEL", LOG_LEVELS, "INFO")
    chosen_format = log_format or _from_env(environ, "PIPELINE_LOG_FORMAT", LOG_FORMATS, "text")
    return LogChoice(chosen_level.upper(), chosen_format.lower() == "json")


def _from_env(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if raw.upper() not in {choice.upper() for choice in choices}:
        raise ValueError(f"{name}: invalid choice {raw!r} (choose from {', '.join(choices)})")
    return raw
