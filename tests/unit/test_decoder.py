"""The Avro decoder raises one error type for every bad value, with a readable reason.

The registry side is a small in-memory :class:`SchemaLookup` that answers like
``SchemaRegistryClient`` (``tests/integration/test_kafka_consumer.py`` asks a real one).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import fastavro
import orjson
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from hypothesis import given, settings, strategies as st

from pipeline.core.contract.records import MetricRecord, new_metric_record
from pipeline.core.contract.wire import confluent_header
from pipeline.errors import DecodeError, RegistryUnavailableError, SchemaError
from pipeline.kafka.consumer import AvroDecoder
from pipeline.kafka.outbox import Outbox
from pipeline.kafka.schemas import HISTORY_DIR, load_schema, schema_path
from tests.records import metric_record

METRIC_ID, BROKEN_ID, STRING_METRIC_ID, NOT_AVRO_ID = 1, 2, 3, 4
ADDED_IN_V2 = ("count_negative", "count_positive", "current", "p95", "p99",
               "calculated_metric_value")  # fmt: skip


class Lookup:
    """Schema ids → schema text; unknown ids get the registry's 404 (error code 40403)."""

    def __init__(self, schemas: dict[int, str | Exception]) -> None:
        self.schemas = schemas
        self.asked: list[int] = []
        self.closed = False

    def get_schema(self, schema_id: int) -> Schema:
        self.asked.append(schema_id)
        text = self.schemas.get(schema_id)
        if text is None:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        if isinstance(text, Exception):
            raise text
        return Schema(text, "AVRO")

    def close(self) -> None:
        self.closed = True


def _metric_schema_with(field: str, avro_type: Any) -> dict[str, Any]:
    schema = load_schema("metric")
    changed = {"name": field, "type": avro_type}  # no default: the old one may not fit
    fields = [changed if f["name"] == field else f for f in schema["fields"]]
    return {**schema, "fields": fields}


def new_decoder(**extra: str | Exception) -> tuple[AvroDecoder, Lookup]:
    schemas: dict[int, str | Exception] = {
        METRIC_ID: orjson.dumps(load_schema("metric")).decode(),
        STRING_METRIC_ID: orjson.dumps(_metric_schema_with("count", "string")).decode(),
        NOT_AVRO_ID: '{"type": "record", "name": "x", "fields": [{"name": "a", "type": "nope"}]}',
    }
    lookup = Lookup({**schemas, **{int(k.removeprefix("id")): v for k, v in extra.items()}})
    return AvroDecoder("http://registry.invalid", "metric", lookup=lookup), lookup


def encoded(record: MetricRecord | None = None) -> bytes:
    outbox = Outbox("genesys", {"genesys.metrics": METRIC_ID, "genesys.current": 9}, "p-0")
    return outbox.metric(record or metric_record()).value


def decode_error(value: bytes | None, decoder: AvroDecoder | None = None) -> DecodeError:
    """The error of decoding ``value`` twice with one decoder: the second time the writer
    schema is cached (and compiled), so both the cold and the compiled path must say the same."""
    decoder = decoder or new_decoder()[0]
    errors = []
    for _ in range(2):
        with pytest.raises(DecodeError) as caught:
            decoder.decode(value, topic="genesys.metrics", partition=2, offset=41)
        errors.append(caught.value)
    assert errors[0].reason == errors[1].reason
    return errors[1]


def test_decoder_reads_a_value_into_the_record() -> None:
    decoder, lookup = new_decoder()
    record = metric_record()
    assert MetricRecord(**decoder.decode(encoded(record))) == record
    assert MetricRecord(**decoder.decode(encoded(record))) == record
    assert lookup.asked == [METRIC_ID]  # writer schemas are cached
    decoder.close()
    assert lookup.closed


