"""The Kafka value bytes: Confluent wire framing around an Avro body, and a fast Avro encoder.

Confluent wire format (confluent-kafka-python ``schema_registry/common/serde.py``): one magic
byte ``0``, the schema id as a 4-byte big-endian integer, then the Avro binary body written
without a container header (what ``fastavro.schemaless_writer`` writes).

Why a second encoder next to fastavro: for small flat records fastavro's per-call overhead
(about 6 µs) dominates, and the hot path writes one record per metric datum
(``reference/perf-notes.md``: ~141k records/s through ``schemaless_writer`` against ~439k
with a schema-specialised encoder on the same machine). :func:`compile_encoder` reads a flat
record schema once, at start-up, and generates one Python function for it: a single
``b"".join`` over a tuple with one expression per field, using zigzag varints (memoised per
field: timestamps and short strings repeat across the records of a frame) and precompiled
``struct`` packers for doubles. It supports exactly what our ``schemas/*.avsc`` use and
refuses anything else at compile time, so it can never mis-encode silently; the tests compare
its output with fastavro byte for byte (golden bytes and hypothesis). A number outside its
type (a ``long`` beyond 64 bits, an ``int`` beyond 32) raises
:class:`~pipeline.errors.EncodeError` naming the field instead of wrapping round: the check
costs one shift on a multi-byte varint, and the field is looked up only when it fails.

Avro binary encoding (Avro 1.11 specification, "Binary Encoding"): ``int``/``long`` are zigzag
varints; ``float``/``double`` little-endian IEEE 754; ``boolean`` one byte; ``bytes``/``string``
a long length then the bytes (UTF-8 for strings); ``null`` nothing; a union the branch index
as a long, then the value.
"""

from __future__ import annotations

import io
import keyword
import re
import struct
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import fastavro

from pipeline.errors import EncodeError

__all__ = [
    "MAGIC_BYTE",
    "compile_encoder",
    "confluent_header",
    "encode_fastavro",
    "split_confluent",
    "zigzag_varint",
]

MAGIC_BYTE: Final = 0
"""First byte of every Confluent-framed value."""
_HEADER: Final = struct.Struct(">bI")
_MAX_SCHEMA_ID: Final = 0x7FFFFFFF  # the registry's ids are Java ints, never negative
_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_LOGICAL: Final = {"timestamp-millis": "long"}  # logical type → the one base type allowed
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MEMO_LIMIT: Final = 4096  # entries per memo before it is cleared (bounded memory)


def confluent_header(schema_id: int) -> bytes:
    """The 5-byte Confluent prefix: magic byte 0 and the big-endian schema id.

    Args:
        schema_id: the id the schema registry gave the value schema.

    Returns:
        Five bytes, to put before the Avro body.

    Raises:
        ValueError: the id is negative or above 2^31 - 1.
    """
    if not 0 <= schema_id <= _MAX_SCHEMA_ID:
        raise ValueError(f"schema id out of range: {schema_id}")
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def split_confluent(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """Take a Confluent-framed value apart.

    Args:
        data: the Kafka record value.

    Returns:
        ``(schema_id, avro_body)``.

    Raises:
        ValueError: fewer than 5 bytes, or a first byte other than 0.
    """
    if len(data) < _HEADER.size:
        raise ValueError(f"not Confluent wire format: {len(data)} bytes, need at least 5")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise ValueError(f"not Confluent wire format: magic byte {magic}, expected 0")
    return schema_id, bytes(data[_HEADER.size :])


def zigzag_varint(n: int) -> bytes:
    """The Avro encoding of an ``int``/``long``: zigzag, then a little-endian base-128 varint.

    Args:
        n: a value in the signed 64-bit range.

    Returns:
        1 to 10 bytes.

    Raises:
        EncodeError: ``n`` is outside the signed 64-bit range.
    """
    z = (n << 1) ^ (n >> 63)  # in [0, 2**64) exactly when n fits in 64 bits (else ≥ 2**64)
    if z < 0x80:
        return bytes((z,))
    if z >> 64:
        raise EncodeError(f"{n} is outside the 64-bit range of an Avro long")
    n = z
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_fastavro(parsed_schema: Any, record: object) -> bytes:
    """The reference encoding: ``fastavro.schemaless_writer`` of one record.

    Args:
        parsed_schema: the result of ``fastavro.parse_schema``.
        record: a mapping, or an object whose attributes are the schema's field names (a
            record dataclass).

    Returns:
        The Avro body (no Confluent header).
    """
    if not isinstance(record, Mapping):
        record = {f["name"]: getattr(record, f["name"]) for f in parsed_schema["fields"]}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_schema, record)
    return buf.getvalue()


