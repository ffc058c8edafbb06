"""A histogram tallied per batch holds exactly what one observe() per value would give."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from pipeline.services import tally as tally_module
from pipeline.services.tally import HistogramTally

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
VALUES = [0.0, 0.01, 0.010001, 0.05, 0.3, 1.0, 2.5, 9.99, 10.0, 10.5, 1e9, 0.2, 0.2]


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    histogram = Histogram("lat_seconds", "doc", ["stage", "family"], buckets=BUCKETS,
                          registry=registry)  # fmt: skip
    return registry, histogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[Any, ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def _observed_one_by_one() -> dict[tuple[str, tuple[Any, ...]], float]:
    registry, histogram = _histogram()
    for i, value in enumerate(VALUES):
        histogram.labels("e2e" if i % 3 else "ingest", "state").observe(value)
    return _samples(registry)


def _tallied() -> dict[tuple[str, tuple[Any, ...]], float]:
    registry, histogram = _histogram()
    tally = HistogramTally(histogram)
    for i, value in enumerate(VALUES[:5]):
        tally.add(("e2e" if i % 3 else "ingest", "state"), value)
    tally.flush()
    for i, value in enumerate(VALUES[5:], start=5):
        tally.add(("e2e" if i % 3 else "ingest", "state"), value)
    assert _samples(registry) != _observed_one_by_one()  # not published before the flush
    tally.flush()
    tally.flush()  # nothing new: adds nothing
    return _samples(registry)


def test_a_tallied_histogram_equals_one_observe_per_value() -> None:
    assert _tallied() == _observed_one_by_one()


def test_without_the_internals_it_observes_value_by_value() -> None:
    calls: list[float] = []

    class Child:
        def observe(self, value: float) -> None:
            calls.append(value)

    tally_module._observe_all(Child(), [0.5, 2.0])
    assert calls == [0.5, 2.0]
