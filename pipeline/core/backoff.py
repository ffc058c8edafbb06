"""Exponential backoff with full jitter, as pure arithmetic.

"Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015) draws the whole
delay at random: ``uniform(0, min(cap, base * 2**attempt))``. Clients that failed together
then spread out instead of retrying in lockstep. confluent-kafka's schema-registry client
uses the same formula (``full_jitter()`` in ``schema_registry_client.py``).

The random draw is injected, so callers (and tests) decide where randomness comes from.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["full_jitter"]

# 2.0 ** 1024 overflows a float; any exponent this large is far past every sane cap anyway.
_MAX_EXPONENT = 1000


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry).

    Args:
        attempt: how many delays came before this one (≥ 0).
        base: the ceiling of the first delay, in seconds (≥ 0).
        cap: the largest ceiling, in seconds (≥ 0).
        rand: returns a float in [0, 1); values outside are clamped to [0, 1].

    Returns:
        A delay in ``[0, min(cap, base * 2**attempt)]`` seconds.

    Raises:
        ValueError: a negative ``attempt``, ``base`` or ``cap``.
    """
    if attempt < 0 or base < 0 or cap < 0:
        raise ValueError(f"attempt, base and cap must be ≥ 0, got {attempt}, {base}, {cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    return ceiling * min(max(rand(), 0.0), 1.0)
