"""Dead letters that fit in one Kafka record: raw bytes truncated, and the record says so."""

from __future__ import annotations

import pytest

from pipeline.core.contract.dead_letter import (
    MAX_REASON_CHARS,
    TRUNCATION_HEADERS,
    fit_dead_letter,
)
from pipeline.core.contract.records import dead_letter_record
from pipeline.core.genesys.events import DeadLetter
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import OutRecord

LIMIT = 1_000_000  # librdkafka's default message.max.bytes
OUTBOX = Outbox("genesys", {"genesys.dlq": 7}, "worker-0")


def size(record: OutRecord) -> int:
    """What a record weighs on the wire, roughly as the broker counts it (key, value, headers)."""
    headers = sum(len(name) + len(value) for name, value in record.headers)
    return len(record.key or b"") + len(record.value) + headers


def out(dl: DeadLetter, limit: int = LIMIT) -> tuple[OutRecord, bool]:
    fit = fit_dead_letter(dl, limit)
    record = OUTBOX.dead_letter(dead_letter_record(fit.dead_letter, "worker-0"))
    return OutRecord(
        record.topic, record.key, record.value, (*record.headers, *fit.headers())
    ), fit.truncated


def test_a_dead_letter_that_fits_is_left_exactly_as_it_was() -> None:
    dl = DeadLetter(b"\x00\x00\x00\x00\x07\x02", "too short", "dashboard-decode", None, 1.5)

    fit = fit_dead_letter(dl, LIMIT)

    assert fit.dead_letter is dl
    assert not fit.truncated
    assert fit.raw_length == 6
    assert fit.headers() == ()


@pytest.mark.parametrize("raw_size", [LIMIT - 100, LIMIT, 3 * LIMIT])
def test_raw_bytes_too_large_for_one_record_are_cut_and_the_record_fits(raw_size: int) -> None:
    raw = bytes(range(256)) * (raw_size // 256 + 1)
    dl = DeadLetter(raw[:raw_size], "x" * 5000, "dashboard", "v2.some.topic", 2.0)

    record, truncated = out(dl)

    assert truncated
    assert size(record) <= LIMIT
    headers = dict(record.headers)
    assert headers[TRUNCATION_HEADERS[0]] == str(raw_size).encode()
    assert headers[TRUNCATION_HEADERS[1]] == b"true"


def test_the_truncated_dead_letter_keeps_the_head_of_raw_and_says_how_long_it_was() -> None:
    raw = b"a" * 2_000_000
    dl = DeadLetter(raw, "HTTP 413", "dashboard", None, 2.0)

    fit = fit_dead_letter(dl, LIMIT)

    assert raw.startswith(fit.dead_letter.raw)
    assert len(fit.dead_letter.raw) > LIMIT // 2
    assert fit.raw_length == 2_000_000
    assert "truncated" in fit.dead_letter.reason
    assert "2000000" in fit.dead_letter.reason
    assert fit.dead_letter.reason.startswith("HTTP 413")


def test_a_very_long_reason_is_cut_too() -> None:
    dl = DeadLetter(b"x", "why " * 10_000, "decode", None, 2.0)

    fit = fit_dead_letter(dl, LIMIT)

    assert len(fit.dead_letter.reason) <= MAX_REASON_CHARS
    assert fit.dead_letter.raw == b"x"


def test_a_limit_too_small_for_any_dead_letter_is_refused() -> None:
    with pytest.raises(ValueError, match="max_record_bytes"):
        fit_dead_letter(DeadLetter(b"x", "r", "s", None, 0.0), 1000)
