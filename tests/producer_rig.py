"""The producer end to end for the fault matrix: emulator → ProducerService → Kafka, and the
accounting of every frame the emulator sent.

:func:`start_rig` starts an emulator-fed :class:`~pipeline.services.producer.ProducerService`
on its own topic prefix; :meth:`Rig.finish` stops it, reads its topics back with a plain
confluent-kafka consumer and AvroDeserializer, and :meth:`Outcome.account` checks the rule
of the fault matrix: every intact event frame the emulator logged is in Kafka (by its
correlation id, value for value), or inside an audited gap (``gap.closed`` on its channel)
that a ``backfill.finished`` (``gap``) followed; every broken frame is a dead letter; a
record in Kafka twice is the same record (same event id, same values).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.subscription.spec import load_spec
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.http.frames import SentFrame
from pipeline.emulator.thread import EmulatorThread
from pipeline.genesys.stream import ChannelStream
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services.producer import ProducerConfig, ProducerService
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings
from tests.conftest import seconds
from tests.polling import until
from tests.tcp_proxy import TcpProxy, proxied_local_broker

__all__ = [
    "EMULATOR",
    "FAST",
    "PARTITIONS",
    "SLACK_S",
    "Outcome",
    "Rig",
    "Tally",
    "proxied_broker",
    "read_topics",
    "spec_file",
    "start_rig",
]

FAST = SessionSettings(
    heartbeat_timeout_s=1.5,
    ping_timeout_s=0.5,
    backoff_base_s=0.05,
    backoff_cap_s=0.3,
    call_timeout_s=5.0,
)
"""Session timers ~50-100× shorter than production, so every recovery fits in seconds."""
PARTITIONS = 3
SLACK_S = 0.5
"""A frame in flight when a socket dies was sent just before the client's last frame arrived;
this much slack covers loopback latency between the emulator's clock and the producer's."""
EMULATOR: dict[str, Any] = {
    "queues": 4, "agents": 24, "speed": 60.0, "frame_interval_s": 0.2, "heartbeat_s": 0.5,
}  # fmt: skip
"""The emulator every row starts from: a small center, fast, with heartbeats every 0.5 s."""


def spec_file(tmp_path: Path, queue_names: list[str]) -> Path:
    """Queue observations of ``queue_names``, presence and routing status of the first's members."""
    path = tmp_path / "subscription.yaml"
    names = ", ".join(f"{{name: {n}}}" for n in queue_names)
    path.write_text(
        "subscriptions:\n"
        f"  - name: queues\n    queues: [{names}]\n    topics: [observations]\n"
        f"  - name: agents\n    users: {{members_of_queues: [{{name: {queue_names[0]}}}]}}\n"
        "    topics: [presence, routingStatus]\n"
    )
    return path


Read = tuple[str | None, int, dict[str, Any]]


