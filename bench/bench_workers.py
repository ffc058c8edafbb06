"""Worker benchmark: Confluent-framed Avro metric values → the workers' cores, then with Kafka.

Three questions, one seeded synthetic stream, one process pinned to one CPU:

1. CPU throughput of a worker's per-record work, without Kafka. The values are what the
   producer writes to ``<prefix>.metrics`` (``Outbox.metric``: Confluent header + the
   ``compile_encoder`` Avro body), encoded once before timing. Every path runs twice, with
   today's decode (the baseline, kept) and with the workers' decode:

   - today: ``AvroDecoder``'s fastavro path (``split_confluent`` +
     ``fastavro.schemaless_reader`` into the reader schema; writer schema cached, no
     registry) + ``MetricRecord(**dict)``, as the workers did before the compiled decoder;
   - compiled: ``AvroDecoder.decode_values`` (the ``compile_decoder`` decoder of the writer
     schema id) + ``new_metric_record(*values)``, as ``TopicReader`` does now;
   - + freshness: + ``FreshnessMonitor.on_record`` (Kafka timestamp 3 ms after ingest),
     ``FreshnessMonitor.tick`` once per simulated second;
   - + coalesce: + ``LatestValues.offer`` (6 partitions by entity id, offsets in order), every
     250 ms of simulated time ``take_batch(5_000)`` until empty, then ``acknowledged`` and
     ``committable()`` (the dashboard worker's push + commit, instant acknowledgement, no
     HTTP); + body: plus ``orjson.dumps(batch.body(now))`` per batch.

2. The coalescing ratio at 10,000 updates/s: ``--seconds`` (30) of simulated time, pushes
   every ``push_interval_s`` = 0.5 s (``DashboardSettings``' default, ``max_batch`` 5,000),
   keys drawn from 200 queues x 8 metrics x 4 media types = 6,400 keys with a seeded Zipf(s)
   distribution over a shuffled key ranking (s = 1.0 skewed, s = 0 uniform for comparison).
   Runs the real ``LatestValues`` on records built per update (no Avro: the ratio does not
   depend on it). Reports pushes/s, values per push (mean, max) and updates / values pushed.

3. Kafka → decoded → worker core against a local broker (``bench_workers_kafka.py``, which
   says how): a plain aiokafka loop, today's path, and the workers' own reader with the
   freshness core, the freshness worker's per-fetch code and the dashboard worker's, side by
   side on one topic of ``--kafka-records`` (200,000) values.

The stream: 3 instant observations (oWaiting, oInteracting, oLongestWaiting) and 5 interval
aggregates (nOffered, tAnswered, tHandle, tTalk, tAbandon; 30-minute interval) per queue and
media type (voice, chat, email, message); event and ingest times advance with the update rate
(10 updates per millisecond), values vary per update, every update has its own event id.
Real Genesys traffic sends at most one update per topic per second; this stream is not held
to that, so it is a harsher test of coalescing than a real org of this size.

Method (1): a 40,000-record prefix of the stream (4 s of simulated time, ``--records``);
each path runs ``--rounds`` times (default 3, interleaved) on fresh state, best round
reported, with the garbage collector left on. Part 2 runs 30 s of simulated time for the
skewed distribution and 10 s for the uniform one (the ratio does not depend on the length).
Part 3 runs ``--kafka-rounds`` (1) rounds. About a minute on an idle 2-core machine; the
environment line and the last line print the load average, since other work inflates every
wall-clock number (compare the ratios, and part 3's CPU µs per record).

Run: ``.venv/bin/python bench/bench_workers.py`` (``--help``; ``--parts 1`` for part 1 only).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import orjson
from bench_workers_kafka import measure_kafka, new_avro_decoder, report_kafka

from pipeline.core.contract.records import METRIC_SCHEMA_VERSION, MetricRecord, new_metric_record
from pipeline.core.workers.freshness import FreshnessMonitor
from pipeline.core.workers.latest import LatestValues
from pipeline.kafka.consumer import AvroDecoder
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.schemas import CONTRACT, topic_names

__all__ = ["main"]

INSTANCE = "producer-0"
PREFIX = "bench-workers"
SCHEMA_ID = 1
PARTITIONS = 6
RATE = 10_000  # updates per second
T0_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z, 800 s into a 30-minute interval
INTERVAL_MS = 30 * 60 * 1000
BATCH_EVERY_S = 0.25  # part 1
PUSH_INTERVAL_S = 0.5  # part 2: DashboardSettings.push_interval_s
MAX_BATCH = 5_000  # DashboardSettings.max_batch
MEDIA = ("voice", "chat", "email", "message")
OBSERVATIONS = {"oWaiting": "count", "oInteracting": "count", "oLongestWaiting": "ms"}
AGGREGATES = ("nOffered", "tAnswered", "tHandle", "tTalk", "tAbandon")


# ----------------------------------------------------------------------------- the stream
@dataclass(frozen=True, slots=True)
class Key:
    """One current_key of the stream."""

    queue: str
    metric: str
    media: str
    partition: int


def key_space(queues: int) -> list[Key]:
    """queues x 8 metrics x 4 media types; partition from the entity id (the .metrics key)."""
    out = []
    for n in range(queues):
        queue = f"8f7e2c1a-0000-4000-8000-{n:012x}"
        partition = zlib.crc32(queue.encode()) % PARTITIONS
        for metric in (*OBSERVATIONS, *AGGREGATES):
            for media in MEDIA:
                out.append(Key(queue, metric, media, partition))
    return out


def draw(keys: int, updates: int, zipf_s: float, seed: int) -> list[int]:
    """``updates`` key indexes, Zipf(``zipf_s``) over a seeded random ranking of the keys."""
    rng = random.Random(seed)
    ranking = list(range(keys))
    rng.shuffle(ranking)
    weights = [1.0 / (rank + 1) ** zipf_s for rank in range(keys)]
    return rng.choices(ranking, cum_weights=list(itertools.accumulate(weights)), k=updates)


def build(key: Key, n: int) -> MetricRecord:
    """Update number ``n`` of the stream (for ``key``): a plausible record of that metric."""
    ingest = T0_MS + n // (RATE // 1000)
    event = ingest - 40
    v = (n * 7919) % 997
    common: dict[str, Any] = {
        "event_id": f"{zlib.crc32(n.to_bytes(8, 'big')):08x}{n:024x}",
        "source_topic": f"v2.analytics.queues.{key.queue}.observations",
        "entity_type": "queue",
        "entity_id": key.queue,
        "metric": key.metric,
        "qualifier": None,
        "media_type": key.media,
        "ratio": None,
        "numerator": None,
        "denominator": None,
        "target": None,
        "count_negative": None,
        "count_positive": None,
        "current": None,
        "p95": None,
        "p99": None,
        "calculated_metric_value": None,
        "derived": False,
        "event_time": event,
        "ingest_time": ingest,
        "backfill": False,
        "producer_instance": INSTANCE,
        "correlation_id": f"c-{n // 8}",
        "schema_version": METRIC_SCHEMA_VERSION,
    }
    unit = OBSERVATIONS.get(key.metric)
    if unit is not None:  # instant observation
        value = float(v % 40) if unit == "count" else float(v * 1000)
        return new_metric_record(
            **common, interval_start=None, interval_end=None, count=int(value) if unit == "count"
            else None, sum=None, min=None, max=None, value=value, unit=unit,
        )  # fmt: skip
    start = event - event % INTERVAL_MS
    if key.metric.startswith("n"):
        return new_metric_record(
            **common, interval_start=start, interval_end=start + INTERVAL_MS, count=v, sum=None,
            min=None, max=None, value=float(v), unit="count",
        )  # fmt: skip
    total = float(v * 183_000)
    return new_metric_record(
        **common, interval_start=start, interval_end=start + INTERVAL_MS, count=v + 1,
        sum=total, min=1_200.0, max=total / 2 + 1_200.0, value=total, unit="ms",
    )  # fmt: skip


def stream(keys: Sequence[Key], order: Sequence[int]) -> list[tuple[Key, MetricRecord]]:
    """The records of ``order`` (key indexes), in order."""
    return [(keys[k], build(keys[k], n)) for n, k in enumerate(order)]


def new_outbox() -> Outbox:
    """The producer's Outbox with fixed schema ids (metric = SCHEMA_ID), no registry."""
    ids: dict[str, int] = {"metric": SCHEMA_ID}
    schema_ids = {
        topic: ids.setdefault(CONTRACT[suffix], len(ids) + 1)
        for suffix, topic in topic_names(PREFIX).items()
    }
    return Outbox(PREFIX, schema_ids, INSTANCE)


