"""The changelog table end to end: emulator → producer → ``.current.v2`` → table consumers.

Two consumers read the compacted topic from the beginning the way downstream tools do: a dict
(a ksqlDB/Flink table, a Kafka Streams ``KTable``: the last value per key, a tombstone
deletes) and a JDBC-sink-shaped one (``deploy/connect/jdbc-current-sink.json``: upsert by
the record key into the table it names, delete on a tombstone) writing into SQLite. Both must
end with exactly the emulator's current state while the org changes underneath: a presence
change (one row, its state in the value; the queue's count for the old presence disappears
from the body and is tombstoned), a member leaving the queue (tombstone), and a dropped socket
(gap, backfill) in between. The simulation is frozen (no arrivals, speed ~0) so that only
these changes move the org.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.core.genesys.metrics import SYSTEM_PRESENCES
from pipeline.core.subscription.spec import load_spec
from pipeline.emulator.simulation.topics import bodies_for_topic
from pipeline.emulator.state.faults import DropSocket
from pipeline.emulator.thread import EmulatorThread
from pipeline.kafka.registry import register_contract
from pipeline.kafka.schemas import load_schema
from pipeline.local.stack import Endpoints
from pipeline.services.producer import ProducerService
from tests.conftest import seconds
from tests.polling import until
from tests.producer_rig import EMULATOR, PARTITIONS, producer_config

ROOT = Path(__file__).resolve().parents[2]
SINK = json.loads((ROOT / "deploy" / "connect" / "jdbc-current-sink.json").read_text())["config"]
FROZEN = {
    **EMULATOR, "queues": 2, "agents": 10, "speed": 0.001, "arrival_rate": 0.0,
    "frame_interval_s": 0.05, "send_initial_state": True, "omit_zero_qualifiers": True,
}  # fmt: skip
"""A small org that changes only when the test changes it; every body sent at subscribe."""

Row = tuple[str, Any]  # row key → what the emulator says its value is


# ---------------------------------------------------------------------------- the emulator's side
def expected_rows(thread: EmulatorThread, queue_id: str, users: list[str]) -> dict[str, Any]:
    """The table the emulator's state implies, built from its bodies with the documented keys.

    Observations: ``queue|<id>|<metric>|<qualifier>|<media>`` → count. Members: ``queue|<id>|
    member|<user>|`` → 1.0. Presence: ``user|<id>|presence||`` → the system presence.
    """

    async def read() -> dict[str, Any]:
        assert thread.emulator is not None
        cc = thread.emulator.center
        rows: dict[str, Any] = {}
        for body in bodies_for_topic(cc, f"v2.analytics.queues.{queue_id}.observations"):
            media = body["group"].get("mediaType") or ""  # type: ignore[attr-defined]
            for entry in body["data"][0]["metrics"]:  # type: ignore[index]
                key = f"queue|{queue_id}|{entry['metric']}|{entry.get('qualifier') or ''}|{media}"
                rows[key] = entry["stats"]["count"]
        for body in bodies_for_topic(cc, f"v2.routing.queues.{queue_id}.users"):
            if body["joined"]:
                rows[f"queue|{queue_id}|member|{body['id']}|"] = 1.0
        for user in users:
            rows[f"user|{user}|presence||"] = cc.user_snapshot(cc.user_index[user]).presence
        return rows

    return thread.call(read())


def table_view(row: dict[str, Any]) -> Any:
    """What :func:`expected_rows` holds for a row read back from Kafka or SQLite."""
    if row["metric"] == "presence":
        return row["qualifier"]
    if row["metric"] == "member":
        return row["value"]
    return row["count"]


# ---------------------------------------------------------------------------- the consumers
def read_changelog(endpoints: Endpoints, topic: str) -> list[tuple[str, dict[str, Any] | None]]:
    """Every record of ``topic`` from the beginning, in partition order: (key, value or None);
    read until the topic is quiet for a moment (as ``tests.producer_rig.read_topics``)."""
    registry = SchemaRegistryClient({"url": endpoints.schema_registry_url})
    decode = AvroDeserializer(registry)
    consumer = Consumer({
        "bootstrap.servers": endpoints.bootstrap_servers,
        "group.id": f"table-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    })  # fmt: skip
    consumer.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])
    out: list[tuple[str, dict[str, Any] | None]] = []
    context = SerializationContext(topic, MessageField.VALUE)
    started = idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 0.5 or time.monotonic() - started < 1.0:
            msg = consumer.poll(0.1)
            if msg is None or msg.error() is not None:
                continue
            idle_since = time.monotonic()
            raw, key = msg.value(), msg.key().decode()
            out.append((key, None if raw is None else decode(raw, context)))
    finally:
        consumer.close()
        registry.close()
    return out


def replay_into_dict(changelog: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """A table consumer: the last value per key; a tombstone deletes the key."""
    table: dict[str, dict[str, Any]] = {}
    for key, value in changelog:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return {key: table_view(value) for key, value in table.items()}


class JdbcShapedSink:
    """What the JDBC sink of ``jdbc-current-sink.json`` does with the topic, into SQLite.

    ``pk.mode=record_key``: the key string is the ``pk.fields`` column; the value's fields are
    the other columns (``auto.create``); ``insert.mode=upsert``; ``delete.enabled``: a
    tombstone deletes the row with that key.
    """

    def __init__(self, path: Path) -> None:
        assert (SINK["pk.mode"], SINK["insert.mode"], SINK["delete.enabled"]) == (
            "record_key", "upsert", "true")  # fmt: skip
        self.table, self.pk = SINK["table.name.format"], SINK["pk.fields"]
        self.columns = [f["name"] for f in load_schema("metric")["fields"]]
        assert self.pk not in self.columns, "the key column must not clash with a value field"
        self.db = sqlite3.connect(path)
        columns = ", ".join(f'"{c}"' for c in self.columns)
        self.db.execute(f'CREATE TABLE "{self.table}" ("{self.pk}" TEXT PRIMARY KEY, {columns})')

    # Table and column names come from the committed sink config and schema, values are bound
    # parameters: the S608 warnings below are about the names.
    def write(self, changelog: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Apply the records from the sink's committed position on (here: all of them)."""
        names = [self.pk, *self.columns]
        marks = ", ".join("?" * len(names))
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns)
        upsert = (
            f'INSERT INTO "{self.table}" ({", ".join(names)}) VALUES ({marks})'  # noqa: S608
            f' ON CONFLICT("{self.pk}") DO UPDATE SET {updates}'
        )
        delete = f'DELETE FROM "{self.table}" WHERE "{self.pk}" = ?'  # noqa: S608
        with self.db:
            self.db.execute(f'DELETE FROM "{self.table}"')  # noqa: S608 - replays from offset 0
            for key, value in changelog:
                if value is None:
                    self.db.execute(delete, (key,))
                else:
                    self.db.execute(upsert, [key, *(_sql(value[c]) for c in self.columns)])

    def rows(self) -> dict[str, Any]:
        cursor = self.db.execute(f'SELECT * FROM "{self.table}"')  # noqa: S608
        names = [d[0] for d in cursor.description]
        return {row[0]: table_view(dict(zip(names, row, strict=True))) for row in cursor}


