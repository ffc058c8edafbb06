"""Dead letters that fit in one Kafka record (pure).

A dead letter carries the bytes that could not be handled. They can be as large as what
came in: a Kafka value near the broker's limit that a worker cannot decode, a dashboard batch
the dashboard refused as too large. Wrapped in a ``DeadLetterRecord`` with its reason and
headers, such bytes no longer fit in one Kafka record, and a record the producer refuses
would stop the worker that tried to write it. :func:`fit_dead_letter` cuts ``raw`` to what
fits and says so, three ways:

- ``raw`` holds the first bytes of the original;
- ``reason`` ends with ``[raw truncated: first N of M bytes]``;
- :meth:`FittedDeadLetter.headers` adds ``dlq.raw.length`` (M, decimal) and
  ``dlq.raw.truncated`` (``true``) to the record's headers.

A dead letter that fits is left exactly as it was (no headers added), so the records of the
contract's golden tests do not change. The record schema is unchanged too: the original
length travels in the reason and the headers, not in a new field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from pipeline.core.genesys.events import DeadLetter

__all__ = [
    "DLQ_OVERHEAD_BYTES",
    "MAX_REASON_CHARS",
    "TRUNCATION_HEADERS",
    "FittedDeadLetter",
    "fit_dead_letter",
]

DLQ_OVERHEAD_BYTES: Final = 16 * 1024
"""Room kept for everything in a dead-letter record but ``raw``: its other fields (the reason
twice, as a field and as a header, at most :data:`MAX_REASON_CHARS` characters of up to 4
UTF-8 bytes each), the CloudEvents headers and Kafka's own record overhead."""
MAX_REASON_CHARS: Final = 1000
"""The longest reason kept (a decoder message can quote a whole schema)."""
TRUNCATION_HEADERS: Final = ("dlq.raw.length", "dlq.raw.truncated")
"""Headers of a truncated dead letter: the original length of ``raw``, and ``true``."""


@dataclass(frozen=True, slots=True)
class FittedDeadLetter:
    """A dead letter cut to fit, and what it was before.

    Attributes:
        dead_letter: the dead letter to write (the original when it fitted).
        raw_length: the length of the original ``raw``.
    """

    dead_letter: DeadLetter
    raw_length: int

    @property
    def truncated(self) -> bool:
        """Whether ``raw`` was cut."""
        return len(self.dead_letter.raw) < self.raw_length

    def headers(self) -> tuple[tuple[str, bytes], ...]:
        """The Kafka headers to add to the record: none unless ``raw`` was cut."""
        if not self.truncated:
            return ()
        length, flag = TRUNCATION_HEADERS
        return ((length, str(self.raw_length).encode()), (flag, b"true"))


def fit_dead_letter(dead_letter: DeadLetter, max_record_bytes: int) -> FittedDeadLetter:
    """Cut a dead letter so its record fits in ``max_record_bytes``.

    Args:
        dead_letter: the dead letter as built.
        max_record_bytes: the largest record the producer and broker take (librdkafka's
            ``message.max.bytes``, 1,000,000 by default; the broker's is about the same).

    Returns:
        The dead letter, unchanged when it fits, else with ``raw`` cut and the reason saying
        so (see the module docstring).

    Raises:
        ValueError: ``max_record_bytes`` leaves no room for ``raw`` at all.
    """
    room = max_record_bytes - DLQ_OVERHEAD_BYTES
    if room < DLQ_OVERHEAD_BYTES:
        raise ValueError(f"max_record_bytes must be ≥ {2 * DLQ_OVERHEAD_BYTES}")
    raw, reason = dead_letter.raw, dead_letter.reason
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    if len(raw) > room:
        note = f" [raw truncated: first {room} of {len(raw)} bytes]"
        reason = reason[: MAX_REASON_CHARS - len(note)] + note
        raw = raw[:room]
    if raw is dead_letter.raw and reason is dead_letter.reason:
        return FittedDeadLetter(dead_letter, len(raw))
    fitted = dataclasses.replace(dead_letter, raw=raw, reason=reason)
    return FittedDeadLetter(fitted, len(dead_letter.raw))
