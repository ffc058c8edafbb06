"""The dashboard worker: ``<prefix>.metrics`` → latest value per key → signed HTTP pushes.

Wiring only: coalescing is :mod:`pipeline.core.workers.latest`, the offset rule
:mod:`pipeline.core.workers.offsets`, push decisions :mod:`pipeline.core.workers.push` (over the
shared table of :mod:`pipeline.core.http_policy`), the circuit breaker
:mod:`pipeline.core.workers.breaker`; consumers, decoders and the producer of dead letters and
audit records are :class:`pipeline.kafka.worker.WorkerKafka` (records built by its
:class:`~pipeline.kafka.outbox.Outbox`); the HTTP side is
:class:`pipeline.dashboard.client.DashboardClient`.

The loop: fetch records and offer them to :class:`LatestValues` (with their topic, partition
and offset); every ``push_interval_s``, while the breaker allows, take batches of at most
``max_batch`` values and ``max_batch_bytes`` of JSON and push them one at a time, in order:

- **ack** (2xx): ``acknowledged``, then commit what became committable;
- **retry** (429, 5xx but 501/505, 408, no answer): wait (``Retry-After`` capped, else
  full-jitter backoff) and send the very same bytes again — same idempotency key, signed anew
  with a fresh timestamp — while the breaker allows; once it opens the batch is abandoned
  (its keys join the next batch);
- **too large** (413): the batch is abandoned and the batch size halved (a single value still
  too large is rejected: it goes to the DLQ, cut to fit one record);
- **reject** (any other 4xx): ``rejected``, one dead letter to ``<prefix>.dlq`` (stage
  ``dashboard``, ``raw`` = the batch body, reason ``HTTP <status>``) and an audit record
  ``dashboard.rejected`` to ``<prefix>.audit``;
- **fatal** (401, 403, 404, 405, 407, 501, 505, 1xx, 3xx: a wrong URL, secret or proxy):
  the worker reports not ready and stops with a
  :class:`~pipeline.errors.DashboardConfigError` (the CLI exits 2 with it on one line);
  nothing goes to the DLQ or is committed.

Values that cannot be decoded, and a schema registry that cannot be asked, are handled where
they are read (:class:`~pipeline.kafka.worker.WorkerKafka`): dead letter and move past, or
pause and ask again.

Readiness is the worker's own start-up and configuration (see ``services/ops.py``): a
dashboard that is down opens the circuit, which is degradation —
``genesys_pipeline_degraded{reason="dashboard"}`` 1 and a ``service.degraded`` audit record —
while ``/readyz`` stays 200, so a rollout never waits for the dashboard.

Bounded memory: while the circuit is open, or ``max_pending`` keys wait for a push, fetching
is paused (the group membership stays) until pushes catch up; the offset bookkeeping grows with
keys and partitions, never with records (:mod:`pipeline.core.workers.offsets`). So a long
dashboard outage holds one value per key, and what is not acknowledged stays uncommitted.

Offsets are committed only once the dashboard holds (or refused for good) what they carry, so
a crash re-reads only what was not acknowledged. A clean stop makes one last push attempt,
commits, and leaves the group; a cancelled task (a crash, for tests) leaves the group without
either.

Rebalances: :class:`KafkaSource` has no revocation callback, so the worker compares its
assignment after every fetch and calls :meth:`LatestValues.revoke` for partitions it lost
(their keys and offsets are forgotten; the new owner re-reads them from the last commit).
Commits for partitions already lost are skipped by :meth:`KafkaSource.commit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson
from aiokafka.structs import ConsumerRecord

from pipeline.core.audit import AuditEvent, AuditKind
from pipeline.core.contract.records import MetricRecord, audit_record
from pipeline.core.http_policy import Backoff
from pipeline.core.redaction import redact_url
from pipeline.core.workers.breaker import CircuitBreaker
from pipeline.core.workers.latest import Batch, LatestValues
from pipeline.core.workers.push import PushAction, PushDecision, classify_push
from pipeline.core.workers.staleness import StalenessTracker
from pipeline.dashboard.client import DashboardClient
from pipeline.errors import ConfigError, DashboardConfigError
from pipeline.kafka.consumer import KafkaSource
from pipeline.kafka.worker import WorkerKafka
from pipeline.services.dashboard_metrics import DashboardMetrics
from pipeline.services.ops import OpsServer
from pipeline.settings import DashboardSettings, KafkaSettings, RegistrySettings, WorkerSettings

__all__ = ["DashboardConfig", "DashboardMetrics", "DashboardWorker"]

log = logging.getLogger(__name__)

_BACKPRESSURE = "dashboard behind (circuit open or too many keys waiting)"


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """Everything one dashboard worker needs."""

    kafka: KafkaSettings
    registry: RegistrySettings
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    retry: Backoff = field(default_factory=Backoff)

    @property
    def instance(self) -> str:
        """This worker's name in audit and dead letters."""
        return self.worker.instance or f"dashboard-{socket.gethostname()}"

    @property
    def group_id(self) -> str:
        """The consumer group (default ``genesys-dashboard``)."""
        return self.worker.group_id or "genesys-dashboard"


