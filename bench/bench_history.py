"""Emulator start-up with simulated history (``--history``), at the default and a huge size.

Building a :class:`~pipeline.emulator.simulation.center.ContactCenter` simulates its history
(``pipeline/emulator/simulation/history.py``). This script builds one per case and prints the
history it got, the time it took, the rows the logs hold and the estimate the budget is based
on, so the estimate (130 µs per conversation, 120 µs per agent-hour) can be checked against this
machine.

Cases: the default centre (20 queues, 200 agents) with no history and with ``PT24H``; the huge
centre (2,000 queues, 20,000 agents) with ``PT24H`` under the default budget (6 s), which caps
it; and the huge centre with no history (the cost of building the organisation alone).

Run: ``.venv/bin/python bench/bench_history.py`` (about 20-40 s).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pipeline.emulator.config import DEFAULTS, history_seconds
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.history import AGENT_HOUR_COST_S, CONVERSATION_COST_S
from pipeline.emulator.simulation.model import SimulationConfig

__all__ = ["main"]

START = datetime(2026, 5, 4, 9, 47, 13, tzinfo=UTC)
CASES = [
    ("default, no history", 20, 200, "PT0S"),
    ("default, PT24H", 20, 200, "PT24H"),
    ("2,000 q / 20,000 a, no history", 2000, 20_000, "PT0S"),
    ("2,000 q / 20,000 a, PT24H (capped)", 2000, 20_000, "PT24H"),
]


def estimate_s(config: SimulationConfig, history_ms: int) -> float:
    """The cost the budget assumes for ``history_ms`` of this centre."""
    hours = history_ms / 3_600_000
    conversations = config.queues * config.arrival_rate_per_queue_per_min * 60 * hours
    return conversations * CONVERSATION_COST_S + config.agents * hours * AGENT_HOUR_COST_S


def main() -> None:
    """Build each case once and print one line per case."""
    print(f"budget {DEFAULTS.history_budget_s} s (--history-budget-s)")
    print(
        f"{'case':36} {'history':>8} {'start-up':>9} {'estimate':>9} {'rows':>10} {'segments':>9}"
    )
    for name, queues, agents, history in CASES:
        config = SimulationConfig(queues=queues, agents=agents,
                                  history_s=history_seconds(history))  # fmt: skip
        began = time.perf_counter()
        centre = ContactCenter(config, START)
        took = time.perf_counter() - began
        print(
            f"{name:36} {centre.history_ms / 3_600_000:7.2f}h {took:8.2f}s "
            f"{estimate_s(config, centre.history_ms):8.2f}s {len(centre.emissions):10,} "
            f"{len(centre.segments):9,}"
        )


if __name__ == "__main__":
    main()
