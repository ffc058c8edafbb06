"""Waiting for what another task, thread, process or server does: poll for the condition.

Tests never sleep a fixed time to let something happen elsewhere; they poll for the condition
that shows it happened, with a timeout derived from the one test time unit
(``tests.conftest.seconds``: pass ``seconds(n)``). On timeout the test fails with its message,
what it waited for (the condition's source line) and how long it waited.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import pytest

__all__ = ["until", "until_sync"]

POLL_S = 0.02
"""How often a condition is checked (short: conditions are cheap reads of local state)."""


async def until(
    condition: Callable[[], object | Awaitable[object]],
    timeout_s: float,
    *,
    message: str,
    poll_s: float = POLL_S,
) -> None:
    """Check ``condition`` every ``poll_s`` until it is truthy, on this event loop.

    Args:
        condition: a function returning a truthy value when done, or an awaitable of one
            (for a condition that asks a server).
        timeout_s: how long to wait, in seconds (pass ``seconds(n)``).
        message: what the test waited for, in words (goes into the failure).
        poll_s: the pause between checks.

    Raises:
        pytest.fail.Exception: the condition did not hold within ``timeout_s``.
    """
    try:
        async with asyncio.timeout(timeout_s) as scope:
            while True:
                result = condition()
                if inspect.isawaitable(result):
                    result = await result  # a condition that hangs is cut off too
                if result:
                    return
                await asyncio.sleep(poll_s)
    except TimeoutError:
        if not scope.expired():
            raise  # the condition's own timeout: not ours to reword
    pytest.fail(_failure(condition, timeout_s, message))


def until_sync(
    condition: Callable[[], object], timeout_s: float, *, message: str, poll_s: float = POLL_S
) -> None:
    """The blocking twin of :func:`until`, for tests that wait on another thread or process.

    Raises:
        pytest.fail.Exception: the condition did not hold within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(_failure(condition, timeout_s, message))
        time.sleep(poll_s)


def _failure(condition: Callable[[], object], timeout_s: float, message: str) -> str:
    return f"{message}: waited {timeout_s:.1f} s for {_describe(condition)}"


def _describe(condition: Callable[[], object]) -> str:
    # The source line of a lambda says what was awaited; a named function says it by its name.
    name = getattr(condition, "__qualname__", repr(condition))
    if getattr(condition, "__name__", "") != "<lambda>":
        return name
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return name