class DashboardWorker:
    """One dashboard worker (a member of the ``genesys-dashboard`` group).

    Args:
        config: where to read, where to push.
        clock: epoch seconds (tests may pass a fake).
        rand: uniform [0, 1) source for the backoff jitter.
    """

    def __init__(
        self,
        config: DashboardConfig,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.metrics = DashboardMetrics()
        # A fresh generation per run: batch ids restart at 1, idempotency keys never repeat.
        self.values = LatestValues(generation=secrets.token_hex(8))
        # Stale flags follow the freshness rules: every instance reads the whole audit topic.
        self.staleness = StalenessTracker()
        self.breaker = CircuitBreaker(
            config.dashboard.failure_threshold, config.dashboard.reset_after_s
        )
        self.ops: OpsServer | None = None
        self.rejected = 0
        self._clock = clock
        self._rand = rand
        self._kafka: WorkerKafka | None = None
        self._client: DashboardClient | None = None
        self._committed: dict[tuple[str, int], int] = {}
        self._bodies: dict[int, bytes] = {}  # batch id → the exact bytes sent (re-sends)
        self.batch_limit = config.dashboard.max_batch
        """The most values per push; halved by every 413 (``Payload Too Large``)."""
        self.refused: str | None = None
        """Why the dashboard refuses every push (a configuration error), once it did."""
        self._last_failure = ""  # the last failed push's reason, for the degradation audit

    # ------------------------------------------------------------------ lifecycle
    def readiness(self) -> list[str]:
        """Why the worker is not ready (empty when ready)."""
        kafka = self._kafka
        reasons = ["schema contract not checked yet"] if kafka is None else kafka.readiness()
        if self.refused is not None:  # a configuration error: not ready (and stopping)
            reasons.append(self.refused)
        # The dashboard being down is degradation (metrics, service.degraded), not unreadiness.
        return reasons

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then push once more, commit and leave the group.

        Cancelling the task instead stops at once (no last push, no commit): what was not
        committed is re-read by the next member.

        Raises:
            ConfigError: ``DASHBOARD_SECRET`` is empty (pushes could not be signed).
            SchemaError: the registry does not hold the dead-letter and audit schemas.
            DashboardConfigError: the dashboard refuses every push (wrong URL or secret).
        """
        if not self.config.dashboard.secret.get_secret_value():
            raise ConfigError("set DASHBOARD_SECRET: pushes are signed with HMAC-SHA256")
        w = self.config.worker
        self.ops = OpsServer(self.metrics.registry, self.readiness, w.ops_host, w.ops_port)
        await self.ops.start()
        try:
            await self._run_kafka(stop)
        finally:
            await self.ops.aclose()

    async def _run_kafka(self, stop: asyncio.Event) -> None:
        cfg = self.config
        self._kafka = WorkerKafka(
            cfg.kafka,
            cfg.registry,
            prefix=cfg.worker.topic_prefix,
            instance=cfg.instance,
            group_id=cfg.group_id,
            session_timeout_ms=cfg.worker.session_timeout_ms,
            writes=("dlq", "audit"),
            kind="dashboard",
            metrics=self.metrics.kafka,
            retry=cfg.retry,
            max_record_bytes=cfg.worker.max_record_bytes,
        )
        if not await self._kafka.start(stop):
            return  # stopped while waiting for the registry
        try:
            async with httpx.AsyncClient() as http:
                d = cfg.dashboard
                self._client = DashboardClient(
                    http, d.url, d.secret, d.timeout_s, cfg.retry.max_retry_after_s
                )
                await self._loop(stop)
                await self._last_push()
        finally:
            await self._kafka.aclose()

    def _parts(self) -> tuple[WorkerKafka, DashboardClient]:
        if self._kafka is None or self._client is None:
            raise RuntimeError("the dashboard worker is not started")
        return self._kafka, self._client

    # ------------------------------------------------------------------ consume
    async def _loop(self, stop: asyncio.Event) -> None:
        interval = self.config.dashboard.push_interval_s
        next_push = self._clock() + interval
        while not stop.is_set():
            wait_ms = int(max(0.0, min(next_push - self._clock(), 0.5)) * 1000)
            self._hold_back()
            await self._consume(wait_ms)
            await self._consume_audit()
            if self._clock() >= next_push:
                changed = self.staleness.tick(self._clock())
                self.values.touch(change.key for change in changed)
                await self._push_pending(stop, retries=True)
                await self._commit()
                next_push = self._clock() + interval

    def _hold_back(self) -> None:
        """Pause fetching while the dashboard cannot keep up; resume when it can."""
        kafka, _ = self._parts()
        behind = (
            self.breaker.state == "open" or self.values.pending >= self.config.dashboard.max_pending
        )
        if behind:
            kafka.metrics.pause(_BACKPRESSURE)
        else:
            kafka.metrics.resume(_BACKPRESSURE)
        self.metrics.fetch_paused.set(1 if behind else 0)

    async def _consume(self, timeout_ms: int) -> None:
        kafka, _ = self._parts()
        polled = await kafka.poll_metrics(timeout_ms=max(timeout_ms, 1))
        for raw, metric in polled:
            self._offer(raw, metric)
        self.metrics.count_in(len(polled))
        self._handle_revocations(kafka.metrics)
        self.metrics.pending.set(self.values.pending)

    def _offer(self, raw: ConsumerRecord[bytes, bytes], metric: MetricRecord | None) -> None:
        topic, partition, offset = raw.topic, raw.partition, raw.offset
        if metric is None:  # dead-lettered: move past it
            self.values.skip(topic, partition, offset)
            return
        self.values.offer(metric, topic, partition, offset)
        self.staleness.observe(metric)

    async def _consume_audit(self) -> None:
        """Feed the staleness rules with the producers' lifecycle (never committed)."""
        kafka, _ = self._parts()
        for _, audit in await kafka.poll_audit(timeout_ms=1):
            if audit is not None:  # None: dead-lettered, skipped
                self.staleness.observe_audit(audit)

    def _handle_revocations(self, source: KafkaSource) -> None:
        assigned = source.assignment()
        for topic, partition in set(self.values.committable()) - assigned:
            log.info("partition %s[%d] revoked: forgetting its keys", topic, partition)
            self.values.revoke(topic, partition)
            self._committed.pop((topic, partition), None)

    async def _commit(self) -> None:
        kafka, _ = self._parts()
        todo = {
            tp: offset
            for tp, offset in self.values.committable().items()
            if self._committed.get(tp) != offset
        }
        if todo and await kafka.commit(todo):
            self._committed.update(todo)

    # ------------------------------------------------------------------ push
    async def _push_pending(self, stop: asyncio.Event, retries: bool) -> None:
        """Push the batches in flight (re-sends) and then new ones, one at a time.

        Raises:
            DashboardError: the dashboard refused a push for a reason no batch can fix.
        """
        while True:
            if not self.breaker.allow(self._clock()):
                break
            batch = self._next_batch()
            if batch is None:
                break
            if not await self._deliver(batch, stop, retries):
                break
        self._update_gauges()
        await self._note_degradation()

    async def _note_degradation(self) -> None:
        """Audit the circuit leaving or reaching ``closed``: degradation, not unreadiness."""
        closed = self.breaker.state == "closed"
        changed = self.metrics.degraded.observe("dashboard", not closed, self._clock())
        if changed is None:
            return
        detail = f"circuit {self.breaker.state}" + ("" if closed else f": {self._last_failure}")
        if changed:
            log.warning("degraded (dashboard): %s; still ready, values wait in Kafka", detail)
        else:
            log.info("recovered (dashboard): %s", detail)
        kind = AuditKind.SERVICE_DEGRADED if changed else AuditKind.SERVICE_RECOVERED
        event = AuditEvent(kind, self._clock(), None, {"reason": "dashboard", "detail": detail})
        kafka, _ = self._parts()
        await kafka.publisher.publish(kafka.outbox.audit(audit_record(event, self.config.instance)))

    def _next_batch(self) -> Batch | None:
        """The batch in flight (a re-send), else a new one within the count and byte limits."""
        if self.values.in_flight:
            return self.values.in_flight[0]
        max_bytes = self.config.dashboard.max_batch_bytes
        return self.values.take_batch(self.batch_limit, self.staleness.is_stale, max_bytes)

    async def _deliver(self, batch: Batch, stop: asyncio.Event, retries: bool) -> bool:
        """Push one batch until it is settled or split; False when it was abandoned."""
        _, client = self._parts()
        body = self._bodies.get(batch.batch_id)
        if body is None:
            body = self._bodies[batch.batch_id] = orjson.dumps(batch.body(self._clock()))
        attempt = 0
        while True:
            outcome = await client.push(body, batch.idempotency_key)
            decision = classify_push(outcome.status, outcome.retry_after)
            match decision.action:
                case PushAction.RETRY:
                    self._failed(decision)
                    wait = self.config.retry.delay(attempt, decision.wait_s, self._rand)
                    attempt += 1
                    if not retries or not await self._may_retry(wait, stop):
                        self._abandon(batch)
                        return False
                case PushAction.FATAL_CONFIG:
                    self._abandon(batch)
                    raise self._misconfigured(decision)
                case PushAction.TOO_LARGE if len(batch.values) > 1:
                    self.breaker.record_success(self._clock())  # it answered: it is up
                    self._split(batch, decision)
                    return True
                case _:
                    await self._settle(batch, body, outcome.status, decision)
                    return True

    async def _may_retry(self, wait_s: float, stop: asyncio.Event) -> bool:
        """Wait ``wait_s`` (stop cuts it short); True when the breaker allows a re-send."""
        if self.breaker.state == "open":
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait_s)
        return not stop.is_set() and self.breaker.allow(self._clock())

    def _failed(self, decision: PushDecision) -> None:
        self.metrics.pushes.labels("failed").inc()
        self._last_failure = decision.reason
        if decision.is_failure:
            self.breaker.record_failure(self._clock())
        log.warning("dashboard push failed (%s)", decision.reason)
        self._update_gauges()

    def _split(self, batch: Batch, decision: PushDecision) -> None:
        # 413: the same values go out again in batches half this size (and stay that small).
        self.metrics.pushes.labels("too_large").inc()
        self.batch_limit = max(1, len(batch.values) // 2)
        log.warning("%s: batches of at most %d values now", decision.reason, self.batch_limit)
        self._abandon(batch)

    def _misconfigured(self, decision: PushDecision) -> DashboardConfigError:
        self.metrics.pushes.labels("fatal").inc()
        url = redact_url(self.config.dashboard.url)
        self.refused = f"{decision.reason} from {url}: check DASHBOARD_URL and DASHBOARD_SECRET"
        log.error("stopping: %s", self.refused)
        return DashboardConfigError(self.refused)

    def _abandon(self, batch: Batch) -> None:
        self.values.abandoned(batch.batch_id)
        self._bodies.pop(batch.batch_id, None)

    async def _settle(
        self, batch: Batch, body: bytes, status: int | None, decision: PushDecision
    ) -> None:
        self._bodies.pop(batch.batch_id, None)
        self.breaker.record_success(self._clock())
        if decision.action is PushAction.ACK:
            self.values.acknowledged(batch.batch_id)
            self.metrics.pushes.labels("ok").inc()
            self.metrics.count_out(len(batch.values))
        else:  # REJECT, or TOO_LARGE for a single value: this batch can never pass
            await self._reject(batch, body, status)
        await self._commit()

    async def _reject(self, batch: Batch, body: bytes, status: int | None) -> None:
        self.values.rejected(batch.batch_id)
        self.rejected += 1
        self.metrics.pushes.labels("rejected").inc()
        reason = f"HTTP {status}"
        log.error("dashboard rejected batch %s: %s", batch.idempotency_key, reason)
        kafka, _ = self._parts()
        await kafka.dead_letter(body, reason, "dashboard", at=self._clock())
        details = {
            "status": status,
            "idempotency_key": batch.idempotency_key,
            "values": len(batch.values),
        }
        event = AuditEvent(AuditKind.DASHBOARD_REJECTED, self._clock(), None, details)
        await kafka.publisher.publish(kafka.outbox.audit(audit_record(event, self.config.instance)))

    async def _last_push(self) -> None:
        """On a clean stop: one attempt per pending batch (no retries), then commit."""
        await self._push_pending(asyncio.Event(), retries=False)
        await self._commit()

    def _update_gauges(self) -> None:
        self.metrics.circuit.state(self.breaker.state)
        self.metrics.pending.set(self.values.pending)
