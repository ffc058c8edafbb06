"""JSON log lines and the secret-redaction backstop."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from pipeline.logs import JsonFormatter, RedactingFilter, configure_logging

CANARY = "canary-s3cr3t-value"


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("pipeline.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_writes_one_object_with_extras() -> None:
    line = JsonFormatter().format(_record("channel %s connected", "c-1", channel="c-1"))
    doc = orjson.loads(line)
    assert doc["message"] == "channel c-1 connected"
    assert doc["level"] == "INFO"
    assert doc["logger"] == "pipeline.test"
    assert doc["channel"] == "c-1"
    assert doc["time"].endswith("+00:00")


def test_redacting_filter_hides_secrets_in_arguments() -> None:
    record = _record("token request failed for secret=%s", CANARY)
    assert RedactingFilter([CANARY]).filter(record)
    assert CANARY not in record.getMessage()
    assert "**********" in record.getMessage()


def test_configure_logging_redacts_through_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_format=True, secrets=[CANARY, ""])
    try:
        logging.getLogger("pipeline.x").info("leaking %s here", CANARY)
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "leaking" in err
    assert CANARY not in err


def test_text_format_is_plain(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", json_format=False)
    try:
        logging.getLogger("pipeline.y").debug("hello")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "DEBUG" in err
    assert "pipeline.y: hello" in err
    assert not err.startswith("{")


def test_filter_without_secrets_leaves_record_alone() -> None:
    stream = io.StringIO()
    record = _record("plain %d", 5)
    assert RedactingFilter([]).filter(record)
    assert record.args == (5,)
    stream.write(record.getMessage())
    assert stream.getvalue() == "plain 5"
