"""Service benchmark, black box: a fake Genesys floods one channel; ``pipeline produce`` vs a
seed-style client, frames/s; then latency at paced rates and the producer's memory.

Starts the local broker + registry (:class:`~pipeline.local.stack.LocalStack`), the fake Genesys
of ``bench/fake_genesys.py`` (its own process: not the emulator, just the routes the producer
calls at start, and a WebSocket), and the real ``pipeline produce`` as a process on a
subscription file written here (one subscription of ``--topics`` queue ids, topic
``observations``: one channel). Everything is stopped at the end, also on error or Ctrl-C.

1. Throughput. The fake writes ``--frames`` aggregate frames (8 metrics each; the producer
   writes 10 records per frame, with the 2 derived KPIs, to ``.metrics`` and again to
   ``.current``: 20) as fast as the socket takes them. Timed from the flood request to the
   moment the producer's ``/metrics`` (``genesys_pipeline_records_delivered_total``, polled every
   0.1 s: a scrape costs the producer's loop about a millisecond) counts every record
   acknowledged. Then the seed-style client (below, in this file: ``json.loads``, a pydantic
   model of the frame, a dict per metric, ``json.dumps``, plain confluent-kafka ``produce``
   with ``acks=all`` and idempotence, ``poll(0)`` per frame; 8 records per frame) reads the
   same flood from the same fake into the same broker, timed from the flood request to its
   last acknowledgement. Both compared in frames/s.
2. Latency. The fake paces frames at 500, 2,000 and 10,000 frames/s for ``--pace-s`` seconds
   each. p50/p99 of frame received → its last record acknowledged come from the producer's
   own sampled histogram (``genesys_pipeline_frame_ack_latency_seconds``, one frame in 16; the
   difference of two scrapes, interpolated inside a bucket as ``histogram_quantile`` does).
   "Received" is when the producer takes the frame from its socket: above the rate it keeps
   up with, frames queue in the socket before that, so read the ``acked`` rate next to it.
   (A consumer is no judge here: a fetch from the local Tansu broker adds ~50 ms.)
3. Memory. RSS of the producer (``/proc/<pid>/status`` VmRSS) live on ``--small-topics``
   topics and, a second process, on ``--topics`` topics, before the flood (per 1,000
   subscribed topics), and its peak during the flood next to the peak of records in flight
   (``genesys_pipeline_buffer_depth``). The broker keeps up, so few records are in flight and the
   peak is the flood's socket and loop buffers; the records themselves are librdkafka's
   (~0.6 KiB each with headers and librdkafka's own struct: ~6 MiB per 10,000, an estimate
   from sizes), with no Python object per record.

``--profile FILE`` samples the producer with py-spy during the flood (collapsed stacks).
Every line of results carries the load average: other work on the machine shows up here
first. Run: ``.venv/bin/python bench/bench_service.py`` (about a minute; ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import websockets
from bench_hot_path import Frame
from confluent_kafka import KafkaError, Message, Producer
from fake_genesys import queue_ids

from pipeline.local.stack import LocalStack

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
RECORDS_PER_FRAME = 20  # 8 metrics + 2 derived KPIs, to .metrics and .current
SEED_RECORDS_PER_FRAME = 8
DELIVERED = re.compile(r"^genesys_pipeline_records_delivered_total (\S+)$", re.M)
LATENCY = re.compile(
    r'^genesys_pipeline_frame_ack_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M
)
IN_FLIGHT = re.compile(r"^genesys_pipeline_buffer_depth (\S+)$", re.M)
PACES = (500, 2_000, 10_000)


def load() -> str:
    """The load average, for every line of results."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until(check: object, timeout_s: float, what: str) -> None:
    """Poll ``check()`` until true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- the fake
@dataclass
class Fake:
    """The fake Genesys process."""

    url: str
    proc: subprocess.Popen[str]

    def state(self) -> dict[str, int]:
        """Sockets connected and topics subscribed."""
        answer: dict[str, int] = httpx.get(f"{self.url}/__bench/state").json()
        return answer

    def flood(self, frames: int, rate: float = 0) -> float:
        """Send ``frames`` frames (at ``rate``/s; 0: as fast as possible); seconds it took."""
        ask = {"frames": frames, "rate": rate}
        answer = httpx.post(f"{self.url}/__bench/flood", json=ask, timeout=600)
        return float(answer.json()["seconds"])

    def flood_async(self, frames: int, rate: float = 0) -> threading.Thread:
        """:meth:`flood` in a thread."""
        thread = threading.Thread(target=self.flood, args=(frames, rate), daemon=True)
        thread.start()
        return thread


def start_fake(stack: ExitStack) -> Fake:
    """Start ``fake_genesys.py`` and wait until it serves."""
    port = free_port()
    cmd = [sys.executable, str(HERE / "fake_genesys.py"), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stack.callback(_stop, proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("FAKE_GENESYS_URL="):
        raise RuntimeError(f"the fake Genesys did not start: {line!r}")
    return Fake(line.strip().split("=", 1)[1], proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- the producer
@dataclass
class ProducerRun:
    """One ``pipeline produce`` process."""

    proc: subprocess.Popen[str]
    ops: str

    def metrics(self, depth: bool = True) -> str:
        """``/metrics``, after ``/readyz`` (which refreshes the buffer-depth gauge) if ``depth``.

        A scrape costs the producer ~1 ms of its loop: the flood polls every 0.1 s.
        """
        if depth:
            httpx.get(f"{self.ops}/readyz")
        return httpx.get(f"{self.ops}/metrics").text

    def delivered(self, depth: bool = True) -> tuple[int, int]:
        """Records acknowledged, records in flight (0 unless ``depth``)."""
        text = self.metrics(depth)
        done = DELIVERED.search(text)
        flight = IN_FLIGHT.search(text)
        return (
            int(float(done.group(1))) if done else 0,
            int(float(flight.group(1))) if flight else 0,
        )


def start_producer(
    stack: ExitStack, workdir: Path, fake: Fake, env: dict[str, str], topics: int, tag: str
) -> ProducerRun:
    """Write the subscription file, start ``pipeline produce``, wait until it is live."""
    spec = workdir / f"subscription-{tag}.yaml"
    ids = ", ".join(f"{{id: {q}}}" for q in queue_ids(topics))
    spec.write_text(
        "version: 1\nsubscriptions:\n"
        f"  - name: bench\n    queues: [{ids}]\n    topics: [observations]\n"
    )
    port = free_port()
    run_env = {
        **env,
        "GENESYS_API_URL": fake.url,
        "PIPELINE_OPS_PORT": str(port),
        "PIPELINE_OPS_HOST": "127.0.0.1",
    }
    out = (workdir / f"producer-{tag}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "produce", str(spec)],
        env=run_env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack.callback(_stop, proc)
    run = ProducerRun(proc, f"http://127.0.0.1:{port}")

    def live() -> bool:
        if proc.poll() is not None:
            out.flush()
            log = Path(out.name).read_text()[-3000:]
            raise RuntimeError(f"pipeline produce exited {proc.returncode}:\n{log}")
        state = fake.state()
        if state["sockets"] < 1 or state["topics"] != topics:
            return False
        try:
            return httpx.get(f"{run.ops}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(live, 60, "the producer to stream")
    return run


def stop_producer(run: ProducerRun, fake: Fake) -> None:
    """SIGTERM, wait for the exit, and for the fake to see the socket go."""
    _stop(run.proc)
    wait_until(lambda: fake.state()["sockets"] == 0, 30, "the producer's socket to close")


def producer_flood(
    run: ProducerRun, fake: Fake, frames: int, profile: Path | None = None
) -> tuple[float, float, int]:
    """Flood; seconds until every record is acknowledged, peak RSS (MiB), peak in flight.

    With ``profile``, py-spy samples the producer during the flood (collapsed stacks there).
    """
    base, _ = run.delivered()
    if profile is not None:
        spy = subprocess.Popen(
            [
                *(
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(run.proc.pid),
                ),
                *("--rate", "200", "--nonblocking", "--format", "raw", "-o", str(profile)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)  # attached
    try:
        return _flood(run, fake, frames, base)
    finally:
        if profile is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)


def _flood(run: ProducerRun, fake: Fake, frames: int, base: int) -> tuple[float, float, int]:
    target = base + frames * RECORDS_PER_FRAME
    peak_rss, peak_flight = rss_mb(run.proc.pid), 0
    started = time.perf_counter()
    fake.flood_async(frames)
    for polls in itertools.count():
        done, flight = run.delivered(depth=polls % 5 == 0)
        peak_rss, peak_flight = max(peak_rss, rss_mb(run.proc.pid)), max(peak_flight, flight)
        if done >= target:
            return time.perf_counter() - started, peak_rss, peak_flight
        if time.perf_counter() - started > 300:
            raise TimeoutError(f"{done - base} of {target - base} records acknowledged")
        time.sleep(0.1)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- latency
def latency_buckets(text: str) -> list[tuple[float, float]]:
    """``(le, cumulative count)`` of the producer's frame → acknowledgement histogram."""
    return [(float(le), float(n)) for le, n in LATENCY.findall(text) if le != "+Inf"]


def quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    """The ``q`` quantile (ms) of the observations between two scrapes, interpolated linearly
    inside its bucket (as Prometheus' ``histogram_quantile`` does)."""
    counts = [(le, n - m) for (le, n), (_, m) in zip(after, before, strict=True)]
    total = counts[-1][1]
    if not total:
        return float("nan")
    rank, low, below = q * total, 0.0, 0.0
    for le, n in counts:
        if n >= rank:
            inside = (rank - below) / (n - below) if n > below else 1.0
            return (low + (le - low) * inside) * 1000
        low, below = le, n
    return float("inf")


def producer_latency(run: ProducerRun, fake: Fake, rate: int, seconds: float) -> str:
    """Paced flood at ``rate`` frames/s: p50/p99 of frame received → acknowledged."""
    before = latency_buckets(run.metrics())
    base, _ = run.delivered()
    frames = int(rate * seconds)
    started = time.perf_counter()
    sent_in = fake.flood(frames, rate)
    target = base + frames * RECORDS_PER_FRAME
    wait_until(lambda: run.delivered()[0] >= target, 300, "the paced frames")
    kept = frames / (time.perf_counter() - started)
    after = latency_buckets(run.metrics())
    samples = after[-1][1] - before[-1][1]
    return (
        f"   {rate:6,} frames/s (sent {frames / sent_in:6,.0f}/s, acked {kept:6,.0f}/s)  "
        f"p50 {quantile(before, after, 0.5):6.1f} ms  p99 {quantile(before, after, 0.99):7.1f} ms"
        f"  ({samples:,.0f} sampled frames; {load()})"
    )