def _sql(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# ---------------------------------------------------------------------------- the test
async def post(thread: EmulatorThread, path: str, body: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=thread.base_url) as client:
        answer = await client.post(f"/__emulator/{path}", json=body)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("consumer", ["table", "jdbc-sink"])
async def test_table_consumers_hold_the_emulators_current_state(
    consumer: str,
    emulator_factory: Callable[..., EmulatorThread],
    endpoints: Endpoints,
    tmp_path: Path,
) -> None:
    thread = emulator_factory(**FROZEN)
    assert thread.emulator is not None
    cc = thread.emulator.center
    queue = cc.queues[0]
    members = [cc.users[u].id for u in cc.members(0)]
    assert len(members) >= 2, "the org needs two members in the first queue"
    spec = tmp_path / "table.yaml"
    spec.write_text(
        "subscriptions:\n"
        f"  - name: queue\n    queues: [{{id: {queue.id}}}]\n    topics: [observations, users]\n"
        f"  - name: agents\n    users: {{members_of_queues: [{{id: {queue.id}}}]}}\n"
        "    topics: [presence]\n"
    )
    config = producer_config(thread, endpoints, tmp_path)
    config = dataclasses.replace(config, spec=load_spec(spec))
    topic = f"{config.settings.topic_prefix}.current.v2"
    await asyncio.to_thread(register_contract, endpoints.schema_registry_url,
                            config.settings.topic_prefix)  # fmt: skip
    sink = JdbcShapedSink(tmp_path / "sink.db") if consumer == "jdbc-sink" else None
    changelog: list[tuple[str, dict[str, Any] | None]] = []

    async def consumer_rows() -> dict[str, Any]:
        changelog[:] = await asyncio.to_thread(read_changelog, endpoints, topic)
        if sink is None:
            return replay_into_dict(changelog)
        sink.write(changelog)
        return sink.rows()

    async def holds_the_emulators_state(what: str) -> None:
        expected: dict[str, Any] = {}
        actual: dict[str, Any] = {}

        async def equal() -> bool:
            nonlocal expected, actual
            expected = expected_rows(thread, queue.id, members)
            actual = await consumer_rows()
            return actual == expected

        try:
            await until(equal, seconds(30), message=f"{consumer} holds the state {what}",
                        poll_s=0.3)  # fmt: skip
        except pytest.fail.Exception:
            assert actual == expected, what  # the difference, row by row
            raise

    def tombstoned(key: str) -> bool:
        return any(k == key and v is None for k, v in changelog)

    service = ProducerService(config)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await holds_the_emulators_state("at start")
        # A presence change: still one presence row; the queue's count for a presence nobody
        # else has appears, then disappears again (tombstoned) when the user moves on.
        user = members[0]
        taken = {cc.user_snapshot(u).presence for u in cc.members(0)}
        first, second = [p for p in SYSTEM_PRESENCES if p not in taken][:2]
        await post(thread, "presence", {"user_id": user, "presence": first})
        await holds_the_emulators_state(f"after {user} went {first}")
        count_key = f"queue|{queue.id}|oUserPresences|{cc.org_presence_ids[first]}|"
        assert expected_rows(thread, queue.id, members)[count_key] == 1
        await post(thread, "presence", {"user_id": user, "presence": second})
        await holds_the_emulators_state(f"after {user} went {second}")
        assert tombstoned(count_key)
        assert [k for k in replay_into_dict(changelog) if k.startswith(f"user|{user}|")] == [
            f"user|{user}|presence||"
        ]
        # The socket drops (a gap, then a backfill and the new socket's bodies) as a member
        # leaves the queue: whichever comes first, the member's row ends in a tombstone.
        leaver = members[1]
        thread.inject(DropSocket(service.streams[0].session.channel_id or ""))
        await post(thread, "members/remove", {"queue_id": queue.id, "user_id": leaver})
        await holds_the_emulators_state(f"after {leaver} left the queue")
        assert tombstoned(f"queue|{queue.id}|member|{leaver}|")
        assert service.gaps >= 1, "the dropped socket was a gap"
    finally:
        stop.set()
        await asyncio.wait_for(task, seconds(30))