def test_decoder_compiles_each_writer_schema_once_and_reads_with_it() -> None:
    decoder, _ = new_decoder()
    records = [metric_record(), metric_record(entity_id="q-2", count=None, sum=2.5)]
    for record in records * 2:
        assert new_metric_record(*decoder.decode_values(encoded(record))) == record
        assert MetricRecord(**decoder.decode(encoded(record))) == record
    assert decoder._compiled[METRIC_ID] is not None
    assert decoder.fields == tuple(f["name"] for f in load_schema("metric")["fields"])


def test_a_writer_schema_the_compiler_refuses_is_read_by_fastavro(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A writer with a nested record field the reader does not have: fastavro reads past it.
    schema = load_schema("metric")
    nested = {"name": "extra", "type": {"type": "record", "name": "Extra",
              "fields": [{"name": "n", "type": "long"}]}}  # fmt: skip
    writer = {**schema, "fields": [*schema["fields"], nested]}
    fields = {**dataclasses.asdict(metric_record()), "extra": {"n": 7}}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(writer), fields)
    decoder, _ = new_decoder(id8=orjson.dumps(writer).decode())
    caplog.set_level("INFO", logger="pipeline.kafka.consumer")

    for _ in range(2):
        values = decoder.decode_values(confluent_header(8) + body.getvalue())
        assert new_metric_record(*values) == metric_record()
    assert decoder._compiled[8] is None
    assert "schema id 8 is read with fastavro" in caplog.text


def test_decoder_reads_a_version_1_record_with_the_new_stats_as_null() -> None:
    # docs/kafka-contract.md "Changes": new readers of old data get nulls.
    v1 = orjson.loads(
        schema_path("metric").parent.joinpath(HISTORY_DIR, "metric.v1.avsc").read_bytes()
    )
    old = {k: v for k, v in dataclasses.asdict(metric_record()).items() if k not in ADDED_IN_V2}
    old["schema_version"] = 1
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1), old)
    decoder, _ = new_decoder(id7=orjson.dumps(v1).decode())

    for _ in range(2):  # the first read fetches the schema; the second uses the compiled one
        record = MetricRecord(**decoder.decode(confluent_header(7) + body.getvalue()))
        assert record == metric_record(schema_version=1)
        assert all(getattr(record, name) is None for name in ADDED_IN_V2)
    assert decoder._compiled[7] is not None


@pytest.mark.parametrize("value", [None, b""])
def test_decoder_refuses_a_missing_value(value: bytes | None) -> None:
    error = decode_error(value)
    assert error.reason == "no value (a tombstone or an empty record)"
    assert error.raw == b""


def test_decode_error_says_where_and_keeps_the_bytes() -> None:
    value = b"\x07garbage"
    error = decode_error(value)
    assert (error.raw, error.topic, error.partition, error.offset) == (
        value, "genesys.metrics", 2, 41)  # fmt: skip
    assert (
        str(error) == "genesys.metrics[2]@41: not Confluent wire format: magic byte 7, expected 0"
    )
    assert str(DecodeError("why", b"")) == "why"


@pytest.mark.parametrize("cut", [1, 4])
def test_decoder_refuses_a_value_too_short_for_the_header(cut: int) -> None:
    error = decode_error(encoded()[:cut])
    assert error.reason == f"not Confluent wire format: {cut} bytes, need at least 5"


def test_decoder_refuses_an_unknown_magic_byte() -> None:
    error = decode_error(b"\x01" + encoded()[1:])
    assert error.reason == "not Confluent wire format: magic byte 1, expected 0"


@pytest.mark.parametrize("cut", [6, 20, -1])
def test_decoder_refuses_a_truncated_body(cut: int) -> None:
    error = decode_error(encoded()[:cut])
    assert error.reason.startswith(f"Avro body does not match schema id {METRIC_ID}: EOFError")


def test_decoder_refuses_bytes_left_over_after_the_record() -> None:
    error = decode_error(encoded() + b"\x00\x00")
    assert error.reason == f"2 bytes left over after the record of schema id {METRIC_ID}"


