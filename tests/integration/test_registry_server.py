"""The local schema registry against the real confluent-kafka client, serializer and deserializer.

The server runs in a background thread with its own event loop (the sync client blocks), in the
test's loop (async client), or as ``python -m pipeline.local.registry_server`` (subprocess).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import (
    AsyncSchemaRegistryClient,
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from confluent_kafka.schema_registry.avro import (
    AsyncAvroDeserializer,
    AsyncAvroSerializer,
    AvroDeserializer,
    AvroSerializer,
)
from confluent_kafka.serialization import MessageField, SerializationContext

from pipeline.local.registry_routes import CONTENT_TYPE
from pipeline.local.registry_server import DATA_FILE_NAME, RegistryServer

__all__: list[str] = []

pytestmark = pytest.mark.integration

TOPIC = "v2.analytics.queues.q1.observations"
SUBJECT = f"{TOPIC}-value"
V1 = json.dumps(
    {
        "type": "record",
        "name": "QueueObservation",
        "namespace": "pipeline.test",
        "fields": [
            {"name": "queue_id", "type": "string"},
            {"name": "waiting", "type": "int"},
        ],
    }
)
V2_WITH_DEFAULT = json.dumps(
    {
        **json.loads(V1),
        "fields": [*json.loads(V1)["fields"], {"name": "interacting", "type": "int", "default": 0}],
    }
)
V2_NO_DEFAULT = json.dumps(
    {**json.loads(V1), "fields": [*json.loads(V1)["fields"], {"name": "alerting", "type": "int"}]}
)
RECORD = {"queue_id": "q1", "waiting": 7}


class ThreadedRegistry:
    """A RegistryServer on its own event loop in a daemon thread, for blocking clients."""

    def __init__(self, data_dir: pathlib.Path | None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="registry", daemon=True)
        self._server = RegistryServer(data_dir=data_dir)

    def __enter__(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.aclose(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def registry_url(tmp_path: pathlib.Path) -> Iterator[str]:
    with ThreadedRegistry(tmp_path / "registry") as url:
        yield url


@pytest.fixture
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry_url}) as sr:
        yield sr


@pytest.fixture
def other_client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry_url}) as sr:
        yield sr


@pytest.fixture
def http(registry_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_url, timeout=10) as session:
        yield session


def framed_id(data: bytes) -> int:
    """Schema id from Confluent framing (magic 0 + 4-byte big-endian id), checking the magic."""
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    return int(schema_id)


def test_client_registers_and_reads_back(client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema(SUBJECT, Schema(V1, "AVRO"))
    same_id = client.register_schema("another-value", Schema(V1, "AVRO"))
    latest = client.get_latest_version(SUBJECT)
    pretty = json.dumps(json.loads(V1), indent=2)
    found = client.lookup_schema(SUBJECT, Schema(pretty, "AVRO"))

    assert same_id == schema_id
    assert (latest.subject, latest.version, latest.schema_id) == (SUBJECT, 1, schema_id)
    assert json.loads(latest.schema.schema_str) == json.loads(V1)
    assert (found.version, found.schema_id) == (1, schema_id)
    assert client.get_subjects() == ["another-value", SUBJECT]
    assert client.get_subjects(offset=1, limit=1) == [SUBJECT]
    assert client.get_versions(SUBJECT) == [1]
    assert sorted(client.get_subjects_by_schema_id(schema_id)) == ["another-value", SUBJECT]
    assert {(v.subject, v.version) for v in client.get_schema_versions(schema_id)} == {
        ("another-value", 1),
        (SUBJECT, 1),
    }
    assert client.get_schema_types() == ["AVRO"]


def test_compatibility_is_enforced_and_configurable(client: SchemaRegistryClient) -> None:
    client.register_schema(SUBJECT, Schema(V1, "AVRO"))

    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility(SUBJECT, Schema(V2_WITH_DEFAULT, "AVRO")) is True
    assert client.test_compatibility(SUBJECT, Schema(V2_NO_DEFAULT, "AVRO"), verbose=True) is False
    with pytest.raises(SchemaRegistryError) as exc_info:
        client.register_schema(SUBJECT, Schema(V2_NO_DEFAULT, "AVRO"))
    assert exc_info.value.http_status_code == 409
    assert exc_info.value.error_code == 40901

    assert client.set_compatibility(SUBJECT, "none") == {"compatibility": "NONE"}
    assert client.get_compatibility(SUBJECT) == "NONE"
    assert client.register_schema(SUBJECT, Schema(V2_NO_DEFAULT, "AVRO")) == 2
    assert client.get_latest_version(SUBJECT).version == 2
    assert client.delete_config(SUBJECT).compatibility_level is not None
    with pytest.raises(SchemaRegistryError) as unset:
        client.get_compatibility(SUBJECT)
    assert (unset.value.http_status_code, unset.value.error_code) == (404, 40408)


def test_serializer_auto_registers_and_second_client_deserializes(
    client: SchemaRegistryClient, other_client: SchemaRegistryClient
) -> None:
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    serialize = AvroSerializer(client, V1, conf={"auto.register.schemas": True})
    deserialize = AvroDeserializer(other_client)

    data = serialize(RECORD, ctx)

    assert data is not None
    assert framed_id(data) == other_client.get_latest_version(SUBJECT).schema_id == 1
    assert deserialize(data, ctx) == RECORD


def test_serializer_uses_latest_version_without_registering(
    client: SchemaRegistryClient, other_client: SchemaRegistryClient
) -> None:
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    client.register_schema("unrelated-value", Schema(json.dumps("string"), "AVRO"))
    schema_id = client.register_schema(SUBJECT, Schema(V2_WITH_DEFAULT, "AVRO"))
    serialize = AvroSerializer(
        client, V1, conf={"auto.register.schemas": False, "use.latest.version": True}
    )

    data = serialize({**RECORD, "interacting": 3}, ctx)

    assert data is not None
    assert framed_id(data) == schema_id == 2
    assert AvroDeserializer(other_client)(data, ctx) == {**RECORD, "interacting": 3}
    assert client.get_versions(SUBJECT) == [1]


def test_serializer_without_auto_register_needs_a_registered_schema(
    client: SchemaRegistryClient,
) -> None:
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    serialize = AvroSerializer(client, V1, conf={"auto.register.schemas": False})

    with pytest.raises(SchemaRegistryError) as exc_info:
        serialize(RECORD, ctx)

    assert (exc_info.value.http_status_code, exc_info.value.error_code) == (404, 40401)


def test_unknown_subject_answers_confluent_error_body(
    client: SchemaRegistryClient, http: httpx.Client
) -> None:
    response = http.get(f"/subjects/{SUBJECT}/versions")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(CONTENT_TYPE)
    assert response.json() == {"error_code": 40401, "message": f"Subject '{SUBJECT}' not found."}
    with pytest.raises(SchemaRegistryError) as exc_info:
        client.get_latest_version(SUBJECT)
    assert (exc_info.value.http_status_code, exc_info.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as no_schema:
        client.get_schema(99)
    assert (no_schema.value.http_status_code, no_schema.value.error_code) == (404, 40403)


def test_raw_http_endpoints(http: httpx.Client) -> None:
    body = {"schema": V1}
    headers = {"Content-Type": "application/json"}

    registered = http.post(f"/subjects/{SUBJECT}/versions", json=body, headers=headers)
    version = http.get(f"/subjects/{SUBJECT}/versions/latest")
    raw = http.get(f"/subjects/{SUBJECT}/versions/1/schema")
    by_id = http.get("/schemas/ids/1")
    verbose = http.post(
        f"/compatibility/subjects/{SUBJECT}/versions/latest?verbose=true",
        json={"schema": V2_NO_DEFAULT},
    )
    associations = http.get(
        f"/associations/resources/-/{TOPIC}",
        params={"resourceType": "topic", "associationType": "value"},
    )

    assert registered.json() == {"id": 1}
    assert version.json() == {"subject": SUBJECT, "version": 1, "id": 1, "schema": V1}
    assert json.loads(raw.text) == json.loads(V1)
    assert by_id.json() == {"schema": V1}
    assert verbose.json()["is_compatible"] is False
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in verbose.json()["messages"][0]
    assert associations.status_code == 200
    assert associations.json() == []
    assert http.get("/").json() == {}
    assert http.get("/config/nope", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": "BACKWARD"
    }
    assert http.get("/no/such/route").json() == {"error_code": 404, "message": "HTTP 404 Not Found"}
    assert http.post(f"/subjects/{SUBJECT}/versions", content=b"{nope").status_code == 400
    bad_version = http.get(f"/subjects/{SUBJECT}/versions/zero")
    assert (bad_version.status_code, bad_version.json()["error_code"]) == (422, 42202)
    bad_type = http.post(f"/subjects/{SUBJECT}/versions", json={**body, "schemaType": "JSON"})
    assert (bad_type.status_code, bad_type.json()["error_code"]) == (422, 42201)


def test_soft_and_permanent_delete_through_the_client(client: SchemaRegistryClient) -> None:
    client.register_schema(SUBJECT, Schema(V1, "AVRO"))
    client.register_schema(SUBJECT, Schema(V2_WITH_DEFAULT, "AVRO"))

    assert client.delete_version(SUBJECT, 2) == 2
    assert client.get_versions(SUBJECT) == [1]
    assert client.get_versions(SUBJECT, deleted=True) == [1, 2]
    assert client.delete_subject(SUBJECT) == [1]
    assert client.get_subjects() == []
    assert client.get_subjects(deleted=True) == [SUBJECT]
    with pytest.raises(SchemaRegistryError) as not_soft:
        client.delete_subject("never-value", permanent=True)
    assert not_soft.value.error_code == 40401
    assert client.delete_subject(SUBJECT, permanent=True) == [1, 2]
    assert client.get_subjects(deleted=True) == []


async def test_async_client_and_serdes_round_trip() -> None:
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    async with (
        RegistryServer() as server,
        AsyncSchemaRegistryClient({"url": server.url}) as writer_client,
        AsyncSchemaRegistryClient({"url": server.url}) as reader_client,
    ):
        serialize = await AsyncAvroSerializer(writer_client, V1)
        deserialize = await AsyncAvroDeserializer(reader_client)

        data = await serialize(RECORD, ctx)

        assert data is not None
        assert framed_id(data) == 1
        assert await deserialize(data, ctx) == RECORD
        latest = await reader_client.get_latest_version(SUBJECT)
        assert latest.schema_id == 1
        assert await reader_client.test_compatibility(SUBJECT, Schema(V2_NO_DEFAULT)) is False


# ---------------------------------------------------------------------------- subprocess
def start_subprocess(data_dir: pathlib.Path, log: Any) -> tuple[subprocess.Popen[str], str]:
    """Run the registry as ``python -m``; return the process and the URL it printed."""
    cmd = [sys.executable, "-m", "pipeline.local.registry_server"]
    proc = subprocess.Popen(
        [*cmd, "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        proc.kill()
        proc.wait(10)
        pytest.fail("registry subprocess printed no URL within 30 s")
    line = proc.stdout.readline()
    assert line.startswith("SCHEMA_REGISTRY_URL=http://127.0.0.1:"), line
    return proc, line.strip().split("=", 1)[1]


def stop_subprocess(
    proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM
) -> tuple[int, str]:
    """Signal the registry to stop; return its exit code and anything else it printed."""
    proc.send_signal(sig)
    try:
        code = proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.stdout is not None
    rest = proc.stdout.read()
    proc.stdout.close()
    return code, rest


def test_subprocess_stops_on_signals_and_keeps_data(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    with (tmp_path / "stderr.log").open("w") as log:
        proc, url = start_subprocess(data_dir, log)
        with SchemaRegistryClient({"url": url}) as sr:
            first = sr.register_schema(SUBJECT, Schema(V1, "AVRO"))
            second = sr.register_schema(SUBJECT, Schema(V2_WITH_DEFAULT, "AVRO"))
            sr.set_compatibility(SUBJECT, "FULL")
        assert stop_subprocess(proc) == (0, "")
        assert (data_dir / DATA_FILE_NAME).is_file()

        proc, url = start_subprocess(data_dir, log)
        try:
            with SchemaRegistryClient({"url": url}) as sr:
                latest = sr.get_latest_version(SUBJECT)
                assert (latest.version, latest.schema_id) == (2, second)
                assert json.loads(sr.get_schema(first).schema_str) == json.loads(V1)
                assert sr.get_compatibility(SUBJECT) == "FULL"
                assert sr.register_schema("fresh-value", Schema('"long"', "AVRO")) == 3
        finally:
            code, _ = stop_subprocess(proc, signal.SIGINT)
        assert code == 0
