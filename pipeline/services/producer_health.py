"""The producer's view of its upstreams: channel states, Kafka acknowledgements, degradation.

Readiness is the producer's own start-up (``ProducerService.readiness``); what happens to
Genesys and Kafka afterwards is reported here, as metrics and audit facts, while the
producer stays ready:

- ``genesys``: a channel of this shard has not been live for the hold time (Genesys down,
  refusing, throttling; the session reconnects and backfills by itself);
- ``kafka``: the last thing Kafka did was fail a delivery or report all brokers down, with
  no acknowledgement since (the publisher keeps every record and retries).

Each change is one ``service.degraded`` or ``service.recovered`` fact and one log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from pipeline.core.audit import AuditKind
from pipeline.core.genesys.session import SessionState
from pipeline.genesys.stream import ChannelStream
from pipeline.kafka.producer import KafkaPublisher
from pipeline.services.producer_facts import FactQueue, ProducerHooks
from pipeline.services.producer_metrics import ProducerMetrics

__all__ = ["HEALTH_INTERVAL_S", "ProducerHealth"]

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S: Final = 1.0
"""How often the producer looks at its channels and Kafka."""


class ProducerHealth:
    """Updates the state gauges and turns degradation changes into facts.

    Args:
        metrics: the producer's metrics.
        hooks: the publisher's observer (it knows Kafka's last trouble).
        facts: where ``service.degraded`` / ``service.recovered`` go.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        metrics: ProducerMetrics,
        hooks: ProducerHooks,
        facts: FactQueue,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._hooks = hooks
        self._facts = facts
        self._clock = clock

    def observe(
        self, streams: Sequence[ChannelStream], publisher: KafkaPublisher | None
    ) -> list[tuple[str, bool, str]]:
        """Update the gauges from the channels and the publisher.

        Args:
            streams: the shard's channel streams.
            publisher: the Kafka publisher (None before start-up).

        Returns:
            The degradations that changed: (reason, degraded, detail).
        """
        states = [stream.session.state for stream in streams]
        for index, state in enumerate(states):
            self._metrics.channel_state.labels(str(index)).state(state.value)
        live = states.count(SessionState.LIVE)
        self._metrics.channels_live.set(live)
        if publisher is not None:
            self._metrics.in_flight.set(publisher.in_flight)
        down = [
            f"channel {i} {s.value}" for i, s in enumerate(states) if s is not SessionState.LIVE
        ]
        trouble = self._hooks.kafka_trouble
        checks = {
            "genesys": (bool(down), ", ".join(down) or f"{live} channels live"),
            "kafka": (trouble is not None, trouble or "Kafka acknowledges"),
        }
        now = self._clock()
        changes = []
        for reason, (bad, detail) in checks.items():
            changed = self._metrics.degraded.observe(reason, bad, now)
            if changed is not None:
                changes.append((reason, changed, detail))
        return changes

    async def watch(
        self,
        streams: Callable[[], Sequence[ChannelStream]],
        publisher: KafkaPublisher,
        halt: asyncio.Event,
    ) -> None:
        """Look every :data:`HEALTH_INTERVAL_S` until ``halt`` (a stop is no outage).

        Args:
            streams: the current channel streams.
            publisher: the Kafka publisher.
            halt: set when the service stops.
        """
        while not halt.is_set():
            for reason, degraded, detail in self.observe(streams(), publisher):
                if halt.is_set():
                    break
                self.report(reason, degraded, detail)
            await asyncio.sleep(HEALTH_INTERVAL_S)

    def report(self, reason: str, degraded: bool, detail: str) -> None:
        """Log and audit one change.

        Args:
            reason: ``genesys`` or ``kafka``.
            degraded: True when it began, False when it ended.
            detail: what was seen.
        """
        if degraded:
            log.warning("degraded (%s): %s; still ready, recovering by itself", reason, detail)
            self._facts.fact(AuditKind.SERVICE_DEGRADED, reason=reason, detail=detail)
        else:
            log.info("recovered (%s): %s", reason, detail)
            self._facts.fact(AuditKind.SERVICE_RECOVERED, reason=reason, detail=detail)