def new_decoder() -> AvroDecoder:
    """A real AvroDecoder whose registry answers the metric schema (no registry client),
    warmed with one value so that SCHEMA_ID is cached and compiled."""
    decoder = new_avro_decoder()
    decoder.decode(new_outbox().metric(build(key_space(1)[0], 0)).value)
    return decoder


@dataclass(frozen=True, slots=True)
class Encoded:
    """One Kafka record of ``.metrics`` as a worker receives it."""

    value: bytes
    partition: int
    offset: int
    timestamp: int  # broker time (epoch ms)
    ingest_ms: int


def encode(records: Sequence[tuple[Key, MetricRecord]]) -> list[Encoded]:
    """Outbox.metric's ``.metrics`` value of every record, with partition offsets in order."""
    outbox, offsets = new_outbox(), [0] * PARTITIONS
    out = []
    for key, record in records:
        value = outbox.metric(record).value
        assert value is not None  # a metric record always has a value
        offset, offsets[key.partition] = offsets[key.partition], offsets[key.partition] + 1
        out.append(
            Encoded(value, key.partition, offset, record.ingest_time + 3, record.ingest_time)
        )
    return out


# ----------------------------------------------------------------------------- part 1
Decode = Callable[[bytes], MetricRecord]


def today_decode() -> Decode:
    """Today's path: AvroDecoder's fastavro read (the reference) + ``MetricRecord(**dict)``."""
    read = new_decoder()._decode_fastavro
    return lambda value: MetricRecord(**read(value, (None, None, None)))


