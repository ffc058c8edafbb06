"""Prometheus metrics of the producer service, on a registry of its own.

Names follow :mod:`pipeline.telemetry` (``genesys_pipeline_`` prefix); the registry also
carries the process, GC and build-info collectors.
"""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge, Histogram

from pipeline.core.genesys.session import SessionState
from pipeline.telemetry import DegradedGauge, service_registry

__all__ = ["PRODUCER_DEGRADATIONS", "ProducerMetrics"]

PRODUCER_DEGRADATIONS = ("genesys", "kafka")
"""What the producer's ``genesys_pipeline_degraded{reason}`` reports: a channel not live (Genesys
away, refusing or throttling), Kafka not acknowledging."""

_FRAME_LATENCY_BUCKETS: tuple[float, ...] = (
    *(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.2, 0.5, 1, 2, 5, 30),
)
"""Fine enough to read a p99 against a 20 ms target."""


class ProducerMetrics:
    """Frames in, records out, dead letters, gaps, delivery latency, buffer depth, refused
    topics, failures, channel states, degradation."""

    def __init__(self) -> None:
        self.registry = service_registry("producer")
        r = self.registry
        self.frames = Counter(
            "genesys_pipeline_frames_total", "Genesys events received", ["source"], registry=r
        )
        self.records = Counter(
            "genesys_pipeline_records_total", "Records handed to Kafka", ["topic"], registry=r
        )
        self.delivered = Counter(
            "genesys_pipeline_records_delivered_total", "Records Kafka acknowledged", registry=r
        )
        self.delivery_failures = Counter(
            "genesys_pipeline_delivery_failures_total",
            "Deliveries that failed and were retried",
            registry=r,
        )
        self.dead_letters = Counter(
            "genesys_pipeline_dead_letters_total", "Dead letters written", ["stage"], registry=r
        )
        self.gaps = Counter("genesys_pipeline_gaps_total", "Gaps in the Genesys stream", registry=r)
        self.gap_seconds = Histogram(
            "genesys_pipeline_gap_seconds",
            "Length of stream gaps",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=r,
        )
        self.delivery_latency = Histogram(
            "genesys_pipeline_delivery_latency_seconds",
            "Produce to acknowledgement",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=r,
        )
        self.in_flight = Gauge(
            "genesys_pipeline_buffer_depth",
            "Records waiting for a Kafka acknowledgement",
            registry=r,
        )
        self.channels_live = Gauge(
            "genesys_pipeline_channels_live", "Notification channels streaming now", registry=r
        )
        self.throttled = Counter(
            "genesys_pipeline_throttled_total", "429 answers from Genesys", registry=r
        )
        self.topics_rejected = Gauge(
            "genesys_pipeline_topics_rejected",
            "Topics Genesys refused at the last subscribe of each channel (permissions, §5.6)",
            registry=r,
        )
        self.rejected = Counter(
            "genesys_pipeline_records_rejected_total",
            "Records Kafka refused for good (dead-lettered)",
            registry=r,
        )
        self.producer_replaced = Counter(
            "genesys_pipeline_producer_replaced_total",
            "Kafka producers replaced after a fatal error",
            registry=r,
        )
        self.kafka_errors = Counter(
            "genesys_pipeline_kafka_errors_total",
            "Kafka client errors (error_cb)",
            ["error"],
            registry=r,
        )
        self.callback_errors = Counter(
            "genesys_pipeline_delivery_callback_errors_total",
            "Delivery callbacks that raised",
            registry=r,
        )
        self.audit_suppressed = Counter(
            "genesys_pipeline_audit_suppressed_total",
            "Producer facts counted instead of written (their queue was full)",
            ["kind"],
            registry=r,
        )
        self.channel_restarts = Counter(
            "genesys_pipeline_channel_restarts_total",
            "Channel streams restarted after a crash",
            registry=r,
        )
        self.publish_stalls = Counter(
            "genesys_pipeline_publish_stalls_total",
            "Hand-offs to Kafka that blocked past the stall threshold (each a gap)",
            registry=r,
        )
        self.channel_state = Enum(
            "genesys_pipeline_channel_state",
            "State of each notification channel of this shard (the session's state)",
            ["channel"],
            states=[state.value for state in SessionState],
            registry=r,
        )
        self.degraded = DegradedGauge(r, PRODUCER_DEGRADATIONS)
        """1 per upstream that is away; the producer stays ready (see services/ops.py)."""
        self.frame_latency = Histogram(
            "genesys_pipeline_frame_ack_latency_seconds",
            "Frame received to its last record acknowledged by Kafka (one frame in 16)",
            buckets=_FRAME_LATENCY_BUCKETS,
            registry=r,
        )
