"""Producer metrics that read the sessions: refused topics (§5.6)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr

from pipeline.core.genesys.rejections import RejectedTopic
from pipeline.core.subscription.spec import load_spec
from pipeline.services.demo import EXAMPLE
from pipeline.services.producer import ProducerConfig, ProducerService
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings


def _config() -> ProducerConfig:
    """A complete configuration; nothing connects while the service is only constructed."""
    return ProducerConfig(
        load_spec(EXAMPLE),
        GenesysSettings(client_id="c", client_secret=SecretStr("s"), api_url="http://127.0.0.1:1"),
        KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        RegistrySettings(url="http://127.0.0.1:1"),
        ProducerSettings(),
    )


def test_topics_rejected_gauge_sums_every_channels_refused_topics() -> None:
    service = ProducerService(_config())
    sample = lambda: service.metrics.registry.get_sample_value("genesys_pipeline_topics_rejected")  # noqa: E731
    assert sample() == 0.0
    refused = (RejectedTopic("v2.analytics.queues.q1.observations"), RejectedTopic("t2"))
    streams: list[Any] = [
        SimpleNamespace(session=SimpleNamespace(rejected_topics=refused)),
        SimpleNamespace(session=SimpleNamespace(rejected_topics=())),
    ]
    service._streams = streams
    assert sample() == 2.0
