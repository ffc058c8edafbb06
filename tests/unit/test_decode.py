"""The compiled Avro decoder reads exactly what fastavro reads, for every schema and evolution.

Every test compares :func:`compile_decoder` with ``fastavro.schemaless_reader`` on the same
bytes: random records of every schema in ``schemas/`` and ``schemas/history/`` (nulls,
unions, longs at the 64-bit edges, unicode), the project's own evolutions (metric v1 ↔ v2),
synthetic ones (added and removed fields, promotions), and random bytes (where the compiled
decoder may refuse more than fastavro, never return something else).
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import given, settings, strategies as st

from pipeline.core.contract import decode as decode_module
from pipeline.core.contract.decode import BODY_ERRORS, compile_decoder
from pipeline.core.contract.records import MetricRecord, new_metric_record
from pipeline.kafka.consumer import _plain_longs
from pipeline.kafka.schemas import HISTORY_DIR, load_schema, schema_dir
from tests.records import metric_record

Schema = dict[str, Any]

SCHEMA_FILES = sorted(schema_dir().glob("*.avsc")) + sorted(
    (schema_dir() / HISTORY_DIR).glob("*.avsc")
)


def _load(path: Path) -> Schema:
    schema: Schema = orjson.loads(path.read_bytes())
    return schema


def _pairs() -> list[tuple[str, Path, Path]]:
    # (id, writer, reader): every schema with itself, and every released version of a schema
    # with the current one in both directions (old writer → new reader and the reverse).
    out = [(path.name, path, path) for path in SCHEMA_FILES]
    for old in sorted((schema_dir() / HISTORY_DIR).glob("*.avsc")):
        current = schema_dir() / f"{old.name.split('.')[0]}.avsc"
        out.append((f"{old.name}->{current.name}", old, current))
        out.append((f"{current.name}->{old.name}", current, old))
    return out


# ----------------------------------------------------------------------------- values
_LONG_EDGES = [-(2**63), 2**63 - 1, -(2**63) + 1, 2**63 - 2, 0, -1, 1, 63, 64, -64, -65,
               2**31, -(2**31) - 1, 2**34, 2**41 - 1, 2**41]  # fmt: skip
_BASE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "string": st.text(max_size=70),  # unicode; > 63 UTF-8 bytes needs a 2-byte length
    "bytes": st.binary(max_size=70),
    "long": st.sampled_from(_LONG_EDGES) | st.integers(-(2**63), 2**63 - 1),
    # epoch milliseconds (6-byte varints: the timestamp memo) and anything else a long holds
    "timestamp": st.integers(2**34, 2**41 - 1)
    | st.sampled_from(_LONG_EDGES)
    | st.integers(-(2**63), 2**63 - 1),
    "int": st.sampled_from([-(2**31), 2**31 - 1, 0, -1, 63, -65])
    | st.integers(-(2**31), 2**31 - 1),
    "double": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0]),
    "float": st.floats(width=32, allow_nan=False),
    "boolean": st.booleans(),
}


def _strategy(avro_type: Any) -> st.SearchStrategy[Any]:
    if isinstance(avro_type, list):
        return st.one_of(*[_strategy(branch) for branch in avro_type])
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis":
            return _BASE["timestamp"]
        return _BASE[avro_type["type"]]
    return _BASE[avro_type]


def _records(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f["name"]: _strategy(f["type"]) for f in schema["fields"]})


def _same(value: Any) -> Any:
    # A comparable form: floats by their bits (NaN, -0.0), with the value's type.
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    return (type(value).__name__, value)


def _body(schema: Schema, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(_plain_longs(schema)), record)
    return buffer.getvalue()


def _fastavro(writer: Schema, reader: Schema, body: bytes) -> tuple[Any, ...]:
    buffer = io.BytesIO(body)
    parsed_writer = fastavro.parse_schema(_plain_longs(writer))
    parsed_reader = fastavro.parse_schema(_plain_longs(reader))
    record = fastavro.schemaless_reader(buffer, parsed_writer, parsed_reader)
    assert isinstance(record, dict)
    assert buffer.tell() == len(body)
    return tuple(record[f["name"]] for f in reader["fields"])


def _check_same(writer: Schema, reader: Schema, records: list[dict[str, Any]]) -> None:
    decode = compile_decoder(writer, reader)
    for record in records:  # several records through one decoder: the memo paths too
        body = _body(writer, record)
        expected = [_same(v) for v in _fastavro(writer, reader, body)]
        assert [_same(v) for v in decode(body, 0)] == expected
        framed = b"\x00\x00\x00\x00\x07" + body  # read from an offset, as from a Kafka value
        assert [_same(v) for v in decode(framed, 5)] == expected


@pytest.mark.parametrize(
    ("writer", "reader"), [p[1:] for p in _pairs()], ids=[p[0] for p in _pairs()]
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_records_of_every_schema_decode_like_fastavro(
    writer: Path, reader: Path, data: st.DataObject
) -> None:
    writer_schema, reader_schema = _load(writer), _load(reader)
    records = data.draw(st.lists(_records(writer_schema), min_size=1, max_size=5))
    _check_same(writer_schema, reader_schema, records)


def test_metric_v1_read_as_v2_has_the_new_columns_null() -> None:
    v1 = _load(schema_dir() / HISTORY_DIR / "metric.v1.avsc")
    fields = {f["name"]: getattr(metric_record(), f["name"]) for f in v1["fields"]}
    decode = compile_decoder(v1, load_schema("metric"), build=new_metric_record)

    record = decode(_body(v1, fields), 0)

    assert isinstance(record, MetricRecord)
    assert record == metric_record(
        count_negative=None, count_positive=None, current=None, p95=None, p99=None,
        calculated_metric_value=None,
    )  # fmt: skip


def test_build_makes_the_record_and_equals_the_tuple() -> None:
    schema = load_schema("metric")
    record = metric_record(count_negative=3, p99=1.5, calculated_metric_value=-(2**63))
    body = _body(schema, {f["name"]: getattr(record, f["name"]) for f in schema["fields"]})
    assert compile_decoder(schema, build=new_metric_record)(body, 0) == record
    assert new_metric_record(*compile_decoder(schema)(body, 0)) == record


# ----------------------------------------------------------------------------- evolutions
def _record_schema(*fields: tuple[str, Any] | dict[str, Any], name: str = "R") -> Schema:
    return {
        "type": "record",
        "name": name,
        "namespace": "test",
        "fields": [f if isinstance(f, dict) else {"name": f[0], "type": f[1]} for f in fields],
    }


_TS = {"type": "long", "logicalType": "timestamp-millis"}
EVOLUTIONS: dict[str, tuple[Schema, Schema]] = {
    "added fields with defaults": (
        _record_schema(("a", "string")),
        _record_schema(
            ("a", "string"),
            {"name": "note", "type": "string", "default": "none"},
            {"name": "n", "type": ["null", "long"], "default": None},
            {"name": "d", "type": "double", "default": 0},
            {"name": "s", "type": ["string", "null"], "default": "x"},
            {"name": "flag", "type": "boolean", "default": True},
        ),
    ),
    "removed fields of every type": (
        _record_schema(
            ("a", "string"),
            ("s", "string"),
            ("b", "bytes"),
            ("i", "int"),
            ("l", "long"),
            ("t", _TS),
            ("f", "float"),
            ("d", "double"),
            ("o", "boolean"),
            ("z", "null"),
            ("ns", ["null", "string"]),
            ("nd", ["double", "null"]),
            ("nt", ["null", _TS]),
        ),
        _record_schema(("a", "string")),
    ),
    "promotions": (
        _record_schema(
            ("il", "int"),
            ("if", "int"),
            ("id", "int"),
            ("lf", "long"),
            ("ld", "long"),
            ("fd", "float"),
            ("sb", "string"),
            ("bs", "bytes"),
            ("ln", "long"),
            ("nil", ["null", "int"]),
            ("nld", ["long", "null"]),
        ),
        _record_schema(
            ("il", "long"),
            ("if", "float"),
            ("id", "double"),
            ("lf", "float"),
            ("ld", "double"),
            ("fd", "double"),
            ("sb", "bytes"),
            ("bs", "string"),
            ("ln", ["null", "long"]),
            ("nil", ["null", "long"]),
            ("nld", ["null", "double"]),
        ),
    ),
    "union order and reordered fields": (
        _record_schema(("a", ["string", "null"]), ("b", "long"), ("c", ["null", "double"])),
        _record_schema(("c", ["double", "null"]), ("a", ["null", "string"]), ("b", "long")),
    ),
}


@pytest.mark.parametrize("name", list(EVOLUTIONS))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_evolutions_decode_like_fastavro(name: str, data: st.DataObject) -> None:
    writer, reader = EVOLUTIONS[name]
    if name == "promotions":  # bytes → string: only UTF-8 bytes are strings
        records = data.draw(st.lists(_records(writer), min_size=1, max_size=3))
        for record in records:
            record["bs"] = data.draw(st.text(max_size=20)).encode()
    else:
        records = data.draw(st.lists(_records(writer), min_size=1, max_size=3))
    _check_same(writer, reader, records)


def test_a_null_read_into_a_non_nullable_field_fails_like_fastavro() -> None:
    writer = _record_schema(("a", ["null", "long"]))
    reader = _record_schema(("a", "long"))
    decode = compile_decoder(writer, reader)
    assert decode(_body(writer, {"a": 5}), 0) == (5,)
    body = _body(writer, {"a": None})
    with pytest.raises(BODY_ERRORS):
        decode(body, 0)
    with pytest.raises(SchemaResolutionError):
        _fastavro(writer, reader, body)


@pytest.mark.parametrize(
    ("writer", "reader", "why"),
    [
        (_record_schema(("a", {"type": "record", "name": "In", "fields": []})), None, "type"),
        (_record_schema(("a", {"type": "array", "items": "long"})), None, "type"),
        (_record_schema(("a", {"type": "map", "values": "long"})), None, "type"),
        (_record_schema(("a", {"type": "enum", "name": "E", "symbols": ["X"]})), None, "type"),
        (_record_schema(("a", {"type": "fixed", "name": "F", "size": 2})), None, "type"),
        (_record_schema(("a", "test.Other")), None, "type"),
        (_record_schema(("a", ["null", "long", "string"])), None, "union"),
        (
            _record_schema(("a", {"type": "bytes", "logicalType": "decimal", "precision": 4})),
            None,
            "logical type",
        ),
        (_record_schema(("a", "long")), _record_schema(("a", "int")), "does not resolve"),
        (_record_schema(("a", "long")), _record_schema(("b", "long")), "no usable default"),
        (_record_schema(("a", "long")), _record_schema(("a", "long"), name="S"), "is not"),
        (
            _record_schema(("a", "long")),
            _record_schema({"name": "b", "type": "long", "aliases": ["a"]}),
            "aliases",
        ),
        ({"type": "array", "items": "long"}, None, "not a record"),
    ],
)
def test_what_the_compiler_does_not_support_is_refused(
    writer: Schema, reader: Schema | None, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        compile_decoder(writer, reader)


# ----------------------------------------------------------------------------- bad bytes
def _metric_body() -> bytes:
    schema = load_schema("metric")
    record = metric_record()
    return _body(schema, {f["name"]: getattr(record, f["name"]) for f in schema["fields"]})


def test_every_truncation_and_any_left_over_byte_fails() -> None:
    decode, body = compile_decoder(load_schema("metric")), _metric_body()
    decode(body, 0)
    for cut in range(len(body)):
        with pytest.raises(BODY_ERRORS):
            decode(body[:cut], 0)
    with pytest.raises(BODY_ERRORS, match="1 bytes left over"):
        decode(body + b"\x00", 0)


@pytest.mark.parametrize(
    "body",
    [
        b"\x01",  # a negative length (zigzag -1)
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint over 10 bytes
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # 10 bytes, beyond 64 bits
        b"\x04ab\x04",  # a union index that is no branch
    ],
)
def test_malformed_bodies_fail(body: bytes) -> None:
    schema = _record_schema(("a", "string"), ("b", ["null", "long"]))
    if body.startswith(b"\xff"):
        schema = _record_schema(("a", "long"))
    with pytest.raises(BODY_ERRORS):
        compile_decoder(schema)(body, 0)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.name for p in SCHEMA_FILES])
@settings(max_examples=150, deadline=None)
@given(garbage=st.binary(max_size=120), keep=st.integers(0, 200))
def test_on_random_bytes_the_compiled_decoder_never_disagrees_with_fastavro(
    path: Path, garbage: bytes, keep: int
) -> None:
    schema = _load(path)
    body = _metric_body()[:keep] + garbage if path.name.startswith("metric") else garbage
    try:
        ours = compile_decoder(schema)(body, 0)
    except BODY_ERRORS:
        return  # refused: the caller asks fastavro (which may read it or say why not)
    assert [_same(v) for v in ours] == [_same(v) for v in _fastavro(schema, schema, body)]


def test_memos_that_overflow_still_read_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "_MEMO_LIMIT", 2)
    schema = load_schema("metric")
    records = []
    for i in range(30):
        record = metric_record(event_time=2**40 + i % 7, ingest_time=2**40 + i)
        records.append({f["name"]: getattr(record, f["name"]) for f in schema["fields"]})
    _check_same(schema, schema, records)


def test_a_nan_double_keeps_its_bits() -> None:
    schema = _record_schema(("d", "double"))
    body = struct.pack("<d", math.nan)
    (value,) = compile_decoder(schema)(body, 0)
    assert math.isnan(value)