def read_topics(
    endpoints: Endpoints, topics: dict[str, int], idle_s: float = 1.0, min_s: float = 1.5
) -> dict[str, list[Read]]:
    """Every record of ``topics`` (name → partitions) from the beginning, until quiet for
    ``idle_s`` (and ``min_s`` after the start: the first fetch takes a moment)."""
    registry = SchemaRegistryClient({"url": endpoints.schema_registry_url})
    deserializer = AvroDeserializer(registry)
    consumer = Consumer(
        {"bootstrap.servers": endpoints.bootstrap_servers, "group.id": f"reader-{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(t, p, -2) for t, n in topics.items() for p in range(n)])
    out: dict[str, list[Read]] = {t: [] for t in topics}
    started = idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_s or time.monotonic() - started < min_s:
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            idle_since = time.monotonic()
            topic = msg.topic()
            value = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
            key = msg.key()
            out[topic].append((key.decode() if key else None, msg.partition(), value))
    finally:
        consumer.close()
        registry.close()
    return out


@dataclass(frozen=True)
class Tally:
    """How the frames were accounted for."""

    in_kafka: int
    in_gaps: int
    dead_letters: int
    gaps: int


@dataclass
class Outcome:
    """What a finished producer left in Kafka, and what the emulator sent."""

    stopped_at: float
    frames: list[SentFrame]
    metrics: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    dlq: list[dict[str, Any]]

    def audits(self, kind: str) -> list[dict[str, Any]]:
        """The details of every audit record of ``kind``, oldest first."""
        found = sorted((v for v in self.audit if v["kind"] == kind), key=lambda v: v["at"])
        return [orjson.loads(v["details_json"]) | {"_at": v["at"].timestamp()} for v in found]

    def account(self) -> Tally:
        """Check the accounting rule (module docstring); returns how frames were covered."""
        sent = [
            f for f in self.frames
            if f.kind == "event" and f.wall < self.stopped_at - SLACK_S
        ]  # fmt: skip
        by_correlation: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for value in self.metrics:
            if value["correlation_id"]:
                by_correlation[value["correlation_id"]].append(value)
        gaps = [
            (v["channel_id"], d["started_at_ms"] / 1000, d["ended_at_ms"] / 1000)
            for v in self.audit
            if v["kind"] == "gap.closed" and (d := orjson.loads(v["details_json"]))
        ]
        backfilled = [d["_at"] for d in self.audits("backfill.finished") if d["backfill"] == "gap"]
        in_kafka = in_gaps = 0
        lost: list[SentFrame] = []
        for frame in sent:
            if not frame.intact:
                continue
            records = by_correlation.get(frame.correlation_id or "")
            if records:
                if frame.text is not None:
                    _check_values(orjson.loads(frame.text), records)
                in_kafka += 1
                continue
            ends = [
                end
                for channel, start, end in gaps
                if channel == frame.channel_id and start - SLACK_S <= frame.wall <= end
            ]
            if ends and any(at >= min(ends) for at in backfilled):
                in_gaps += 1
                continue
            lost.append(frame)
        assert lost == [], f"{len(lost)} of {len(sent)} frames lost: {lost[:3]}"
        broken = [f for f in self.frames if f.kind == "event" and not f.intact]
        parse_dead = [d for d in self.dlq if d["stage"] == "parse"]
        assert len(parse_dead) == len(broken), (len(parse_dead), len(broken))
        _check_duplicates(self.metrics)
        return Tally(in_kafka, in_gaps, len(parse_dead), len(gaps))


def _check_values(frame: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Each metric datum of an analytics frame is a record with the same stats."""
    body = frame["eventBody"]
    if "data" not in body:
        return  # presence / routing status: their state records exist
    media = body["group"].get("mediaType")
    index = {(r["metric"], r["qualifier"], r["media_type"]): r for r in records if not r["derived"]}
    for element in body["data"]:
        for datum in element["metrics"]:
            record = index[(datum["metric"], datum.get("qualifier"), media)]
            for stat in ("count", "sum", "ratio"):
                if stat in datum["stats"]:
                    assert record[stat] == datum["stats"][stat], (datum, record)


# What the event id leaves out on purpose (core/contract/identity.py): the same datum seen
# live and in a backfill shares its id.
_NOT_IDENTITY = frozenset({"backfill", "ingest_time", "correlation_id"})


def _check_duplicates(metrics: list[dict[str, Any]]) -> None:
    """A record in Kafka more than once is the same datum: consumers drop it by event id."""
    by_id: dict[str, dict[str, Any]] = {}
    for value in metrics:
        first = by_id.setdefault(value["event_id"], value)
        ignored = _NOT_IDENTITY | ({"event_time"} if value["interval_start"] else set())
        diff = {k: (first[k], value[k]) for k in value if k not in ignored and first[k] != value[k]}
        assert not diff, f"two different records share event id {value['event_id']}: {diff}"


@dataclass
class Rig:
    """A running producer fed by an emulator."""

    emulator: EmulatorThread
    endpoints: Endpoints
    config: ProducerConfig
    service: ProducerService
    stop: asyncio.Event
    task: asyncio.Task[None]
    started_at: float = field(default_factory=time.time)

    @property
    def prefix(self) -> str:
        """The topic prefix of this run."""
        return self.config.settings.topic_prefix

    @property
    def stream(self) -> ChannelStream:
        """The shard's one channel stream."""
        (stream,) = self.service.streams
        return stream

    @property
    def channel_id(self) -> str:
        """The channel being streamed."""
        channel = self.stream.session.channel_id
        assert channel is not None
        return channel

    def is_live(self) -> bool:
        """True while the channel streams."""
        streams = self.service.streams
        return bool(streams) and all(s.session.state.name == "LIVE" for s in streams)

    async def live_with_events(self, more: int = 10, timeout_s: float = 20) -> None:
        """Wait until live and ``more`` stream events were handled after now."""
        before = self.service.metrics.frames.labels("stream")._value.get()
        await until(
            lambda: (
                self.is_live()
                and self.service.metrics.frames.labels("stream")._value.get() >= before + more
            ),
            seconds(timeout_s),
            message=f"live, with {more} more stream events",
        )

    async def one_more_gap(self, timeout_s: float = 20) -> None:
        """Wait until a gap more than now was recorded and the channel is live again."""
        before = self.service.gaps
        await until(
            lambda: self.service.gaps > before and self.is_live(),
            seconds(timeout_s),
            message="one more gap, then live",
        )

    async def finish(self) -> Outcome:
        """Stop the producer, read its topics, and return what it left."""
        self.stop.set()
        stopped_at = time.time()
        await asyncio.wait_for(self.task, seconds(30))
        return await self.outcome(stopped_at)

    async def outcome(self, stopped_at: float) -> Outcome:
        """What the producer left in Kafka; frames sent from ``stopped_at`` on do not count."""
        topics = {f"{self.prefix}.metrics": PARTITIONS, f"{self.prefix}.audit": 1}
        topics[f"{self.prefix}.dlq"] = 1
        read = await asyncio.to_thread(read_topics, self.endpoints, topics)
        assert self.emulator.emulator is not None
        return Outcome(
            stopped_at,
            self.emulator.emulator.frames.frames(),
            [v for _, _, v in read[f"{self.prefix}.metrics"]],
            [v for _, _, v in read[f"{self.prefix}.audit"]],
            [v for _, _, v in read[f"{self.prefix}.dlq"]],
        )


def producer_config(
    emulator: EmulatorThread,
    endpoints: Endpoints,
    tmp_path: Path,
    *,
    kafka: dict[str, Any] | None = None,
    registry: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    session: SessionSettings = FAST,
) -> ProducerConfig:
    """The configuration of a producer streaming four queues and one queue's agents."""
    assert emulator.emulator is not None
    names = [q.name for q in emulator.emulator.center.queues[:4]]
    return ProducerConfig(
        load_spec(spec_file(tmp_path, names)),
        GenesysSettings(
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,  # type: ignore[arg-type]
            api_url=emulator.base_url,
        ),
        KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers, **(kafka or {})),
        RegistrySettings(**{"url": endpoints.schema_registry_url, **(registry or {})}),
        ProducerSettings(
            topic_prefix=f"t{uuid.uuid4().hex[:8]}",
            partitions=PARTITIONS,
            ops_port=0,
            ops_host="127.0.0.1",
            heartbeat_s=0.5,
            **(settings or {}),
        ),
        session=session,
    )


async def start_rig(
    emulator_factory: Callable[..., EmulatorThread],
    endpoints: Endpoints,
    tmp_path: Path,
    *,
    emulator: dict[str, Any] | None = None,
    wait_live: bool = True,
    **options: Any,
) -> Rig:
    """Start an emulator and a producer on a fresh prefix (contract registered first).

    Args:
        emulator_factory: the fixture.
        endpoints: Kafka and the registry.
        tmp_path: for the subscription file.
        emulator: emulator settings on top of :data:`EMULATOR`.
        wait_live: wait until the channel streams and 10 events were handled.
        **options: :func:`producer_config` keywords.
    """
    thread = emulator_factory(**{**EMULATOR, "keep_frame_text": True, **(emulator or {})})
    config = producer_config(thread, endpoints, tmp_path, **options)
    await asyncio.to_thread(
        register_contract, endpoints.schema_registry_url, config.settings.topic_prefix
    )
    service = ProducerService(config)
    stop = asyncio.Event()
    rig = Rig(thread, endpoints, config, service, stop, asyncio.create_task(service.run(stop)))
    if wait_live:
        await rig.live_with_events()
    return rig


@contextlib.asynccontextmanager
async def proxied_broker(workdir: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A private broker that advertises a proxy in front of it; yields (bootstrap, proxy)."""
    async with proxied_local_broker(workdir) as (_, proxy):
        yield f"127.0.0.1:{proxy.listen_port}", proxy