def compiled_decode() -> Decode:
    """The workers' path: ``AvroDecoder.decode_values`` (compiled) + ``new_metric_record``."""
    values = new_decoder().decode_values
    return lambda value: new_metric_record(*values(value))


def path_decode(values: Sequence[Encoded], decode: Decode) -> int:
    for v in values:
        decode(v.value)
    return len(values)


def path_freshness(values: Sequence[Encoded], decode: Decode) -> int:
    monitor = FreshnessMonitor("freshness-0")
    on_record = monitor.on_record
    next_tick = T0_MS + 1000
    for v in values:
        record = decode(v.value)
        now_ms = v.timestamp + 2
        if now_ms >= next_tick:
            monitor.tick(next_tick / 1000)
            next_tick += 1000
        on_record(record, v.timestamp, now_ms / 1000)
    monitor.tick(next_tick / 1000)
    return len(values)


def _coalesce(values: Sequence[Encoded], decode: Decode, bodies: bool) -> int:
    latest = LatestValues()
    offer = latest.offer
    topic = topic_names(PREFIX)["metrics"]
    every = int(BATCH_EVERY_S * 1000)
    next_batch = T0_MS + every
    pushed = 0

    def push(now_ms: int) -> int:
        count = 0
        while (batch := latest.take_batch(MAX_BATCH)) is not None:
            if bodies:
                orjson.dumps(batch.body(now_ms / 1000))
            latest.acknowledged(batch.batch_id)
            count += len(batch.values)
        latest.offsets.committable()
        return count

    for v in values:
        record = decode(v.value)
        now_ms = v.timestamp + 2
        if now_ms >= next_batch:
            pushed += push(next_batch)
            next_batch += every
        offer(record, topic, v.partition, v.offset)
    pushed += push(next_batch)
    assert pushed > 0
    assert latest.pending == 0
    return len(values)


