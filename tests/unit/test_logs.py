"""JSON log lines, the secret-redaction backstop and the repeat filter."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from pipeline.logs import (
    JsonFormatter,
    LogChoice,
    RedactingFilter,
    RepeatFilter,
    configure_logging,
    select_logging,
)

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


def _error(msg: str, *args: object, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_repeat_filter_keeps_one_of_a_kind_per_interval_and_counts_the_rest() -> None:
    clock = _Clock()
    repeats = RepeatFilter(interval_s=10.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    assert repeats.filter(_error(template, 111, "refused"))
    held = [repeats.filter(_error(template, 100 + i, "refused")) for i in range(230)]
    assert not any(held)  # other numbers, same kind
    clock.now += 10.0
    record = _error(template, 111, "refused")
    assert repeats.filter(record)
    assert record.getMessage() == (
        "Unable connect to node with id 111: refused (and 230 more like it in the last 10 s)"
    )
    assert repeats.filter(_error(template, 5, "x", name="other.logger"))  # another kind


def test_repeat_filter_lets_info_through_and_forgets_old_kinds() -> None:
    clock = _Clock()
    repeats = RepeatFilter(interval_s=10.0, max_kinds=2, clock=clock)
    info = _record("channel %s connected", "c-1")
    assert all(repeats.filter(info) for _ in range(5))
    for kind in ("a", "b", "c"):  # three kinds, room for two: "a" is forgotten
        assert repeats.filter(_error(kind))
    assert repeats.filter(_error("a"))
    assert not repeats.filter(_error("c"))


@pytest.mark.parametrize(
    ("flag_level", "flag_format", "environ", "level", "json_format"),
    [
        (None, None, {}, "INFO", False),
        (None, None, {"PIPELINE_LOG_FORMAT": "JSON", "PIPELINE_LOG_LEVEL": "debug"}, "DEBUG", True),
        ("WARNING", "text", {"PIPELINE_LOG_FORMAT": "json", "PIPELINE_LOG_LEVEL": "DEBUG"},
         "WARNING", False),
        (None, None, {"PIPELINE_LOG_FORMAT": "", "PIPELINE_LOG_LEVEL": " "}, "INFO", False),
    ],
)  # fmt: skip
def test_the_flag_wins_over_the_environment_over_the_default(
    flag_level: str | None,
    flag_format: str | None,
    environ: dict[str, str],
    level: str,
    json_format: bool,
) -> None:
    assert select_logging(flag_level, flag_format, environ) == LogChoice(level, json_format)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [({"PIPELINE_LOG_LEVEL": "LOUD"}, "PIPELINE_LOG_LEVEL"),
     ({"PIPELINE_LOG_FORMAT": "xml"}, "PIPELINE_LOG_FORMAT")],
)  # fmt: skip
def test_an_invalid_environment_value_names_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{variable}: invalid choice .* \(choose from "):
        select_logging(None, None, environ)
