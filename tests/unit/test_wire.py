"""Confluent framing and the compiled Avro encoder: golden bytes and byte equality with fastavro."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings, strategies as st

import pipeline.core.contract.wire as wire
from pipeline.core.contract.records import AuditRecord, DeadLetterRecord, MetricRecord
from pipeline.core.contract.wire import (
    compile_encoder,
    confluent_header,
    encode_fastavro,
    split_confluent,
    zigzag_varint,
)
from pipeline.errors import EncodeError

SCHEMAS = Path(__file__).parents[2] / "schemas"
RECORD_CLASSES: dict[str, type[Any]] = {
    "metric": MetricRecord,
    "audit": AuditRecord,
    "dead_letter": DeadLetterRecord,
}


def load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((SCHEMAS / f"{name}.avsc").read_text())
    return result


def record(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": "T", "fields": fields}


# ----------------------------------------------------------------------------- framing
@pytest.mark.parametrize(
    ("schema_id", "header"),
    [
        (0, b"\x00\x00\x00\x00\x00"),
        (1, b"\x00\x00\x00\x00\x01"),
        (0x01020304, b"\x00\x01\x02\x03\x04"),
        (2**31 - 1, b"\x00\x7f\xff\xff\xff"),
    ],
)
def test_header_is_magic_zero_and_big_endian_id(schema_id: int, header: bytes) -> None:
    assert confluent_header(schema_id) == header
    assert split_confluent(header + b"body") == (schema_id, b"body")


@pytest.mark.parametrize("schema_id", [-1, 2**31, 2**32])
def test_header_rejects_ids_out_of_range(schema_id: int) -> None:
    with pytest.raises(ValueError, match="schema id out of range"):
        confluent_header(schema_id)


def test_split_accepts_memoryview_and_empty_body() -> None:
    assert split_confluent(memoryview(b"\x00\x00\x00\x00\x07")) == (7, b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes"),
        (b"\x00\x00\x00\x01", "4 bytes"),
        (b"\x01\x00\x00\x00\x01body", "magic byte 1"),
    ],
)
def test_split_rejects_short_or_bad_magic(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_confluent(data)


# ----------------------------------------------------------------------------- varints
@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (-1, "01"),
        (1, "02"),
        (-64, "7f"),
        (63, "7e"),
        (64, "8001"),
        (-65, "8101"),
        (1_735_550_000_000, "80eebaed8265"),
        (1_735_550_000_123, "f6efbaed8265"),
        (2**63 - 1, "feffffffffffffffff01"),
        (-(2**63), "ffffffffffffffffff01"),
    ],
)
def test_zigzag_varint_golden(n: int, encoded: str) -> None:
    assert zigzag_varint(n).hex() == encoded
    assert encode_fastavro(fastavro.parse_schema(record([{"name": "n", "type": "long"}])),
                           {"n": n}).hex() == encoded  # fmt: skip


# ----------------------------------------------------------------------------- golden bytes
GOLDEN_SCHEMA = record(
    [
        {"name": "s", "type": "string"},
        {"name": "n", "type": "long"},
        {"name": "big", "type": "long"},
        {"name": "opt", "type": ["null", "string"]},
        {"name": "opt2", "type": ["null", "string"]},
        {"name": "d", "type": "double"},
        {"name": "f", "type": "float"},
        {"name": "b", "type": "boolean"},
        {"name": "raw", "type": "bytes"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "rev", "type": ["long", "null"]},
        {"name": "rev2", "type": ["long", "null"]},
        {"name": "nd", "type": ["null", "double"]},
        {"name": "i", "type": "int"},
        {"name": "nb", "type": ["null", "boolean"]},
        {"name": "nbytes", "type": ["null", "bytes"]},
        {"name": "nts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "nothing", "type": "null"},
    ]
)
GOLDEN_VALUES: dict[str, Any] = {
    "s": "é", "n": -1, "big": 2**63 - 1, "opt": None, "opt2": "a", "d": 1.0, "f": 1.5,
    "b": True, "raw": b"", "ts": 1, "rev": None, "rev2": 5, "nd": -0.0, "i": 64, "nb": False,
    "nbytes": b"\xff", "nts": 1_735_550_000_000, "nothing": None,
}  # fmt: skip
# Written out by hand from the Avro 1.11 spec, "Binary Encoding".
GOLDEN_BYTES = bytes.fromhex(
    "04c3a9"  # s: length 2 (zigzag 4), UTF-8 of é
    "01"  # n: -1
    "feffffffffffffffff01"  # big: 2^63 - 1
    "00"  # opt: branch 0 (null)
    "020261"  # opt2: branch 1, length 1, "a"
    "000000000000f03f"  # d: 1.0 little-endian
    "0000c03f"  # f: 1.5 little-endian float32
    "01"  # b: true
    "00"  # raw: length 0
    "02"  # ts: 1
    "02"  # rev: [long, null] → null is branch 1
    "000a"  # rev2: branch 0, 5
    "020000000000000080"  # nd: branch 1, -0.0
    "8001"  # i: 64
    "0200"  # nb: branch 1, false
    "0202ff"  # nbytes: branch 1, length 1, ff
    "0280eebaed8265"  # nts: branch 1, timestamp
    ""  # nothing: a null writes no bytes
)


def test_golden_bytes_of_every_supported_type() -> None:
    encode = compile_encoder(GOLDEN_SCHEMA)
    assert encode(SimpleNamespace(**GOLDEN_VALUES)) == GOLDEN_BYTES
    assert encode_fastavro(fastavro.parse_schema(GOLDEN_SCHEMA), GOLDEN_VALUES) == GOLDEN_BYTES


GOLDEN_METRIC = MetricRecord(
    "0123456789abcdef0123456789abcdef", "v2.analytics.queues.q1.observations", "queue", "q1",
    "tAnswered", None, "voice", 1_735_550_000_000, 1_735_551_800_000, 2, 8277.0, 3000.0, 5277.0,
    None, None, None, None, 0, 2, None, 5200.0, None, 1_733_220_000_000, 8277.0, "ms", False,
    1_735_550_000_123, 1_735_550_000_123, True, "p0", "c-1",
)  # fmt: skip
# Written out by hand, field by field (doubles are IEEE 754 little-endian).
GOLDEN_METRIC_BYTES = bytes.fromhex(
    "40" + b"0123456789abcdef0123456789abcdef".hex()  # event_id: length 32
    + "46" + b"v2.analytics.queues.q1.observations".hex()  # source_topic: length 35
    + "0a" + b"queue".hex() + "04" + b"q1".hex() + "12" + b"tAnswered".hex()
    + "00"  # qualifier: null
    + "020a" + b"voice".hex()  # media_type: branch 1, length 5
    + "0280eebaed8265" + "0280cb96ef8265"  # interval_start / interval_end
    + "0204"  # count: 2
    + "0200000000802ac040"  # sum: 8277.0
    + "02000000000070a740"  # min: 3000.0
    + "0200000000009db440"  # max: 5277.0
    + "00000000"  # ratio, numerator, denominator, target: null
    + "0200" + "0204"  # count_negative: 0, count_positive: 2
    + "00"  # current: null
    + "02000000000050b440"  # p95: 5200.0
    + "00"  # p99: null
    + "028084b3bff164"  # calculated_metric_value: 1733220000000 (zigzag varint)
    + "0200000000802ac040"  # value: 8277.0
    + "04" + b"ms".hex()  # unit
    + "00"  # derived: false
    + "f6efbaed8265" + "f6efbaed8265"  # event_time, ingest_time
    + "01"  # backfill: true
    + "04" + b"p0".hex()  # producer_instance
    + "0206" + b"c-1".hex()  # correlation_id: branch 1, length 3
    + "04"  # schema_version: 2
)  # fmt: skip


def test_golden_bytes_of_a_metric_record() -> None:
    assert compile_encoder(load("metric"))(GOLDEN_METRIC) == GOLDEN_METRIC_BYTES
    parsed = fastavro.parse_schema(load("metric"))
    assert encode_fastavro(parsed, GOLDEN_METRIC) == GOLDEN_METRIC_BYTES


# ----------------------------------------------------------------------------- hypothesis
_BASE = {
    "string": st.text(max_size=40),
    "bytes": st.binary(max_size=40),
    "long": st.integers(-(2**63), 2**63 - 1),
    "int": st.integers(-(2**31), 2**31 - 1),
    "double": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0]),
    "boolean": st.booleans(),
}


def _strategy(avro_type: Any) -> st.SearchStrategy[Any]:
    if isinstance(avro_type, list):
        (other,) = [t for t in avro_type if t != "null"]
        return st.none() | _strategy(other)
    if isinstance(avro_type, dict):
        return _BASE[avro_type["type"]]
    return _BASE[avro_type]


def _records(name: str) -> st.SearchStrategy[Any]:
    cls = RECORD_CLASSES[name]
    fields = {f["name"]: _strategy(f["type"]) for f in load(name)["fields"]}
    return st.builds(cls, **fields)


def _same_bytes(name: str, items: list[Any]) -> None:
    parsed = fastavro.parse_schema(load(name))
    encode = compile_encoder(load(name))
    for item in items:
        ours = encode(item)
        assert ours == encode_fastavro(parsed, item)
        assert encode(item) == ours  # the memo path gives the same bytes again


@settings(max_examples=150, deadline=None)
@given(st.lists(_records("metric"), min_size=1, max_size=4))
def test_metric_records_encode_like_fastavro(items: list[MetricRecord]) -> None:
    _same_bytes("metric", items)


@settings(max_examples=150, deadline=None)
@given(st.lists(_records("audit"), min_size=1, max_size=4))
def test_audit_records_encode_like_fastavro(items: list[AuditRecord]) -> None:
    _same_bytes("audit", items)


@settings(max_examples=150, deadline=None)
@given(st.lists(_records("dead_letter"), min_size=1, max_size=4))
def test_dead_letter_records_encode_like_fastavro(items: list[DeadLetterRecord]) -> None:
    _same_bytes("dead_letter", items)


@pytest.mark.parametrize("name", list(RECORD_CLASSES))
def test_all_nulls_and_extremes_encode_like_fastavro(name: str) -> None:
    cls = RECORD_CLASSES[name]
    extremes = {"string": "", "bytes": b"", "long": -(2**63), "int": -(2**31),
                "double": math.nan, "boolean": False}  # fmt: skip
    values: dict[str, Any] = {}
    for f in load(name)["fields"]:
        kind = f["type"]
        values[f["name"]] = None if isinstance(kind, list) else extremes[
            kind["type"] if isinstance(kind, dict) else kind]  # fmt: skip
    _same_bytes(name, [cls(**values)])


def test_memo_overflow_keeps_bytes_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "_MEMO_LIMIT", 2)
    base = dataclasses.replace(GOLDEN_METRIC)
    items = [
        dataclasses.replace(base, entity_id=f"q{i % 5}", count=i, event_time=i * 1000)
        for i in range(20)
    ]
    _same_bytes("metric", items)


@pytest.mark.parametrize("unique", [(), ("event_id",), ("event_id", "entity_id", "count")])
def test_unique_fields_change_nothing_in_the_bytes(unique: tuple[str, ...]) -> None:
    encode = compile_encoder(load("metric"), unique_fields=unique)
    assert encode(GOLDEN_METRIC) == encode_fastavro(fastavro.parse_schema(load("metric")),
                                                    GOLDEN_METRIC)  # fmt: skip


def test_a_fastavro_parsed_schema_compiles_the_same() -> None:
    parsed: Any = fastavro.parse_schema(load("metric"))
    assert compile_encoder(parsed)(GOLDEN_METRIC) == compile_encoder(load("metric"))(GOLDEN_METRIC)


def test_a_keyword_field_name_is_read_with_getattr() -> None:
    schema = record([{"name": "class", "type": "string"}, {"name": "from", "type": "long"}])
    item = SimpleNamespace(**{"class": "x", "from": 3})
    expected = encode_fastavro(fastavro.parse_schema(schema), {"class": "x", "from": 3})
    assert compile_encoder(schema)(item) == expected


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("field_type", "message"),
    [
        ({"type": "record", "name": "Inner", "fields": []}, "type 'record' is not supported"),
        ({"type": "array", "items": "string"}, "type 'array' is not supported"),
        ({"type": "map", "values": "long"}, "type 'map' is not supported"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "type 'enum' is not supported"),
        ({"type": "fixed", "name": "F", "size": 4}, "type 'fixed' is not supported"),
        (["null", "string", "long"], "union .* is not supported"),
        (["string", "long"], "union .* is not supported"),
        (["null", "null"], "union .* is not supported"),
        (["null", {"type": "array", "items": "long"}], "type 'array' is not supported"),
        (["null", ["null", "string"]], "nested union"),
        ("io.example.Named", "named type reference"),
        ({"type": "int", "logicalType": "date"}, "logical type 'date'"),
        ({"type": "long", "logicalType": "timestamp-micros"}, "logical type 'timestamp-micros'"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 4}, "logical type 'decimal'"),
        ({"type": "string", "logicalType": "timestamp-millis"}, "logical type"),
        (42, "unreadable type"),
    ],
)
def test_unsupported_schema_features_are_refused(field_type: Any, message: str) -> None:
    schema = record([{"name": "ok", "type": "string"}, {"name": "x", "type": field_type}])
    with pytest.raises(ValueError, match=message):
        compile_encoder(schema)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "only a record schema"),
        ({"type": "record", "name": "T"}, "only a record schema"),
        (record([{"name": "1bad", "type": "string"}]), "field 0 has no valid Avro name"),
        (record([{"type": "string"}]), "field 0 has no valid Avro name"),
        (record(["string"]), "field 0 has no valid Avro name"),  # type: ignore[list-item]
    ],
)
def test_schemas_that_are_not_flat_records_are_refused(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compile_encoder(schema)


# ----------------------------------------------------------------------------- ranges
@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**64 - 1, 10**30, -(10**30)])
def test_zigzag_refuses_a_long_outside_64_bits(n: int) -> None:
    with pytest.raises(EncodeError, match="outside the 64-bit range"):
        zigzag_varint(n)


@pytest.mark.parametrize("n", [2**63 - 1, -(2**63)])
def test_zigzag_writes_the_64_bit_extremes(n: int) -> None:
    assert zigzag_varint(n) == encode_fastavro(
        fastavro.parse_schema(record([{"name": "n", "type": "long"}])), {"n": n}
    )


@pytest.mark.parametrize(
    ("field_type", "value"),
    [("long", 2**64), (["null", "long"], 10**30), ("int", 2**31), (["null", "int"], -(2**31) - 1)],
)
def test_compiled_encoder_names_the_field_whose_number_does_not_fit(
    field_type: object, value: int
) -> None:
    encode = compile_encoder(
        record([{"name": "a", "type": "string"}, {"name": "count", "type": field_type}])
    )
    with pytest.raises(EncodeError, match=r"T\.count: .* does not fit"):
        encode(SimpleNamespace(a="x", count=value))


def test_compiled_encoder_writes_the_int_extremes() -> None:
    schema = record([{"name": "i", "type": "int"}])
    encode = compile_encoder(schema)
    for n in (2**31 - 1, -(2**31)):
        assert encode(SimpleNamespace(i=n)) == encode_fastavro(
            fastavro.parse_schema(schema), {"i": n}
        )
