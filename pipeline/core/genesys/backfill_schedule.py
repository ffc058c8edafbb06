"""The one backfill a channel session wants, until it finishes, and when to retry it.

A snapshot shows the current state, so a new one covers every earlier gap: a new request
supersedes one still running (the shell cancels that one and answers only the new one). A
failed snapshot is asked for again after a full-jitter delay, up to ``max_attempts`` tries in
all; then it is abandoned. Each outcome is an audit fact for the session to emit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.actions import Backfill
from pipeline.core.http_policy import full_jitter

__all__ = ["BackfillSchedule"]


class BackfillSchedule:
    """The backfill asked for last, its failures so far, and when it is due again.

    Args:
        max_attempts: tries per backfill before it is abandoned (≥ 1).
        base_s: ceiling of the first retry delay.
        cap_s: largest ceiling of a retry delay.
        jitter: returns a float in [0, 1).
    """

    __slots__ = ("_base_s", "_cap_s", "_current", "_failures", "_jitter", "_max", "_retry_at")

    def __init__(
        self, max_attempts: int, base_s: float, cap_s: float, jitter: Callable[[], float]
    ) -> None:
        self._max, self._base_s, self._cap_s, self._jitter = max_attempts, base_s, cap_s, jitter
        self._current: Backfill | None = None  # the last one asked for, until it finishes
        self._retry_at: float | None = None
        self._failures = 0

    @property
    def retry_at(self) -> float | None:
        """When the failed backfill is due again (None: none is waiting)."""
        return self._retry_at

    def request(self, backfill: Backfill) -> Backfill:
        """Make ``backfill`` the one wanted, superseding any other; returns it to send."""
        self._current, self._retry_at, self._failures = backfill, None, 0
        return backfill

    def due(self, now: float) -> Backfill | None:
        """The backfill to send again at ``now``, if its retry delay has passed."""
        if self._retry_at is None or now < self._retry_at or self._current is None:
            return None
        self._retry_at = None
        return self._current

    def finished(
        self, now: float, ok: bool, reason: str
    ) -> tuple[AuditKind, dict[str, Any]] | None:
        """Take the shell's answer for the current backfill.

        Args:
            now: when it finished.
            ok: whether the snapshot was fetched and handed on.
            reason: the shell's reason (empty when ok).

        Returns:
            The audit kind and facts: ``backfill.finished``, ``backfill.abandoned`` after
            the last allowed failure, or ``backfill.failed`` with ``retry_in_s``. None when
            no backfill is running (a late or superseded answer).
        """
        current = self._current
        if current is None or self._retry_at is not None:
            return None
        facts: dict[str, Any] = {"backfill": current.reason, "reason": reason}
        failures = self._failures + (0 if ok else 1)
        if ok or failures >= self._max:
            self._current = None
            kind = AuditKind.BACKFILL_FINISHED if ok else AuditKind.BACKFILL_ABANDONED
            return kind, {**facts, "failures": failures}
        delay = full_jitter(self._failures, self._base_s, self._cap_s, self._jitter)
        self._failures += 1
        self._retry_at = now + delay
        return AuditKind.BACKFILL_FAILED, {**facts, "retry_in_s": delay}
