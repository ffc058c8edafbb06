"""The queue activity topic end to end: emulator → producer → Kafka, read back with plain tools.

Before issue 13 the producer accepted a subscription to ``v2.analytics.queues.{id}.activity``
and dead-lettered every frame of it. Now each ``results[].data[]`` entry the emulator sends is a
metric record in ``<prefix>.metrics`` (docs/genesys-api.md §6.3, §6.8) and the DLQ stays empty.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.emulator.thread import EmulatorThread
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services.producer import ProducerService
from tests.conftest import seconds
from tests.integration.test_producer import PARTITIONS, config_for
from tests.polling import until
from tests.reading import read_topic

pytestmark = pytest.mark.integration


def activity_spec(tmp_path: Path, queue_names: list[str]) -> Path:
    path = tmp_path / "subscription.yaml"
    names = ", ".join(f"{{name: {n}}}" for n in queue_names)
    path.write_text(
        "subscriptions:\n"
        f"  - name: activity\n    queues: [{names}]\n    topics: [activity]\n"
        "    metrics: [oWaiting, oInteracting, oAlerting, oFlow, oLongestWaiting,"
        " oLongestInteracting]\n"
    )
    return path


async def test_queue_activity_frames_become_metric_records(
    emulator_factory: Callable[..., EmulatorThread], endpoints: Endpoints, tmp_path: Path
) -> None:
    emulator = emulator_factory(
        queues=3, agents=18, speed=60.0, frame_interval_s=0.2, keep_frame_text=True
    )
    assert emulator.emulator is not None
    names = [q.name for q in emulator.emulator.center.queues]
    prefix = f"t{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
    service = ProducerService(
        config_for(emulator, endpoints, activity_spec(tmp_path, names), prefix)
    )
    stop = asyncio.Event()
    run = asyncio.create_task(service.run(stop))

    def activity_frames() -> list[Any]:
        assert emulator.emulator is not None
        return [
            f
            for f in emulator.emulator.frames.frames()
            if f.kind == "event" and f.topic.endswith(".activity")
        ]

    await until(
        lambda: len(activity_frames()) >= 6 and service.metrics.delivered._value.get() >= 30,
        seconds(30),
        message="activity frames sent and their records delivered",
    )
    stop.set()
    await asyncio.wait_for(run, seconds(30))

    metrics = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.metrics", PARTITIONS)
    dlq = await asyncio.to_thread(read_topic, endpoints, f"{prefix}.dlq", 1)
    assert dlq == []  # before the mapping existed, every activity frame was a dead letter
    activity = [v for _, _, v, _ in metrics if v["source_topic"].endswith(".activity")]
    assert {v["metric"] for v in activity} == {
        "oWaiting", "oInteracting", "oAlerting", "oFlow", "oLongestWaiting", "oLongestInteracting"
    }  # fmt: skip
    for value in activity:
        assert value["entity_type"] == "queue"
        assert value["source_topic"] == f"v2.analytics.queues.{value['entity_id']}.activity"
        assert value["interval_start"] is None
        assert value["schema_version"] == 2

    by_correlation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for value in activity:
        by_correlation[value["correlation_id"]].append(value)
    checked = 0
    for frame in activity_frames():
        records = by_correlation.get(frame.correlation_id or "")
        if not records:
            continue  # sent while the producer was stopping
        assert frame.text is not None
        check_activity(orjson.loads(frame.text)["eventBody"], records)
        checked += 1
    assert checked >= 3


def check_activity(body: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Each data entry of an activity body is one record with the same count and value."""
    index = {(r["media_type"], r["metric"]): r for r in records}
    entries = [(group["mediaType"], d) for group in body["results"] for d in group["data"]]
    assert len(index) == len(records) == len(entries)
    for media, datum in entries:
        record = index[media, datum["metric"]]
        assert record["count"] == datum["count"]
        assert record["calculated_metric_value"] == datum.get("calculatedMetricValue")
        if datum["metric"].startswith("oLongest"):
            assert record["unit"] == "ms"
            if "calculatedMetricValue" in datum:  # an epoch-ms start → the age at ingest
                age = record["ingest_time"].timestamp() * 1000 - datum["calculatedMetricValue"]
                assert record["value"] == pytest.approx(max(0.0, age), abs=1.0)
        else:
            assert record["value"] == float(datum["count"])
