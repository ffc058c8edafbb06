"""The simulated contact center, pure and seeded: the same seed gives the same day.

Modules:
    center    ContactCenter: the org, the floor, the recorder and the engine behind one read API
    engine    the event schedule that moves the floor in 1-second ticks (routing, talk, ACW ...)
    floor     the live state (who waits, rings, talks) and its committed, send-on-change view
    recorder  completed metrics and status segments, and the current interval's totals
    routing   which agents can take an offer right now
    entities  the mutable agent and conversation records; drawing the org from the seed
    log       compact emission and segment logs, and the stats they render to
    model     shared values: SimulationConfig, entity infos, snapshots, metric lists, ms helpers
    topics    notification ``eventBody`` dicts for each supported topic, from a ContactCenter
"""
