"""Derived KPIs: the metrics the pipeline computes from a frame's own metrics (pure).

Derived KPIs (``derived`` true), per aggregate-flavour ``data[]`` element, from that element's
unqualified metrics, only when the inputs are there (a frame may carry any subset of metrics,
§6.2, so a missing metric is not a zero):

- ``serviceLevelPercent`` = ``oServiceLevel.ratio × 100`` (unit ``percent``; ``numerator``,
  ``denominator``, ``target`` carried from oServiceLevel). Needs ``ratio``.
- ``averageSpeedOfAnswerMs`` = ``tAnswered.sum / tAnswered.count`` (unit ``ms``; ``count`` and
  ``sum`` carried). Needs ``sum`` and ``count > 0``.
- ``averageHandleTimeMs`` = ``tHandle.sum / tHandle.count`` (unit ``ms``; ``count`` and ``sum``
  carried). Needs ``sum`` and ``count > 0``.
- ``abandonRatePercent`` = ``tAbandon.count / nOffered.count × 100`` (unit ``percent``;
  ``numerator`` = tAbandon.count, ``denominator`` = nOffered.count). Needs both counts and
  ``nOffered.count > 0``.

:func:`derive_kpis` runs once per aggregate ``data[]`` element of the mapping's hot path.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DERIVED_METRICS", "KPI_INPUTS", "Kpi", "derive_kpis"]

DERIVED_METRICS: Final = (
    "serviceLevelPercent",
    "averageSpeedOfAnswerMs",
    "averageHandleTimeMs",
    "abandonRatePercent",
)
"""The KPIs the pipeline computes (``derived`` true), see the module docstring."""

KPI_INPUTS: Final = frozenset({"oServiceLevel", "tAnswered", "tHandle", "tAbandon", "nOffered"})
"""The metrics the KPIs are computed from (their unqualified stats only)."""

Kpi = tuple[str, float, str, Any, Any, Any, Any, Any]
"""(metric, value, unit, count, sum, numerator, denominator, target) of one derived KPI."""


def derive_kpis(inputs: dict[str, list[Any]]) -> list[Kpi]:
    """The KPIs whose inputs are there.

    Args:
        inputs: metric name → its stats in the record's column order, ``[count, sum, min,
            max, ratio, numerator, denominator, target, …]`` (None where absent), for the
            unqualified :data:`KPI_INPUTS` of one ``data[]`` element.

    Returns:
        One :data:`Kpi` per KPI that can be computed, in :data:`DERIVED_METRICS` order.
    """
    out: list[Kpi] = []
    sl = inputs.get("oServiceLevel")
    if sl is not None and sl[4] is not None:
        out.append(("serviceLevelPercent", sl[4] * 100.0, "percent", None, None, *sl[5:8]))
    for metric, source in (("averageSpeedOfAnswerMs", "tAnswered"),
                           ("averageHandleTimeMs", "tHandle")):  # fmt: skip
        t = inputs.get(source)
        if t is not None and t[1] is not None and t[0] is not None and t[0] > 0:
            out.append((metric, t[1] / t[0], "ms", t[0], t[1], None, None, None))
    offered, abandoned = inputs.get("nOffered"), inputs.get("tAbandon")
    if offered is not None and abandoned is not None and abandoned[0] is not None:
        n = offered[0]
        if n is not None and n > 0:
            rate, num, den = abandoned[0] / n * 100.0, float(abandoned[0]), float(n)
            out.append(("abandonRatePercent", rate, "percent", None, None, num, den, None))
    return out