def test_decoder_refuses_a_body_that_is_not_utf8_where_a_string_is() -> None:
    body = b"\x04\xff\xfe"  # event_id: a 2-byte string that is not UTF-8
    error = decode_error(confluent_header(METRIC_ID) + body)
    assert "UnicodeDecodeError" in error.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_raises_only_decode_errors_on_garbage(body: bytes) -> None:
    decoder, value = new_decoder()[0], confluent_header(METRIC_ID) + body
    outcome = _outcome(decoder, value)
    again = _outcome(decoder, value)  # the schema is cached now: the compiled decoder first
    if isinstance(outcome, DecodeError):
        assert isinstance(again, DecodeError)
        assert again.reason == outcome.reason
    else:
        assert repr(again) == repr(outcome)  # repr: NaN equals itself
    if isinstance(outcome, DecodeError):
        assert outcome.reason
        assert outcome.raw == value
    else:
        assert list(outcome) == [f["name"] for f in load_schema("metric")["fields"]]


def _outcome(decoder: AvroDecoder, value: bytes) -> dict[str, Any] | DecodeError:
    try:
        return decoder.decode(value)
    except DecodeError as exc:
        return exc


def test_decoder_refuses_an_unknown_schema_id() -> None:
    error = decode_error(confluent_header(77) + b"\x00")
    assert error.reason == "schema id 77 is not in the registry"


def test_decoder_refuses_a_writer_schema_that_does_not_resolve() -> None:
    writer = fastavro.parse_schema(_metric_schema_with("count", "string"))
    fields = dataclasses.asdict(metric_record())
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, {**fields, "count": "three"})
    error = decode_error(confluent_header(STRING_METRIC_ID) + buffer.getvalue())
    assert error.reason.startswith(
        f"schema id {STRING_METRIC_ID} does not resolve to this build's schema:"
    )


def test_decoder_refuses_a_writer_schema_that_is_not_avro() -> None:
    error = decode_error(confluent_header(NOT_AVRO_ID) + b"\x00")
    assert error.reason.startswith(f"schema id {NOT_AVRO_ID} is not a usable Avro schema:")


@pytest.mark.parametrize(
    "failure",
    [SchemaRegistryError(503, 50301, "unavailable"), ConnectionError("refused")],
)
def test_an_unreachable_registry_is_no_decode_error(failure: Exception) -> None:
    decoder, _ = new_decoder(id5=failure)
    with pytest.raises(RegistryUnavailableError, match="schema id 5") as caught:
        decoder.decode(confluent_header(5) + b"\x00")
    assert not isinstance(caught.value, DecodeError)
    assert "refused" not in str(caught.value)  # the client's text may hold the URL: left out


def test_a_failed_lookup_is_asked_again() -> None:
    decoder, lookup = new_decoder(id5=SchemaRegistryError(503, 50301, "unavailable"))
    for _ in range(2):
        with pytest.raises(SchemaError):
            decoder.decode(confluent_header(5) + b"\x00")
    assert lookup.asked == [5, 5]


def test_a_registry_refusing_access_is_a_schema_error_but_not_unavailable() -> None:
    decoder, _ = new_decoder(id5=SchemaRegistryError(401, 40101, "unauthorized"))
    with pytest.raises(SchemaError, match="HTTP 401") as caught:
        decoder.decode(confluent_header(5) + b"\x00")
    assert not isinstance(caught.value, RegistryUnavailableError | DecodeError)


def test_only_values_of_an_uncached_schema_id_need_the_registry() -> None:
    decoder, lookup = new_decoder()
    value = encoded()

    assert decoder.needs_registry(value)
    decoder.decode(value)
    assert not decoder.needs_registry(value)
    assert not decoder.needs_registry(b"\x00\x00")  # not framed: a decode error, no lookup
    assert not decoder.needs_registry(None)
    assert lookup.asked == [METRIC_ID]


def test_the_registry_client_gets_a_timeout_and_makes_one_attempt() -> None:
    decoder = AvroDecoder("http://registry.invalid", "metric", timeout_s=2.5)
    try:
        rest = decoder._registry._rest_client  # type: ignore[attr-defined]  # the client's own
        assert (rest.timeout, rest.max_retries) == (2.5, 0)
    finally:
        decoder.close()
