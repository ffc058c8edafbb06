"""Metric families: how a metric behaves in time, and so which objective it is held to.

Cadence model (what "on time" means per family)
-----------------------------------------------
Genesys pushes values when they change, not on a clock (``docs/genesys-api.md``
§6.1: "sent on change, at most one per second"). So silence on one key says nothing: a queue
where nobody waits sends no new ``oWaiting``. What can be judged is the *producer*:

- ``on_change`` (instant observations, states): no period. The value stays true until a newer
  one arrives, as long as the stream that would carry the newer one is alive.
- ``interval`` (aggregates, user aggregates, KPIs): the value describes a 30-minute interval
  and also arrives only on change, so a quiet queue's last interval may be old. It is "the
  current value" only until the interval ends; it expires ``stale_after_factor`` periods
  after ``interval_end`` when no newer interval came for the key.

The staleness rules that follow from it: :mod:`pipeline.core.workers.staleness`.
"""

from __future__ import annotations

from typing import Final, Literal

from pipeline.core.contract.records import MetricRecord

__all__ = ["LIVE_FAMILIES", "Family", "metric_family"]

Family = Literal["observation", "state", "aggregate", "user_aggregate", "kpi"]
"""How a metric behaves in time (see :func:`metric_family`)."""
LIVE_FAMILIES: Final = frozenset({"observation", "state"})
"""Families held to the live SLO (``live_p95_s``); the others to ``interval_kpi_p95_s``."""
_STATE_METRICS: Final = frozenset({"presence", "routingStatus", "member"})


def metric_family(record: MetricRecord) -> Family:
    """The family of a record.

    Returns:
        ``kpi`` (derived), ``state`` (presence, routingStatus, member), ``observation`` (any
        other record without an interval: instant o* values, agent-state counts),
        ``user_aggregate`` (interval metrics of a user) or ``aggregate`` (interval metrics of
        a queue or wrap-up code).
    """
    if record.derived:
        return "kpi"
    if record.metric in _STATE_METRICS:
        return "state"
    if record.interval_start is None:
        return "observation"
    return "user_aggregate" if record.entity_type == "user" else "aggregate"