# ----------------------------------------------------------------------------- seed client
async def seed_client(fake: Fake, bootstrap: str, topic: str, topics: int, frames: int) -> float:
    """The seed-style client: channel, subscribe, read ``frames`` frames; seconds to last ack."""
    async with httpx.AsyncClient(base_url=fake.url) as http:
        await http.post("/oauth/token")
        channel = (await http.post("/api/v2/notifications/channels")).json()
        subs = [{"id": f"v2.analytics.queues.{q}.observations"} for q in queue_ids(topics)]
        await http.put(f"/api/v2/notifications/channels/{channel['id']}/subscriptions", json=subs)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked = [0]

    def delivered(err: KafkaError | None, _: Message) -> None:
        if err is None:
            acked[0] += 1

    async with websockets.connect(channel["connectUri"], max_size=None) as ws:
        flood = asyncio.create_task(asyncio.to_thread(fake.flood, frames))
        started, received = time.perf_counter(), 0
        while received < frames:
            raw = await ws.recv()
            doc = Frame.model_validate(json.loads(raw))
            if doc.topicName == "channel.metadata":
                continue
            received += 1
            queue = doc.topicName.split(".")[3]
            for datum in doc.eventBody.data:
                for m in datum.metrics:
                    record = {
                        "event_id": str(uuid.uuid4()),
                        "source_topic": doc.topicName,
                        "entity_id": queue,
                        "metric": m.metric,
                        "media_type": doc.eventBody.group.get("mediaType"),
                        "interval": datum.interval,
                        "stats": m.stats,
                        "ingest_time": int(time.time() * 1000),
                    }
                    while True:
                        try:
                            producer.produce(
                                topic, json.dumps(record).encode(), queue, on_delivery=delivered
                            )
                            break
                        except BufferError:
                            producer.poll(0.05)
            producer.poll(0)
        await asyncio.to_thread(producer.flush, 60)
        took = time.perf_counter() - started
        await flood
    assert acked[0] == frames * SEED_RECORDS_PER_FRAME, acked[0]
    return took


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=15_000)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--small-topics", type=int, default=10)
    parser.add_argument("--pace-s", type=float, default=2.0)
    parser.add_argument(
        "--profile", type=Path, help="py-spy the producer during the flood (collapsed stacks)"
    )
    parser.add_argument("--no-seed", action="store_true", help="skip the seed-style client")
    parser.add_argument("--no-latency", action="store_true", help="skip the paced rates")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        endpoints = stack.enter_context(LocalStack(workdir))
        fake = start_fake(stack)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "GENESYS_CLIENT_ID": "bench",
            "GENESYS_CLIENT_SECRET": "bench-secret",
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.bootstrap_servers,
            "SCHEMA_REGISTRY_URL": endpoints.schema_registry_url,
            "PIPELINE_TOPIC_PREFIX": prefix,
            "PIPELINE_AUTO_REGISTER": "true",
            "LOG_LEVEL": "WARNING",
        }
        small = start_producer(stack, workdir, fake, env, args.small_topics, "small")
        time.sleep(1)
        rss_small = rss_mb(small.proc.pid)
        stop_producer(small, fake)

        run = start_producer(stack, workdir, fake, env, args.topics, "flood")
        time.sleep(1)
        rss_live = rss_mb(run.proc.pid)
        took, rss_peak, flight_peak = producer_flood(run, fake, args.frames, args.profile)
        service_fps = args.frames / took
        print(f"\n1. throughput: {args.frames:,} aggregate frames (8 metrics) on one channel")
        print(
            f"   pipeline produce   {service_fps:8,.0f} frames/s  "
            f"{service_fps * RECORDS_PER_FRAME:9,.0f} records/s   ({load()})"
        )
        print(f"\n2. latency: frame received -> acknowledged, {args.pace_s:g} s per rate")
        for rate in () if args.no_latency else PACES:
            print(producer_latency(run, fake, rate, args.pace_s))
        stop_producer(run, fake)

        if not args.no_seed:
            seed_topic = f"{prefix}.seed"
            seed_took = asyncio.run(
                seed_client(fake, endpoints.bootstrap_servers, seed_topic, args.topics, args.frames)
            )
            seed_fps = args.frames / seed_took
            print(f"\n1. throughput, the seed-style client on the same flood ({load()})")
            print(
                f"   seed-style client  {seed_fps:8,.0f} frames/s  "
                f"{seed_fps * SEED_RECORDS_PER_FRAME:9,.0f} records/s"
            )
            ratio = service_fps / seed_fps
            verdict = "met" if ratio >= 2 else "NOT met"
            print(f"   ratio pipeline produce / seed-style: {ratio:.2f}x (target >= 2x: {verdict})")
        per_topic = (rss_live - rss_small) / (args.topics - args.small_topics) * 1000
        print(f"\n3. memory (RSS of pipeline produce; {load()})")
        print(f"   live, {args.small_topics:,} topics: {rss_small:6.1f} MiB")
        print(
            f"   live, {args.topics:,} topics: {rss_live:6.1f} MiB  "
            f"-> {per_topic:5.1f} MiB per 1,000 topics"
        )
        print(
            f"   flood peak: {rss_peak:6.1f} MiB (+{rss_peak - rss_live:.0f}) at up to "
            f"{flight_peak:,} records in flight: mostly socket and loop buffers of a flood the "
            "producer cannot keep up with, not records (~0.6 KiB each in librdkafka, estimated)"
        )


if __name__ == "__main__":
    main()