# ----------------------------------------------------------------------------- compiler


def _base_type(field: str, schema: object) -> str:
    # A non-union field type → the primitive it is written as; refuses everything else.
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        raise ValueError(f"field {field!r}: named type reference {schema!r} is not supported")
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        if not isinstance(kind, str) or kind not in _PRIMITIVES:
            raise ValueError(f"field {field!r}: type {kind!r} is not supported (flat records only)")
        logical = schema.get("logicalType")
        if logical is not None and _LOGICAL.get(logical) != kind:
            raise ValueError(f"field {field!r}: logical type {logical!r} on {kind} not supported")
        return kind
    if isinstance(schema, list):
        raise ValueError(f"field {field!r}: nested union is not supported")
    raise ValueError(f"field {field!r}: unreadable type {schema!r}")


def _field_kind(field: str, schema: object) -> tuple[str, int | None]:
    # → (base type, branch index of the non-null branch if nullable else None)
    if not isinstance(schema, list):
        return _base_type(field, schema), None
    branches = [b if not isinstance(b, Mapping) or "logicalType" in b else b.get("type")
                for b in schema]  # fmt: skip
    if len(branches) != 2 or branches.count("null") != 1:
        raise ValueError(
            f"field {field!r}: union {schema!r} is not supported (only [null, X] and [X, null])"
        )
    index = 1 if branches[0] == "null" else 0
    return _base_type(field, schema[index]), index


class _Memo:
    # value → encoded bytes, bounded. One per memoised field; lives in the encoder's closure.
    __slots__ = ("_data", "_encode", "get")

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        self._data: dict[Any, bytes] = {}
        self.get = self._data.get
        self._encode = encode

    def put(self, value: Any) -> bytes:
        encoded = self._encode(value)
        if len(self._data) >= _MEMO_LIMIT:
            self._data.clear()
        self._data[value] = encoded
        return encoded


_LENGTH: Final = tuple(bytes((n << 1,)) for n in range(64))  # varints of 0..63, one byte


