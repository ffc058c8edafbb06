"""Producer metrics that read the sessions: refused topics (§5.6)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.services.producer import ProducerConfig, ProducerService


def test_topics_rejected_gauge_sums_every_channels_refused_topics() -> None:
    service = ProducerService(cast(ProducerConfig, None))  # the gauge needs no configuration
    sample = lambda: service.metrics.registry.get_sample_value("pipeline_topics_rejected")  # noqa: E731
    assert sample() == 0.0
    refused = (RejectedTopic("v2.analytics.queues.q1.observations"), RejectedTopic("t2"))
    streams: list[Any] = [
        SimpleNamespace(session=SimpleNamespace(rejected_topics=refused)),
        SimpleNamespace(session=SimpleNamespace(rejected_topics=())),
    ]
    service._streams = streams
    assert sample() == 2.0
