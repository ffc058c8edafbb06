"""The producer service: validate → verify metric availability → stream → map → publish.

Wiring only: the Genesys half is ``genesys/stream.py`` over the pure session (its channels run
under ``genesys/supervisor.py``), mapping and encoding are ``core/contract/mapping.py`` and
``core/contract/wire.py`` (via ``kafka/outbox.py``, written by ``services/producer_sink.py``),
delivery is ``kafka/producer.py``, the producer's own facts queue in
``services/producer_facts.py``. This module connects them,
keeps the audit trail, and serves ``/metrics``, ``/healthz`` and ``/readyz`` (semantics in
``services/ops.py``; degradation in ``services/producer_health.py``).

Start-up refuses to run, with a clear message, when the schema registry does not hold exactly
this build's contract (``pipeline schemas register`` fixes it) — unless ``auto_register`` is
on (local development). A registry that does not answer (down, hung, 5xx) is not a refusal:
the producer logs it and tries again with backoff, alive (``/healthz``) but not ready, until
the registry answers or it is stopped. Schema ids are resolved once, at start: a registry
that goes away later does not matter to a running producer.

Failure rules (no crash loop, no silent loss, no unbounded memory, no hang):

- nothing is dropped while Kafka is unreachable: the publisher keeps every record and
  retries; the stream slows down (backpressure), and a hand-off blocked longer than
  ``publish_stall_s`` becomes a gap of the Genesys stream, backfilled once Kafka is back;
- a value that cannot be written goes to the DLQ: unparseable frames (``parse``), unmappable
  events (``map``), numbers the Avro schema cannot carry (``encode``), records Kafka refuses
  (``publish``); dead letters keep at most ``max_dead_letter_bytes`` of raw bytes;
- a channel stream that crashes is restarted with backoff and counted
  (``channel.restarted``); one that fails for good (refused credentials, permissions) ends
  the service with :class:`~pipeline.errors.ChannelFailedError`; a publisher whose poll loop
  died ends it with :class:`~pipeline.errors.PublishError`: never exit 0 after a crash;
- shutdown takes at most ``shutdown_timeout_s``: a quarter for the channels to stop, the rest
  for the audit facts and the Kafka flush; what Kafka did not take by then is logged.

Restart after a kill: nothing is persisted locally. A restarted producer makes new channels,
and their ``initial`` backfill writes a snapshot of every subscribed topic's current state, so
observations and states are whole again; aggregate intervals are re-sent from their interval
totals. What consumers see of the down time is the audit trail: the last
``producer.heartbeat`` of the instance, then ``subscription.validated`` and
``backfill.finished`` (``initial``) of the new run; changes that happened and were undone
in between are not recoverable (Genesys keeps no notification history).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TypeVar

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.events import StreamEvent
from pipeline.core.genesys.session import SessionState
from pipeline.core.genesys.session_settings import SessionSettings
from pipeline.core.http_policy import Backoff
from pipeline.core.subscription.availability import AvailabilityReport
from pipeline.core.subscription.selection import record_filter
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.errors import PublishError, RegistryUnavailableError
from pipeline.genesys.client import genesys_client
from pipeline.genesys.directory import check_availability
from pipeline.genesys.stream import ChannelStream
from pipeline.genesys.supervisor import run_streams
from pipeline.kafka.admin import TopicSpec, contract_topic_specs, ensure_topics
from pipeline.kafka.connection import check_connection
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.producer import KafkaPublisher
from pipeline.kafka.registry import register_contract, require_contract
from pipeline.kafka.schemas import PRODUCER_TOPICS
from pipeline.kafka.security import librdkafka_config
from pipeline.services.ops import OpsServer
from pipeline.services.planning import resolve_plan
from pipeline.services.producer_facts import FactQueue, ProducerHooks
from pipeline.services.producer_health import ProducerHealth
from pipeline.services.producer_metrics import ProducerMetrics
from pipeline.services.producer_sink import EventWriter
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings

__all__ = ["REGISTRY_BACKOFF", "ProducerConfig", "ProducerService", "ProducerStats"]

log = logging.getLogger(__name__)

T = TypeVar("T")

REGISTRY_BACKOFF = Backoff(base_s=1.0, cap_s=30.0)
"""Delays between attempts to read the contract from a registry that does not answer."""


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """Everything one producer instance needs."""

    spec: SubscriptionSpec
    genesys: GenesysSettings
    kafka: KafkaSettings
    registry: RegistrySettings
    settings: ProducerSettings
    shard: int = 0
    shards: int = 1
    session: SessionSettings | None = None

    @property
    def instance(self) -> str:
        """This instance's name in records and audit."""
        return self.settings.instance or f"producer-{self.shard}"

    def session_settings(self) -> SessionSettings:
        """The channel sessions' settings, with the producer's stall threshold."""
        return replace(
            self.session or SessionSettings(), publish_stall_s=self.settings.publish_stall_s
        )


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """Counts since start, for summaries and health decisions."""

    frames: int
    delivered: int
    in_flight: int
    dead_letters: int
    gaps: int
    channels: int
    channels_live: int


