"""Prometheus metrics of the producer service, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ProducerMetrics"]

_FRAME_LATENCY_BUCKETS: tuple[float, ...] = (
    *(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.2, 0.5, 1, 2, 5, 30),
)
"""Fine enough to read a p99 against a 20 ms target."""


class ProducerMetrics:
    """Frames in, records out, dead letters, gaps, delivery latency, buffer depth, refused
    topics, failures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter(
            "pipeline_frames_total", "Genesys events received", ["source"], registry=r
        )
        self.records = Counter(
            "pipeline_records_total", "Records handed to Kafka", ["topic"], registry=r
        )
        self.delivered = Counter(
            "pipeline_records_delivered_total", "Records Kafka acknowledged", registry=r
        )
        self.delivery_failures = Counter(
            "pipeline_delivery_failures_total",
            "Deliveries that failed and were retried",
            registry=r,
        )
        self.dead_letters = Counter(
            "pipeline_dead_letters_total", "Dead letters written", ["stage"], registry=r
        )
        self.gaps = Counter("pipeline_gaps_total", "Gaps in the Genesys stream", registry=r)
        self.gap_seconds = Histogram(
            "pipeline_gap_seconds",
            "Length of stream gaps",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=r,
        )
        self.delivery_latency = Histogram(
            "pipeline_delivery_latency_seconds",
            "Produce to acknowledgement",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=r,
        )
        self.in_flight = Gauge(
            "pipeline_buffer_depth", "Records waiting for a Kafka acknowledgement", registry=r
        )
        self.channels_live = Gauge(
            "pipeline_channels_live", "Notification channels streaming now", registry=r
        )
        self.throttled = Counter("pipeline_throttled_total", "429 answers from Genesys", registry=r)
        self.topics_rejected = Gauge(
            "pipeline_topics_rejected",
            "Topics Genesys refused at the last subscribe of each channel (permissions, §5.6)",
            registry=r,
        )
        self.rejected = Counter(
            "pipeline_records_rejected_total",
            "Records Kafka refused for good (dead-lettered)",
            registry=r,
        )
        self.producer_replaced = Counter(
            "pipeline_producer_replaced_total",
            "Kafka producers replaced after a fatal error",
            registry=r,
        )
        self.kafka_errors = Counter(
            "pipeline_kafka_errors_total", "Kafka client errors (error_cb)", ["error"], registry=r
        )
        self.callback_errors = Counter(
            "pipeline_delivery_callback_errors_total", "Delivery callbacks that raised", registry=r
        )
        self.audit_suppressed = Counter(
            "pipeline_audit_suppressed_total",
            "Producer facts counted instead of written (their queue was full)",
            ["kind"],
            registry=r,
        )
        self.channel_restarts = Counter(
            "pipeline_channel_restarts_total", "Channel streams restarted after a crash", registry=r
        )
        self.publish_stalls = Counter(
            "pipeline_publish_stalls_total",
            "Hand-offs to Kafka that blocked past the stall threshold (each a gap)",
            registry=r,
        )
        self.frame_latency = Histogram(
            "pipeline_frame_ack_latency_seconds",
            "Frame received to its last record acknowledged by Kafka (one frame in 16)",
            buckets=_FRAME_LATENCY_BUCKETS,
            registry=r,
        )