PATHS: dict[str, tuple[Callable[[Sequence[Encoded], Decode], int], Callable[[], Decode]]] = {
    "today: decode": (path_decode, today_decode),
    "compiled: decode": (path_decode, compiled_decode),
    "today: + freshness": (path_freshness, today_decode),
    "compiled: + freshness": (path_freshness, compiled_decode),
    "today: + coalesce": (lambda vs, d: _coalesce(vs, d, bodies=False), today_decode),
    "compiled: + coalesce": (lambda vs, d: _coalesce(vs, d, bodies=False), compiled_decode),
    "compiled: + coalesce + body": (lambda vs, d: _coalesce(vs, d, bodies=True), compiled_decode),
}


def throughput(values: Sequence[Encoded], rounds: int) -> dict[str, list[float]]:
    """records/s of every path, ``rounds`` times, interleaved."""
    path_decode(values[:2_000], today_decode())  # warm-up (imports, caches)
    out: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(rounds):
        for name, (path, decoder) in PATHS.items():
            decode = decoder()
            start = time.perf_counter()
            n = path(values, decode)
            out[name].append(n / (time.perf_counter() - start))
    return out


# ----------------------------------------------------------------------------- part 2
@dataclass(frozen=True, slots=True)
class Coalescing:
    """Outcome of one simulated run of the dashboard worker's coalescing."""

    zipf_s: float
    updates: int
    seconds: float
    pushes: int
    values: int
    max_values: int
    keys_seen: int
    top1_share: float  # share of updates on the hottest 1 % of keys
    cpu_s: float

    @property
    def ratio(self) -> float:
        return self.updates / self.values