def _string(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    return (_LENGTH[n] if n < 64 else zigzag_varint(n)) + data


def _zigzag_int(n: int) -> bytes:
    if not -0x80000000 <= n <= 0x7FFFFFFF:
        raise EncodeError(f"{n} is outside the 32-bit range of an Avro int")
    return zigzag_varint(n)


def _explain(record_name: str, fields: list[tuple[str, str]], r: object) -> EncodeError:
    # Runs only after an encoder raised: find the field whose number does not fit.
    for name, base in fields:
        value = getattr(r, name, None)
        if type(value) is int:
            try:
                (_zigzag_int if base == "int" else zigzag_varint)(value)
            except EncodeError as exc:
                return EncodeError(f"{record_name}.{name}: {exc}; the value does not fit")
    return EncodeError(f"{record_name}: a number does not fit its Avro type")


def _bytes(value: bytes) -> bytes:
    n = len(value)
    return (_LENGTH[n] if n < 64 else zigzag_varint(n)) + bytes(value)


_PLAIN: Final[dict[str, Callable[[Any], bytes]]] = {
    "string": _string,
    "int": _zigzag_int,
    "long": zigzag_varint,
}


def _expression(
    i: int, name: str, base: str, index: int | None, memo: bool, env: dict[str, Any]
) -> str:
    # One element of the generated tuple: the bytes of field `name` of record `r`. Constants
    # and helpers go into `env` under per-field names. A nullable field reads the attribute
    # once into `v` (walrus), writes its null branch's index for None, and otherwise uses
    # encoders that already include the value branch's index.
    get = f"getattr(r, {name!r})" if keyword.iskeyword(name) else f"r.{name}"
    prefix = b"" if index is None else zigzag_varint(index)
    if base == "null":  # a null field writes nothing (and its value is not even read)
        return "b''"
    if base in ("int", "long", "string"):
        plain = _PLAIN[base]
        encode = plain if index is None else lambda v: prefix + plain(v)
        if memo:
            table = _Memo(encode)
            env[f"_g{i}"], env[f"_p{i}"] = table.get, table.put
            first, value = f"(_g{i}(v := {get}) or _p{i}(v))", f"(_g{i}(v) or _p{i}(v))"
        else:
            env[f"_p{i}"] = encode
            first, value = f"_p{i}({get})", f"_p{i}(v)"
    elif base in ("double", "float"):
        code = "d" if base == "double" else "f"
        # With "<" struct adds no padding: "<Bd" is the branch byte then the 8-byte double.
        env[f"_p{i}"] = struct.Struct(f"<{code}" if index is None else f"<B{code}").pack
        first, value = f"_p{i}({get})", f"_p{i}({prefix[0] if prefix else 0}, v)"
    elif base == "boolean":
        env[f"_t{i}"], env[f"_f{i}"] = prefix + b"\x01", prefix + b"\x00"
        first, value = f"(_t{i} if {get} else _f{i})", f"(_t{i} if v else _f{i})"
    else:  # bytes
        env[f"_p{i}"] = _bytes if index is None else lambda v: prefix + _bytes(v)
        first, value = f"_p{i}({get})", f"_p{i}(v)"
    if index is None:
        return first
    env[f"_n{i}"] = zigzag_varint(1 - index)  # the null branch's index
    return f"(_n{i} if (v := {get}) is None else {value})"


def compile_encoder(
    schema: Mapping[str, Any], *, unique_fields: Collection[str] = ("event_id",)
) -> Callable[[object], bytes]:
    """Build the Avro body encoder of a flat record schema, once.

    The encoder reads each field as an attribute of the object it is given (attribute name =
    field name; a record dataclass of :mod:`~pipeline.core.contract.records`) and returns
    the same bytes
    as ``fastavro.schemaless_writer`` would for the equivalent dict.

    Supported: a record whose fields are ``null``, ``boolean``, ``int``, ``long``, ``float``,
    ``double``, ``bytes``, ``string``, ``long`` with logical type ``timestamp-millis`` (epoch
    milliseconds as an ``int``), and two-branch unions of ``null`` with one of those.

    Args:
        schema: the record schema, as loaded from the ``.avsc`` file or as returned by
            ``fastavro.parse_schema``.
        unique_fields: string/int/long fields whose values rarely repeat (ids): they skip
            the per-field memo, which would only miss. Every other such field is memoised
            (bounded), which pays off for topics, entity ids, units and timestamps that
            repeat across the records of a frame. Output bytes are the same either way.

    Returns:
        ``encode(record) -> bytes``; it raises :class:`~pipeline.errors.EncodeError` naming
        the field when an ``int`` or ``long`` does not fit its type (fastavro would wrap it
        or let it through).

    Raises:
        ValueError: the schema uses anything else: a nested record, array, map, enum, fixed,
            a named-type reference, another union or logical type, or a field name that is
            not an Avro name.
    """
    if schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise ValueError("only a record schema with a list of fields can be compiled")
    record_name = str(schema.get("name", "record"))
    env: dict[str, Any] = {"_EncodeError": EncodeError}
    parts: list[str] = []
    numbers: list[tuple[str, str]] = []
    for i, field in enumerate(schema["fields"]):
        name = field.get("name") if isinstance(field, Mapping) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{record_name}: field {i} has no valid Avro name: {name!r}")
        base, index = _field_kind(name, field.get("type"))
        parts.append(_expression(i, name, base, index, name not in unique_fields, env))
        if base in ("int", "long"):
            numbers.append((name, base))
    env["_explain"] = lambda r: _explain(record_name, numbers, r)
    body = ",\n            ".join(parts)
    # try costs nothing until it catches (zero-cost exceptions, CPython ≥ 3.11).
    source = (
        "def encode(r):\n    try:\n        return b''.join((\n"
        f"            {body},\n        ))\n"
        "    except _EncodeError:\n        raise _explain(r) from None\n"
    )
    # The source is built only from validated Avro names and our own templates.
    exec(compile(source, f"<avro encoder {record_name}>", "exec"), env)  # noqa: S102
    encode: Callable[[object], bytes] = env["encode"]
    encode.__doc__ = f"Avro body of a {record_name} (generated by compile_encoder)."
    return encode
