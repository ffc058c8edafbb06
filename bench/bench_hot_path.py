"""CPU-only benchmark of the producer hot path: frame bytes → encoded record values (no Kafka).

Three designs, same input frames, same run, side by side:

a. tutorial: ``json.loads`` + a pydantic model of the frame + one dict per metric datum
   (uuid4 event id, as the tutorial does) + ``json.dumps`` per record;
b. ``parse_frame`` (orjson) + ``map_event`` + ``fastavro.schemaless_writer`` per record;
c. ``parse_frame`` (orjson) + ``map_event`` + the ``compile_encoder`` encoder per record
   (the hot path the producer runs).

Frames: a ``v2.analytics.queues.{id}.observations`` aggregate-flavour frame with 8 metrics (the
frame of ``reference/perf-notes.md`` / §6.2) and an instant observation frame with 5 metrics.
b and c also emit the derived KPIs of the aggregate frame (2 of them here), so they produce more
records per frame than a; frames/s is the like-for-like column.

Run: ``.venv/bin/python bench/bench_hot_path.py`` (about 10-15 s). Absolute numbers depend on
the machine; the ratios are what to compare with perf-notes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import orjson
from pydantic import BaseModel

from pipeline.core.contract.mapping import map_event
from pipeline.core.contract.wire import compile_encoder, encode_fastavro
from pipeline.core.genesys.frames import TopicEvent, parse_frame

__all__ = ["hot_path", "main", "tutorial", "with_fastavro"]

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "metric.avsc").read_text())
QUEUE = "8f7e2c1a-0000-4000-8000-000000000001"
TOPIC = f"v2.analytics.queues.{QUEUE}.observations"
INGEST_MS = 1_735_552_000_000
INSTANCE = "producer-0"


def _t(name: str, count: int, total: int, low: int, high: int) -> dict[str, Any]:
    return {"metric": name, "stats": {"count": count, "sum": total, "min": low, "max": high}}


def _o(name: str, count: int, age: int | None = None) -> dict[str, Any]:
    stats = {"count": count} if age is None else {"count": count, "calculatedMetricValue": age}
    return {"metric": name, "stats": stats}


def _frame(interval: str, metrics: list[dict[str, Any]], correlation_id: str) -> bytes:
    group = {"queueId": QUEUE, "mediaType": "voice"}
    return orjson.dumps(
        {
            "topicName": TOPIC,
            "version": "2",
            "eventBody": {"group": group, "data": [{"interval": interval, "metrics": metrics}]},
            "metadata": {"CorrelationId": correlation_id},
        }
    )


# §6.2 aggregate flavour, the perf-notes frame: 8 metric datums.
AGGREGATE_FRAME = _frame(
    "2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z",
    [
        _o("nOffered", 2),
        _t("tAlert", 1, 8277, 8277, 8277),
        _t("tAbandon", 2, 86168, 11781, 74387),
        _t("tAcd", 2, 86168, 11781, 74387),
        _t("tConnected", 2, 93173, 17669, 75504),
        _t("tNotResponding", 1, 8277, 8277, 8277),
        _t("tWait", 2, 86168, 11781, 74387),
        {
            "metric": "oServiceLevel",
            "stats": {"ratio": 0, "numerator": 0, "denominator": 2, "target": 0.5},
        },
    ],
    "9d3a5c1e-6f0b-4f7e-9a51-0c4f3b2a1d00",
)
# §6.2 observation flavour (instant: start == end), as the emulator sends per media type.
INSTANT_FRAME = _frame(
    "2024-12-30T09:46:54.839Z/2024-12-30T09:46:54.839Z",
    [
        _o("oWaiting", 3),
        _o("oInteracting", 7),
        _o("oAlerting", 1),
        _o("oLongestWaiting", 1, 48211),
        _o("oLongestInteracting", 1, 301877),
    ],
    "0b7c2e4d-1a3f-4c5d-8e9f-a0b1c2d3e4f5",
)


# ----------------------------------------------------------------------------- a: tutorial
class Metric(BaseModel):
    metric: str
    qualifier: str | None = None
    stats: dict[str, float]


class Datum(BaseModel):
    interval: str
    metrics: list[Metric]


class Body(BaseModel):
    group: dict[str, str]
    data: list[Datum]


class Frame(BaseModel):
    topicName: str
    version: str | None = None
    eventBody: Body
    metadata: dict[str, str] | None = None


def tutorial(frame: bytes, ingest_ms: int = INGEST_MS) -> list[bytes]:
    """a. json.loads + pydantic + dict records + json.dumps."""
    doc = Frame.model_validate(json.loads(frame))
    entity = doc.topicName.split(".")[3]
    media = doc.eventBody.group.get("mediaType")
    out = []
    for datum in doc.eventBody.data:
        start, _, end = datum.interval.partition("/")
        for m in datum.metrics:
            record: dict[str, Any] = {
                "event_id": str(uuid.uuid4()),
                "source_topic": doc.topicName,
                "entity_type": "queue",
                "entity_id": entity,
                "metric": m.metric,
                "qualifier": m.qualifier,
                "media_type": media,
                "interval_start": start,
                "interval_end": end,
                "stats": m.stats,
                "ingest_time": ingest_ms,
                "producer_instance": INSTANCE,
                "correlation_id": (doc.metadata or {}).get("CorrelationId"),
            }
            out.append(json.dumps(record).encode())
    return out


# ----------------------------------------------------------------------------- b and c
PARSED = fastavro.parse_schema(SCHEMA)
ENCODE = compile_encoder(SCHEMA)


def _event(frame: bytes) -> TopicEvent:
    event = parse_frame(frame)
    assert isinstance(event, TopicEvent)
    return event


def with_fastavro(frame: bytes) -> list[bytes]:
    """b. orjson + map_event + fastavro.schemaless_writer per record."""
    records = map_event(_event(frame), ingest_ms=INGEST_MS, instance=INSTANCE)
    return [encode_fastavro(PARSED, r) for r in records]


def hot_path(frame: bytes) -> list[bytes]:
    """c. orjson + map_event + the compiled encoder per record."""
    records = map_event(_event(frame), ingest_ms=INGEST_MS, instance=INSTANCE)
    return [ENCODE(r) for r in records]


# ----------------------------------------------------------------------------- harness
def measure(path: Callable[[bytes], list[bytes]], frame: bytes, seconds: float) -> float:
    """Best of 3 runs of ~``seconds`` each: frames per second."""
    for _ in range(300):  # warm-up: memo tables, pydantic validators, branch caches
        path(frame)
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                path(frame)
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    """Print frames/s and records/s of a, b and c for both frames, and the ratios."""
    paths = {"a tutorial": tutorial, "b fastavro": with_fastavro, "c hot path": hot_path}
    for name, frame in (("aggregate", AGGREGATE_FRAME), ("instant", INSTANT_FRAME)):
        assert hot_path(frame) == with_fastavro(frame), "compiled encoder differs from fastavro"
        print(f"\n{name} frame ({len(frame)} bytes)")
        print(f"{'path':<12} {'rec/frame':>9} {'frames/s':>10} {'records/s':>11} {'µs/frame':>9}")
        rate: dict[str, float] = {}
        for label, path in paths.items():
            per_frame = len(path(frame))
            rate[label] = fps = measure(path, frame, 0.5)
            print(f"{label:<12} {per_frame:>9} {fps:>10,.0f} {fps * per_frame:>11,.0f} "
                  f"{1e6 / fps:>9.1f}")  # fmt: skip
        c = rate["c hot path"]
        print(f"frames/s ratio c/a = {c / rate['a tutorial']:.2f}, "
              f"c/b = {c / rate['b fastavro']:.2f}")  # fmt: skip
        per_record = 1e6 / (c * len(hot_path(frame)))
        verdict = "met" if per_record <= 2.5 else "NOT met"
        print(f"c: {per_record:.2f} µs per record (target <= 2.5: {verdict})")


if __name__ == "__main__":
    main()