def coalescing(keys: Sequence[Key], seconds: int, zipf_s: float, seed: int) -> Coalescing:
    """Simulate ``seconds`` of RATE updates/s into LatestValues, pushing every 0.5 s."""
    updates = seconds * RATE
    order = draw(len(keys), updates, zipf_s, seed)
    counts: dict[int, int] = {}
    for k in order:
        counts[k] = counts.get(k, 0) + 1
    hottest = sorted(counts.values(), reverse=True)[: max(1, len(keys) // 100)]
    latest = LatestValues()
    topic = topic_names(PREFIX)["metrics"]
    offsets = [0] * PARTITIONS
    per_push = int(PUSH_INTERVAL_S * RATE)
    pushes = values = biggest = 0
    start = time.process_time()
    for first in range(0, updates, per_push):  # one push interval of updates, then the push
        for n in range(first, min(first + per_push, updates)):
            key = keys[order[n]]
            p = key.partition
            latest.offer(build(key, n), topic, p, offsets[p])
            offsets[p] += 1
        in_push = 0
        while (batch := latest.take_batch(MAX_BATCH)) is not None:
            latest.acknowledged(batch.batch_id)
            in_push += len(batch.values)
        latest.offsets.committable()
        if in_push:
            pushes += 1  # one push interval's values; > 5,000 values would be several POSTs
            values += in_push
            biggest = max(biggest, in_push)
    cpu = time.process_time() - start
    return Coalescing(
        zipf_s, updates, seconds, pushes, values, biggest, len(latest),
        sum(hottest) / updates, cpu,
    )  # fmt: skip


# ----------------------------------------------------------------------------- report
def pin_one_cpu() -> str:
    """Pin this process to one CPU (the last usable one); returns a description."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def environment(pinned: str) -> str:
    cpus = os.cpu_count()
    one, five, _ = os.getloadavg()
    return (
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {cpus} CPUs, {pinned}, "
        f"load average {one:.2f} (1 min) {five:.2f} (5 min) at start\n"
        f"fastavro {metadata.version('fastavro')}, orjson {metadata.version('orjson')}"
    )


def report_throughput(results: dict[str, list[float]], values: Sequence[Encoded]) -> str:
    size = sum(len(v.value) for v in values) / len(values)
    best_decode = max(results["today: decode"])
    lines = [
        f"1. worker CPU throughput, one core, no Kafka: {len(values):,} framed Avro values "
        f"(mean {size:.0f} bytes), best of {len(results['today: decode'])} rounds",
        f"   {'path':<28} {'records/s':>11} {'µs/record':>10} {'x today':>8}   range records/s",
    ]
    for name, runs in results.items():
        best = max(runs)
        lines.append(
            f"   {name:<28} {best:>11,.0f} {1e6 / best:>10.2f} {best / best_decode:>8.2f}   "
            f"{min(runs):,.0f} .. {best:,.0f}"
        )
    return "\n".join(lines)


def report_coalescing(runs: Sequence[Coalescing], keys: int) -> str:
    lines = [
        f"2. coalescing at {RATE:,} updates/s over {keys:,} keys, push every "
        f"{PUSH_INTERVAL_S} s (max_batch {MAX_BATCH:,})",
        f"   {'distribution':<14} {'sim s':>5} {'top 1% keys':>11} {'keys seen':>9} "
        f"{'pushes/s':>9} {'values/push':>11} {'max':>6} {'values/s':>9} "
        f"{'updates/value':>13} {'CPU s':>6}",
    ]
    for r in runs:
        name = "uniform" if r.zipf_s == 0 else f"zipf s={r.zipf_s:g}"
        lines.append(
            f"   {name:<14} {r.seconds:>5.0f} {r.top1_share:>10.1%} {r.keys_seen:>9,} "
            f"{r.pushes / r.seconds:>9.2f} {r.values / r.pushes:>11,.0f} {r.max_values:>6,} "
            f"{r.values / r.seconds:>9,.0f} {r.ratio:>13.2f} {r.cpu_s:>6.1f}"
        )
    lines.append(
        "   (CPU s: building the records + offer + take_batch/ack/commit for the whole run; "
        "no decode, no HTTP)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the stream, measure parts 1 and 2, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=40_000, help="records per path (part 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per path (part 1)")
    parser.add_argument("--seconds", type=int, default=30, help="simulated seconds (part 2)")
    parser.add_argument("--queues", type=int, default=200, help="queues (x 32 keys each)")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of part 2")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kafka-records", type=int, default=200_000, help="part 3 (0: skip)")
    parser.add_argument("--kafka-rounds", type=int, default=1, help="rounds of part 3")
    parser.add_argument("--parts", default="123", help="which parts to run (default 123)")
    args = parser.parse_args(argv)
    print(environment(pin_one_cpu()), flush=True)
    keys = key_space(args.queues)

    if "1" in args.parts:
        records = stream(keys, draw(len(keys), args.records, args.zipf, args.seed))
        values = encode(records)
        for decode in (today_decode(), compiled_decode()):
            for value, (_, record) in zip(values[:1_000], records, strict=False):
                assert decode(value.value) == record
        del records
        print(report_throughput(throughput(values, args.rounds), values), flush=True)
        del values

    if "2" in args.parts:
        runs = [
            coalescing(keys, args.seconds, args.zipf, args.seed),
            coalescing(keys, max(1, args.seconds // 3), 0.0, args.seed),  # shorter: same ratio
        ]
        print(report_coalescing(runs, len(keys)), flush=True)

    if "3" in args.parts and args.kafka_records:
        order = draw(len(keys), args.kafka_records, args.zipf, args.seed)
        framed = [(v.value, v.partition) for v in encode(stream(keys, order))]
        print(report_kafka(measure_kafka(framed, args.kafka_rounds)), flush=True)
        one, five, _ = os.getloadavg()
        print(f"load average at the end: {one:.2f} (1 min) {five:.2f} (5 min)", flush=True)


if __name__ == "__main__":
    main()
