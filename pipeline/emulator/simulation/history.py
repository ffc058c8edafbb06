"""Simulated history: where the simulation starts, so the emulator has a past like a real org.

A real org answers aggregate queries over past intervals (docs/genesys-api.md §7.5): a 24-hour
conversation-aggregates query, the producer's availability report, or the current half-hour's
running totals all describe what happened before the client connected. The simulation keeps
nothing it did not simulate, so the emulator starts its simulation *before* its start instant
and runs it forward to that instant (``ContactCenter`` does this when it is built). The past is
the same discrete-event simulation as the present, so it is deterministic per seed and start,
and the state at the start instant is exactly what it would be had the emulator been running
for that long.

How far back, decided here (pure):

* ``history_s`` (the emulator's ``--history``, default ``PT24H``): how much past to simulate.
  24 hours rather than "since local midnight": a 24-hour look-back (the common dashboard
  window) then has data in every bucket whatever the time of day, start-up cost does not
  depend on the hour, and "today" in any time zone is inside it.
* The start is moved back to a 30-minute boundary, so every past aggregate bucket of a query
  aligned on the half hour is complete (the first interval is not a partial one).
* Cost cap, ``history_budget_s``: simulating costs up to about 130 µs per conversation and
  120 µs per agent-hour (measured on the 2-core dev machine, ``bench/bench_history.py``: the
  default centre, 20 queues and 200 agents, simulates 24 hours in about 3 s, ~80 µs per
  conversation; 2,000 queues and 20,000 agents cost about 18 s per simulated hour, ~130 µs per
  conversation, so the estimate uses the larger figure). The history is cut so its *estimated*
  cost stays within the budget; the estimate comes from the centre's size and arrival rate,
  never from a clock, so the cut is deterministic too. A capped history starts on the first
  30-minute boundary inside the budget (or, when not even the current half-hour fits, exactly
  where the budget ends, leaving a partial first interval). With the default budget (6 s) the
  default centre gets its full 24 hours (estimated 4.3 s) and a 2,000-queue / 20,000-agent
  centre at most 20 minutes (its current half-hour, or part of it).
"""

from __future__ import annotations

from typing import Final

from pipeline.emulator.simulation.model import INTERVAL_MS, SimulationConfig

__all__ = ["AGENT_HOUR_COST_S", "CONVERSATION_COST_S", "history_start_ms", "seconds_affordable"]

CONVERSATION_COST_S: Final = 130e-6
"""Estimated simulation cost of one conversation (arrival to after-call work), seconds."""
AGENT_HOUR_COST_S: Final = 120e-6
"""Estimated simulation cost of one agent for one simulated hour (presence, routing), seconds."""


def seconds_affordable(config: SimulationConfig) -> float:
    """How many simulated seconds of history ``config.history_budget_s`` pays for (estimated).

    Returns:
        ``inf`` for a centre with neither arrivals nor agents to simulate (cannot happen with
        the config's checks, kept for safety).
    """
    conversations_per_s = config.queues * config.arrival_rate_per_queue_per_min / 60.0
    cost_per_s = (
        conversations_per_s * CONVERSATION_COST_S + config.agents * AGENT_HOUR_COST_S / 3600.0
    )
    return float("inf") if cost_per_s <= 0 else config.history_budget_s / cost_per_s


def history_start_ms(config: SimulationConfig, start_ms: int) -> int:
    """The instant the simulation starts, so it has ``config.history_s`` of past at ``start_ms``.

    Args:
        config: ``history_s`` (seconds of past wanted, 0 for none) and ``history_budget_s``.
        start_ms: the emulator's start (epoch ms, a whole second).

    Returns:
        ``start_ms`` itself without history; else the 30-minute boundary at or before
        ``start_ms - history_s``, or a later instant when the budget does not cover that much
        (module docstring). Always a whole second, never after ``start_ms``.
    """
    if config.history_s <= 0:
        return start_ms
    wanted = start_ms - config.history_s * 1000
    aligned = wanted - wanted % INTERVAL_MS
    affordable_s = min(seconds_affordable(config), config.history_s + INTERVAL_MS // 1000)
    affordable_ms = int(affordable_s) * 1000
    if start_ms - aligned <= affordable_ms:
        return aligned
    earliest = start_ms - affordable_ms
    boundary = -(-earliest // INTERVAL_MS) * INTERVAL_MS  # the first half hour inside the budget
    return boundary if boundary <= start_ms else earliest
