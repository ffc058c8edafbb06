"""A fast Avro decoder: the mirror of :func:`~pipeline.core.contract.wire.compile_encoder`.

Why: ``fastavro.schemaless_reader`` with a reader schema costs about 25 µs of CPU per metric
record on the dev machine (schema resolution walks both schemas for every record, and builds a
dict), the largest part of a worker's CPU. :func:`compile_decoder` resolves a
(writer schema, reader schema) pair once and generates one straight-line Python function for
it (about 5 µs per metric record): one block per writer field, in writer order, reading from a
``bytes`` value by index (no file object), with table look-ups for one-byte varints and
lengths, precompiled ``struct`` readers for doubles, and a bounded memo of 6-byte
``timestamp-millis`` varints (interval bounds and ingest times repeat across records). Its
result is the tuple of the reader's field values, in reader order, or what a ``build``
callable makes of them (a record class, positionally).

Schema resolution (Avro 1.11 specification, "Schema Resolution") is done at compile time:

- a writer field the reader does not have is read past and dropped;
- a reader field the writer does not have gets the reader's default (as written in the
  schema, like fastavro); one without a default makes the pair unresolvable;
- promotions: ``int`` → ``long``/``float``/``double``, ``long`` → ``float``/``double``,
  ``float`` → ``double``, ``string`` ↔ ``bytes``;
- a non-union value read into a nullable field, and a nullable value into a non-union field
  (its null branch then fails at read time, as in fastavro).

Supported schemas: what :func:`~pipeline.core.contract.wire.compile_encoder` supports (flat
records of primitives, ``timestamp-millis`` longs read as epoch-ms ints, two-branch unions
with ``null``), with the same record name in writer and reader, and no aliases. Anything else
raises ``ValueError`` at compile time: the caller then uses fastavro
(:class:`pipeline.kafka.consumer.AvroDecoder` does).

Errors: a body that does not match raises one of :data:`BODY_ERRORS` (a short body, a
negative length, a union index that is not a branch, invalid UTF-8, bytes left over). The
decoder is strict where fastavro is lenient (a varint over 64 bits, which fastavro wraps,
fails here), so it never returns a value fastavro would not: a caller that needs fastavro's
exact error or leniency asks fastavro after a failure. ``tests/unit/test_decode.py`` compares
both on random records of every schema in ``schemas/`` and on random bytes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["BODY_ERRORS", "MalformedBodyError", "compile_decoder"]


class MalformedBodyError(ValueError):
    """The body does not match the writer schema (bad length, union index, left-over bytes)."""


BODY_ERRORS: Final = (IndexError, ValueError, struct.error)
"""What a compiled decoder raises for a body that does not match (``ValueError`` includes
:class:`MalformedBodyError` and ``UnicodeDecodeError``)."""

_PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                                "string"})  # fmt: skip
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PROMOTIONS: Final = frozenset({
    ("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
    ("long", "double"), ("float", "double"), ("string", "bytes"), ("bytes", "string"),
})  # fmt: skip
_WIDTH: Final = {"float": 4, "double": 8}
_TIME_WIDTH: Final = 6  # bytes of a varint epoch-ms timestamp (1970-07 to 2039-09)
_MEMO_LIMIT: Final = 4096  # entries per timestamp memo before it is cleared
_FAR: Final = 1 << 62  # a "length" past any body: the left-over check then fails

# One-byte varints (0..127): the zigzag value, and the length a string/bytes prefix says
# (odd bytes are negative lengths: pushed past the end, so the body fails).
_ZIGZAG: Final = tuple((n >> 1) ^ -(n & 1) for n in range(128))
_LENGTH: Final = tuple(_FAR if n & 1 else n >> 1 for n in range(128))


def _long(b: bytes, p: int) -> tuple[int, int]:
    # A varint of 2+ bytes at b[p]: → (zigzag-decoded value, position after it). Unrolled up
    # to 6 bytes (epoch milliseconds until 2039), then a loop up to the 10 bytes of a long.
    n = b[p] & 0x7F
    c = b[p + 1]
    n |= (c & 0x7F) << 7
    if c < 0x80:
        return (n >> 1) ^ -(n & 1), p + 2
    c = b[p + 2]
    n |= (c & 0x7F) << 14
    if c < 0x80:
        return (n >> 1) ^ -(n & 1), p + 3
    c = b[p + 3]
    n |= (c & 0x7F) << 21
    if c < 0x80:
        return (n >> 1) ^ -(n & 1), p + 4
    c = b[p + 4]
    n |= (c & 0x7F) << 28
    if c < 0x80:
        return (n >> 1) ^ -(n & 1), p + 5
    c = b[p + 5]
    n |= (c & 0x7F) << 35
    p += 6
    shift = 42
    while c >= 0x80:
        if shift > 63:
            raise MalformedBodyError("varint longer than 10 bytes")
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        shift += 7
    if n >> 64:
        raise MalformedBodyError("varint beyond 64 bits")
    return (n >> 1) ^ -(n & 1), p


class _TimeMemo:
    # 6-byte varints (epoch ms from 1970-07 to 2039-09) → value, bounded. A key is stored only
    # when its bytes were exactly one varint, so a hit on b[p:p+6] is that varint.
    __slots__ = ("_data", "get")

    def __init__(self) -> None:
        self._data: dict[bytes, int] = {}
        self.get = self._data.get

    def read(self, b: bytes, p: int) -> tuple[int, int]:
        value, end = _long(b, p)
        if end - p == _TIME_WIDTH:
            if len(self._data) >= _MEMO_LIMIT:
                self._data.clear()
            self._data[b[p:end]] = value
        return value, end


def _span(b: bytes, p: int) -> tuple[int, int]:
    # A string/bytes whose length prefix takes 2+ bytes: → (start, end) of its content.
    n, p = _long(b, p)
    if n < 0:
        raise MalformedBodyError(f"negative length {n}")
    return p, p + n


def _fail(message: str) -> MalformedBodyError:
    return MalformedBodyError(message)


# ----------------------------------------------------------------------------- schemas


def _fullname(schema: Mapping[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _base(field: str, schema: object) -> str:
    # A non-union type → its primitive; refuses everything else.
    if isinstance(schema, str) and schema in _PRIMITIVES:
        return schema
    if isinstance(schema, Mapping):
        kind, logical = schema.get("type"), schema.get("logicalType")
        if isinstance(kind, str) and kind in _PRIMITIVES:
            if logical is None or (logical == "timestamp-millis" and kind == "long"):
                return kind
            raise ValueError(f"field {field!r}: logical type {logical!r} is not supported")
    raise ValueError(f"field {field!r}: type {schema!r} is not supported (flat records only)")


def _kind(field: str, schema: object) -> tuple[str, int | None]:
    # → (base type, index of the non-null branch, or None when not a union)
    if not isinstance(schema, list):
        return _base(field, schema), None
    bases = [_base(field, branch) for branch in schema]
    if len(bases) != 2 or bases.count("null") != 1:
        raise ValueError(f"field {field!r}: union {schema!r} is not supported")
    index = 1 if bases[0] == "null" else 0
    return bases[index], index


def _fields(schema: Mapping[str, Any], role: str) -> list[tuple[str, str, int | None, Any]]:
    # → (name, base, non-null branch index, field mapping) per field, validated.
    if schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise ValueError(f"the {role} schema is not a record with a list of fields")
    out = []
    for i, field in enumerate(schema["fields"]):
        name = field.get("name") if isinstance(field, Mapping) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{role} field {i} has no valid Avro name: {name!r}")
        if field.get("aliases"):
            raise ValueError(f"{role} field {name!r}: aliases are not supported")
        base, index = _kind(name, field.get("type"))
        out.append((name, base, index, field))
    return out


# ----------------------------------------------------------------------------- code


def _is_time(schema: object) -> bool:
    # Whether a field's type (or its non-null branch) is a timestamp-millis long.
    branches = schema if isinstance(schema, list) else [schema]
    return any(isinstance(b, Mapping) and b.get("logicalType") == "timestamp-millis"
               for b in branches)  # fmt: skip


def _read(base: str, target: str | None, promote: str | None, memo: str = "") -> list[str]:
    # Lines reading one value of `base` at b[p] into `target` (None: read past it); `memo`
    # names a _TimeMemo in the environment for a timestamp (looked up before decoding).
    if base == "null":
        return [f"{target} = None"] if target else []
    if base == "boolean":  # fastavro reads any non-zero byte as true
        return [f"{target} = b[p] != 0", "p += 1"] if target else ["b[p]", "p += 1"]
    if base in ("int", "long"):
        if target is None:
            return ["if b[p] < 128:", "    p += 1", "else:", "    p = _long(b, p)[1]"]
        cast = "float" if promote in ("float", "double") else ""
        if memo and not cast:
            return [
                "n = b[p]",
                "if n < 128:",
                f"    {target} = _ZIGZAG[n]",
                "    p += 1",
                f"elif ({target} := {memo}_get(b[p:p + 6])) is not None:",
                "    p += 6",
                "else:",
                f"    {target}, p = {memo}_read(b, p)",
            ]
        return [
            "n = b[p]",
            "if n < 128:",
            f"    {target} = {cast}(_ZIGZAG[n])",
            "    p += 1",
            "else:",
            f"    {target}, p = _long(b, p)",
            *([f"    {target} = float({target})"] if cast else []),
        ]
    if base in ("float", "double"):
        width = _WIDTH[base]
        read = [f"{target} = _{base}(b, p)[0]"] if target else [f"_{base}(b, p)"]
        return [*read, f"p += {width}"]
    # string or bytes: length prefix, then the content
    as_text = promote == "string" or (base == "string" and promote is None)
    content = "b[s:p].decode()" if as_text else "b[s:p]"
    return [
        "n = b[p]",
        "if n < 128:",
        "    s = p + 1",
        "    p = s + _LENGTH[n]",
        "elif not n & 1 and (m := b[p + 1]) < 128:  # 64..8191 bytes: a 2-byte length",
        "    s = p + 2",
        "    p = s + ((m << 6) | ((n & 0x7F) >> 1))",
        "else:",
        "    s, p = _span(b, p)",
        *([f"{target} = {content}"] if target else []),
    ]


def _field_code(
    name: str,
    writer: tuple[str, int | None],
    reader: tuple[str, int | None] | None,
    target: str,
    memo: str = "",
) -> list[str]:
    # The lines reading one writer field; into `target` when the reader has the field.
    w_base, w_index = writer
    promote: str | None = None
    if reader is not None:
        r_base = reader[0]
        if r_base != w_base:
            if (w_base, r_base) not in _PROMOTIONS:
                raise ValueError(f"field {name!r}: {w_base} does not resolve to {r_base}")
            promote = r_base
    value = _read(w_base, target or None, promote, memo)
    if w_index is None:
        return value
    null_tag, value_tag = 2 * (1 - w_index), 2 * w_index  # the branch indexes, zigzagged
    if reader is not None and reader[1] is None:  # into a non-union field: null cannot be
        on_null = [f"raise _fail('field {name}: null where the reader has no null')"]
    else:
        on_null = [f"{target} = None"] if target else ["pass"]
    return [
        "u = b[p]",
        "p += 1",
        f"if u == {null_tag}:",
        *[f"    {line}" for line in on_null],
        f"elif u == {value_tag}:",
        *[f"    {line}" for line in value or ["pass"]],
        "else:",
        f"    raise _fail('field {name}: union index ' + str(u))",
    ]


def compile_decoder(
    writer: Mapping[str, Any],
    reader: Mapping[str, Any] | None = None,
    *,
    build: Callable[..., Any] | None = None,
) -> Callable[[bytes, int], Any]:
    """Build the decoder of one (writer schema, reader schema) pair, once.

    Args:
        writer: the schema the values were written with (``.avsc`` JSON, or as parsed by
            ``fastavro.parse_schema``).
        reader: the schema to read into; None: the writer's own.
        build: called with the reader's field values, positionally, in reader order (a
            record class); None: the decoder returns the tuple of them.

    Returns:
        ``decode(data, start) -> values``: reads one record from ``data[start:]``, which must
        end exactly at the end of ``data``. It raises one of :data:`BODY_ERRORS` when the
        bytes do not match the writer schema (or a null meets a non-nullable reader field).

    Raises:
        ValueError: the pair uses something not supported (see the module docstring), or
            does not resolve (a reader field without default that the writer lacks, a type
            that does not promote, different record names).
    """
    reader = writer if reader is None else reader
    w_fields, r_fields = _fields(writer, "writer"), _fields(reader, "reader")
    if _fullname(writer) != _fullname(reader):
        raise ValueError(f"record {_fullname(writer)!r} is not {_fullname(reader)!r}")
    slots = {name: (i, base, index) for i, (name, base, index, _) in enumerate(r_fields)}
    env: dict[str, Any] = {
        "_ZIGZAG": _ZIGZAG, "_LENGTH": _LENGTH, "_long": _long, "_span": _span, "_fail": _fail,
        "_float": struct.Struct("<f").unpack_from, "_double": struct.Struct("<d").unpack_from,
    }  # fmt: skip
    lines: list[str] = []
    for i, (name, base, index, field) in enumerate(w_fields):
        slot = slots.pop(name, None)
        reader_kind = None if slot is None else (slot[1], slot[2])
        target = f"v{slot[0]}" if slot else ""
        memo = ""
        if slot and _is_time(field.get("type")):
            times = _TimeMemo()
            memo = f"_m{i}"
            env[f"{memo}_get"], env[f"{memo}_read"] = times.get, times.read
        lines += _field_code(name, (base, index), reader_kind, target, memo)
    for name, (i, _, _) in slots.items():  # reader fields the writer lacks: defaults
        field = r_fields[i][3]
        if "default" not in field or isinstance(field["default"], dict | list):
            raise ValueError(f"reader field {name!r} is not written and has no usable default")
        env[f"_default{i}"] = field["default"]
        lines.append(f"v{i} = _default{i}")
    values = ", ".join(f"v{i}" for i in range(len(r_fields)))
    if build is None:
        result = f"({values},)" if r_fields else "()"
    else:
        env["_build"] = build
        result = f"_build({values})"
    lines += ["if p != len(b):", "    raise _fail(f'{len(b) - p} bytes left over')",
              f"return {result}"]  # fmt: skip
    body = "\n".join(f"    {line}" for line in lines)
    # Helpers become keyword-only defaults: local variables in the function, the fastest kind.
    helpers = ", ".join(f"{name}={name}" for name in env)
    source = f"def decode(b, p, *, {helpers}):\n{body}\n"
    # The source is built only from validated Avro names and our own templates.
    exec(compile(source, f"<avro decoder {_fullname(reader)}>", "exec"), env)  # noqa: S102
    decode: Callable[[bytes, int], Any] = env["decode"]
    decode.__doc__ = f"One {_fullname(reader)} from its Avro body (generated by compile_decoder)."
    return decode