class ProducerService:
    """One producer instance (one shard of the subscription plan).

    Args:
        config: what to stream and where to publish.
    """

    def __init__(self, config: ProducerConfig) -> None:
        self.config = config
        self.metrics = ProducerMetrics()
        self.metrics.topics_rejected.set_function(self._topics_rejected)
        self._facts = FactQueue(config.settings.max_queued_facts, self.metrics)
        self._hooks = ProducerHooks(self.metrics, self._facts)
        self._health = ProducerHealth(self.metrics, self._hooks, self._facts)
        self._streams: list[ChannelStream] = []
        self.availability: AvailabilityReport | None = None
        """The start-up availability check's answer (None until it ran)."""
        self._outbox: Outbox | None = None
        self._publisher: KafkaPublisher | None = None
        self._writer: EventWriter | None = None
        self._not_ready = ["schema contract not checked yet"]
        self._restarts: dict[int, int] = {}
        self.ops: OpsServer | None = None

    @property
    def streams(self) -> tuple[ChannelStream, ...]:
        """The shard's channel streams (empty until the plan is resolved)."""
        return tuple(self._streams)

    @property
    def frames(self) -> int:
        """Genesys events (stream and backfill) handled since start."""
        return 0 if self._writer is None else self._writer.frames

    @property
    def dead_letters(self) -> int:
        """Dead letters written since start."""
        return 0 if self._writer is None else self._writer.dead_letters

    @property
    def gaps(self) -> int:
        """Stream gaps recorded since start."""
        return 0 if self._writer is None else self._writer.gaps

    def stats(self) -> ProducerStats:
        """What the service did so far."""
        publisher = self._publisher
        return ProducerStats(
            frames=self.frames,
            delivered=0 if publisher is None else publisher.delivered,
            in_flight=0 if publisher is None else publisher.in_flight,
            dead_letters=self.dead_letters,
            gaps=self.gaps,
            channels=len(self._streams),
            channels_live=sum(s.session.state is SessionState.LIVE for s in self._streams),
        )

    def _topics_rejected(self) -> float:
        return float(sum(len(s.session.rejected_topics) for s in self._streams))

    def readiness(self) -> list[str]:
        """Why the service is not ready (empty once its own start-up is done).

        Ready means: settings and subscription valid, contract checked, topics ensured,
        publisher started. Genesys or Kafka going away later is degradation
        (``services/producer_health.py``), not unreadiness: a rollout never waits for them.
        """
        return list(self._not_ready)

    def liveness(self) -> list[str]:
        """What essential task died (empty: alive): the Kafka publisher's poll loop."""
        failure = None if self._publisher is None else self._publisher.failure
        return [] if failure is None else [f"the Kafka publisher stopped: {failure!r}"]

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; flushes Kafka (within the shutdown deadline) before returning.

        Raises:
            SchemaError: the registry does not hold this build's contract.
            SubscriptionError: names the org does not have.
            AuthError: Genesys refused the credentials at start.
            ChannelFailedError: a channel failed for good while running.
            PublishError: the Kafka publisher stopped working.
        """
        cfg = self.config
        self.ops = OpsServer(
            self.metrics.registry,
            self.readiness,
            cfg.settings.ops_host,
            cfg.settings.ops_port,
            liveness=self.liveness,
        )
        await self.ops.start()
        deadline: list[float] = []  # set when the shutdown starts
        try:
            if await self._start_kafka(stop):
                await self._stream(stop, deadline)
        finally:
            await self._stop_kafka(deadline)
            await self.ops.aclose()
        failure = None if self._publisher is None else self._publisher.failure
        if failure is not None:
            raise PublishError(f"the Kafka publisher stopped: {failure!r}") from failure

    # ------------------------------------------------------------------ start

    async def _start_kafka(self, stop: asyncio.Event) -> bool:
        """Contract, topics, publisher; False when stopped before the registry answered."""
        cfg = self.config
        ids = await self._contract_ids(stop)
        if ids is None:
            return False
        self._outbox = Outbox(cfg.settings.topic_prefix, ids, cfg.instance)
        self._not_ready = ["topics not created yet"]
        specs = self._topic_specs(self._outbox)
        await asyncio.to_thread(check_connection, librdkafka_config(cfg.kafka))
        await asyncio.to_thread(ensure_topics, librdkafka_config(cfg.kafka), specs)
        self._publisher = KafkaPublisher(
            librdkafka_config(cfg.kafka, producer=True),
            max_in_flight=cfg.settings.max_in_flight,
            observer=self._hooks,
        )
        await self._publisher.start()
        self._writer = EventWriter(
            self._outbox,
            self._publisher,
            self.metrics,
            cfg.instance,
            cfg.settings.max_dead_letter_bytes,
        )
        self._not_ready = []
        return True

    async def _contract_ids(self, stop: asyncio.Event) -> dict[str, int] | None:
        """The schema ids, asking again with backoff while the registry does not answer."""
        cfg = self.config
        prefix, url = cfg.settings.topic_prefix, cfg.registry.url
        registry_config = cfg.registry.client_config()
        attempt = 0
        while True:
            try:
                if cfg.settings.auto_register:
                    await _unless_stopped(
                        stop,
                        asyncio.to_thread(
                            register_contract, url, prefix, client_config=registry_config
                        ),
                    )
                return await _unless_stopped(
                    stop,
                    asyncio.to_thread(
                        require_contract,
                        url,
                        prefix,
                        client_config=registry_config,
                        suffixes=PRODUCER_TOPICS,
                    ),
                )
            except RegistryUnavailableError as exc:
                delay = REGISTRY_BACKOFF.delay(attempt, None, random.random)
                attempt += 1
                self._not_ready = [f"waiting for the schema registry: {exc}"]
                log.warning("%s; trying again in %.1f s (attempt %d)", exc, delay, attempt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            except _Stopped:
                return None
            if stop.is_set():
                return None

    def _kafka(self) -> tuple[EventWriter, KafkaPublisher]:
        if self._writer is None or self._publisher is None:
            raise RuntimeError("the producer's Kafka side is not started")
        return self._writer, self._publisher

    async def _sink(self, event: StreamEvent) -> None:
        await self._kafka()[0].write(event)

    def _topic_specs(self, outbox: Outbox) -> list[TopicSpec]:
        s = self.config.settings
        return contract_topic_specs(outbox.topics, PRODUCER_TOPICS, s.partitions, s.replication)

    # ------------------------------------------------------------------ run

    async def _heartbeat(self) -> None:
        """A ``producer.heartbeat`` audit every ``heartbeat_s``: liveness and dead letters."""
        reported = 0
        while True:
            await asyncio.sleep(self.config.settings.heartbeat_s)
            stats = self.stats()
            self._facts.fact(
                AuditKind.PRODUCER_HEARTBEAT,
                channels=stats.channels,
                channels_live=stats.channels_live,
                in_flight=stats.in_flight,
                delivered=stats.delivered,
                dead_letters=stats.dead_letters,
                dead_letters_since_last=stats.dead_letters - reported,
            )
            reported = stats.dead_letters

    async def _stream(self, stop: asyncio.Event, deadline: list[float]) -> None:
        cfg = self.config
        writer, publisher = self._kafka()
        halt = asyncio.Event()  # the caller's stop, or the publisher died
        helpers = [
            asyncio.create_task(self._drain_facts()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(_link(stop, halt)),
            asyncio.create_task(_link_failure(publisher, halt)),
            asyncio.create_task(self._health.watch(lambda: self._streams, publisher, halt)),
        ]
        try:
            self._facts.fact(
                AuditKind.SUBSCRIPTION_VALIDATED, subscriptions=len(cfg.spec.subscriptions)
            )
            async with genesys_client(
                cfg.genesys.api_base(cfg.spec.genesys.region, cfg.spec.genesys.api_url),
                cfg.genesys.client_id,
                cfg.genesys.client_secret,
                observer=self._hooks,
            ) as rest:
                plan, directory = await resolve_plan(rest, cfg.spec, cfg.shards, False)
                shard = plan.shards[cfg.shard]
                writer.filter = record_filter(
                    cfg.spec, (t for c in shard.channels for t in c.topics)
                )
                channels = [[t.topic for t in c.topics] for c in shard.channels]
                self._facts.fact(
                    AuditKind.SUBSCRIPTION_PLANNED,
                    shard=cfg.shard,
                    shards=cfg.shards,
                    channels=len(channels),
                    topics=sum(map(len, channels)),
                )
                self.availability = report = await check_availability(rest, cfg.spec, directory)
                self._facts.fact(AuditKind.AVAILABILITY_REPORT, **report.to_dict())
                session = cfg.session_settings()
                self._streams = [
                    ChannelStream(
                        rest,
                        topics,
                        self._sink,
                        settings=session,
                        max_frame_bytes=cfg.settings.max_frame_bytes,
                    )
                    for topics in channels
                ]
                grace = cfg.settings.shutdown_timeout_s / 4
                gc.freeze()  # start-up's objects live for good: the cyclic GC skips them
                await run_streams(self._streams, halt, on_restart=self._restarted, grace_s=grace)
        finally:
            deadline.append(time.monotonic() + cfg.settings.shutdown_timeout_s * 3 / 4)
            helpers[1].cancel()
            await self._flush_facts(deadline[0])
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _restarted(self, stream: ChannelStream, reason: str, retry_in_s: float) -> None:
        key = id(stream)
        self._restarts[key] = restarts = self._restarts.get(key, 0) + 1
        self.metrics.channel_restarts.inc()
        self._facts.fact(
            AuditKind.CHANNEL_RESTARTED, reason=reason, restarts=restarts, retry_in_s=retry_in_s
        )

    async def _drain_facts(self) -> None:
        while True:
            await self._sink(await self._facts.get())

    async def _flush_facts(self, deadline: float) -> None:
        """Write what is queued, until the deadline (Kafka may be gone)."""
        with contextlib.suppress(TimeoutError, PublishError):
            async with asyncio.timeout_at(_loop_time(deadline)):
                while (event := self._facts.get_nowait()) is not None:
                    await self._sink(event)
        if self._facts.suppressed:
            log.error("%d audit facts were not written", self._facts.suppressed)

    # ------------------------------------------------------------------ stop

    async def _stop_kafka(self, deadline: list[float]) -> None:
        if self._publisher is None:
            return
        end = (
            deadline[0] if deadline else time.monotonic() + self.config.settings.shutdown_timeout_s
        )
        left = await self._publisher.aclose(timeout_s=max(0.0, end - time.monotonic()))
        if left:
            log.error(
                "%d records were not acknowledged before the shutdown deadline; the next start's "
                "initial backfill writes the current state again",
                left,
            )


class _Stopped(Exception):
    """Stopped while waiting for something that may never answer."""


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """``await work``, unless ``stop`` is set first (the work is then abandoned)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()  # a thread cannot be interrupted: it ends on its own, unheard
        raise _Stopped
    return task.result()


async def _link(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()


async def _link_failure(publisher: KafkaPublisher, halt: asyncio.Event) -> None:
    cause = await publisher.wait_failed()
    log.error("the Kafka publisher stopped (%r): stopping the service", cause)
    halt.set()


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())
