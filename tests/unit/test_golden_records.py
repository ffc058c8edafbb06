"""The same inputs give the same records, byte for byte, and the same event ids.

The table in ``tests/fixtures/golden/records.json`` was produced by ``tests/golden.py`` from
fixed frames and facts. Consumers de-duplicate on event ids and sinks read these bytes, so a
difference here means the Kafka contract changed: fix the code, or regenerate on purpose.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests import golden

EXPECTED: dict[str, Any] = orjson.loads(golden.GOLDEN.read_bytes())
ACTUAL = golden.build()


@pytest.mark.parametrize("name", sorted(EXPECTED["metrics"]))
def test_frame_maps_to_pinned_event_ids(name: str) -> None:
    expected = [row["event_id"] for row in EXPECTED["metrics"][name]]
    assert [row["event_id"] for row in ACTUAL["metrics"][name]] == expected


@pytest.mark.parametrize("name", sorted(EXPECTED["metrics"]))
def test_frame_encodes_to_pinned_kafka_records(name: str) -> None:
    assert ACTUAL["metrics"][name] == EXPECTED["metrics"][name]


@pytest.mark.parametrize("name", sorted(EXPECTED["current"]))
def test_frame_changes_the_table_as_pinned(name: str) -> None:
    assert ACTUAL["current"][name] == EXPECTED["current"][name]


@pytest.mark.parametrize("name", sorted(EXPECTED["facts"]))
def test_fact_encodes_to_pinned_kafka_record(name: str) -> None:
    assert ACTUAL["facts"][name] == EXPECTED["facts"][name]


def test_golden_table_covers_every_input() -> None:
    assert set(EXPECTED["metrics"]) == set(golden.topic_events()) == set(EXPECTED["current"])
    assert set(EXPECTED["facts"]) == set(golden.lifecycle_facts())
    assert all(EXPECTED["metrics"][name] for name in EXPECTED["metrics"])  # none empty
    tombstones = [
        r for rows in EXPECTED["current"].values() for r in rows if r["value_b64"] is None
    ]
    assert tombstones, "the table pins a tombstone too"
