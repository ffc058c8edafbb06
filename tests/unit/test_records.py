"""Record dataclasses mirror the .avsc contract; audit and dead-letter records are deterministic."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.core.audit import AuditDetailsWarning, AuditEvent, AuditKind, check_details
from pipeline.core.contract.records import (
    AUDIT_FIELDS,
    DEAD_LETTER_FIELDS,
    METRIC_FIELDS,
    AuditRecord,
    DeadLetterRecord,
    MetricRecord,
    _MetricBuilder,
    audit_record,
    dead_letter_record,
    gap_audit,
    gap_details,
    new_metric_record,
    to_epoch_ms,
)
from pipeline.core.genesys.events import DeadLetter, Gap

SCHEMAS = Path(__file__).parents[2] / "schemas"
_PY_TYPES = {"string": "str", "long": "int", "int": "int", "double": "float", "boolean": "bool",
             "bytes": "bytes"}  # fmt: skip


def avsc(name: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads((SCHEMAS / f"{name}.avsc").read_text())["fields"]
    return fields


def blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


CONTRACT = [
    ("metric", MetricRecord, METRIC_FIELDS),
    ("audit", AuditRecord, AUDIT_FIELDS),
    ("dead_letter", DeadLetterRecord, DEAD_LETTER_FIELDS),
]


@pytest.mark.parametrize(("schema", "cls", "names"), CONTRACT)
def test_record_fields_mirror_the_avsc_in_order(
    schema: str, cls: type[Any], names: tuple[str, ...]
) -> None:
    expected = [f["name"] for f in avsc(schema)]
    assert [f.name for f in dataclasses.fields(cls)] == expected
    assert list(names) == expected


@pytest.mark.parametrize(("schema", "cls", "names"), CONTRACT)
def test_record_field_types_match_the_avsc(
    schema: str, cls: type[Any], names: tuple[str, ...]
) -> None:
    for field, spec in zip(dataclasses.fields(cls), avsc(schema), strict=True):
        avro = spec["type"]
        nullable = isinstance(avro, list)
        base = next(t for t in avro if t != "null") if nullable else avro
        base = base["type"] if isinstance(base, dict) else base
        expected = _PY_TYPES[base] + (" | None" if nullable else "")
        assert field.type == expected, field.name


@pytest.mark.parametrize(("schema", "cls", "names"), CONTRACT)
def test_dataclass_defaults_agree_with_avsc_defaults(
    schema: str, cls: type[Any], names: tuple[str, ...]
) -> None:
    specs = {f["name"]: f for f in avsc(schema)}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            assert specs[field.name]["default"] == field.default, field.name


METRIC_VALUES: tuple[Any, ...] = (
    "id", "v2.users.u1.presence", "user", "u1", "presence", "ON_QUEUE", None, None, None, None,
    None, None, None, None, None, None, None, None, None, None, None, None, None, None, "state",
    False, 5, 6, False, "p0", None, 2,
)  # fmt: skip


@pytest.mark.parametrize(
    "rec",
    [
        MetricRecord(*METRIC_VALUES),
        AuditRecord("id", "kind", 1, None, "p"),
        DeadLetterRecord("id", b"", None, "reason", "map", 1, "p"),
    ],
)
def test_records_are_frozen_and_slotted(rec: Any) -> None:
    assert not hasattr(rec, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.event_id = "other"


def test_builder_parameters_follow_the_contract_order() -> None:
    params = list(inspect.signature(_MetricBuilder.__init__).parameters)[1:]
    assert params == list(METRIC_FIELDS)


def test_fast_constructor_gives_an_equal_frozen_metric_record() -> None:
    fast = new_metric_record(*METRIC_VALUES)
    slow = MetricRecord(*METRIC_VALUES)
    assert type(fast) is MetricRecord
    assert fast == slow
    assert hash(fast) == hash(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.metric = "x"  # type: ignore[misc]  # the point of the test
    assert copy.copy(fast) == fast
    assert copy.deepcopy(fast) == fast
    assert dataclasses.replace(fast, metric="routingStatus").metric == "routingStatus"


def test_fast_constructor_wants_every_field() -> None:
    with pytest.raises(TypeError):
        new_metric_record(*METRIC_VALUES[:-1])


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [(0.0, 0), (1.0005, 1000), (1.0015, 1002), (1_714_817_702.123, 1_714_817_702_123)],
)
def test_epoch_seconds_become_whole_milliseconds(seconds: float, ms: int) -> None:
    assert to_epoch_ms(seconds) == ms


# ----------------------------------------------------------------------------- audit
def test_audit_record_golden() -> None:
    event = AuditEvent(AuditKind.THROTTLED, 1_700_000_000.5, "ch-1", {"wait_s": 2.5, "path": "/a"})
    rec = audit_record(event, "producer-0")
    details = '{"path":"/a","wait_s":2.5}'
    canonical = orjson.dumps(["audit", "throttled", 1_700_000_000_500, "ch-1",
                              "producer-0", details])  # fmt: skip
    assert rec == AuditRecord(
        blake(canonical), "throttled", 1_700_000_000_500, "ch-1", "producer-0",
        None, None, details, 1,
    )  # fmt: skip
    assert type(rec.kind) is str  # the plain wire string, not the enum member


@pytest.mark.parametrize(
    ("kind", "details"),
    [
        (AuditKind.CHANNEL_SUBSCRIBED, {"topics": 900}),
        (AuditKind.SUBSCRIPTION_PLANNED, {"shard": 0, "shards": 2, "channels": 1, "topics": 900}),
    ],
)
def test_audit_record_lifts_a_topic_count(kind: AuditKind, details: dict[str, Any]) -> None:
    rec = audit_record(AuditEvent(kind, 10.0, "ch-1", details), "p")
    assert (rec.gap_seconds, rec.topic_count) == (None, 900)
    assert json.loads(rec.details_json) == details


@pytest.mark.parametrize("topics", [True, 2.0, "12", None])
def test_audit_record_lifts_only_int_topic_counts(topics: object) -> None:
    with pytest.warns(AuditDetailsWarning, match="'topics'"):
        event = AuditEvent(AuditKind.CHANNEL_SUBSCRIBED, 1.0, None, {"topics": topics})
    rec = audit_record(event, "p")
    assert (rec.gap_seconds, rec.topic_count, rec.channel_id) == (None, None, None)


def test_audit_ids_are_deterministic_and_tell_facts_apart() -> None:
    facts = {"status": 503, "reason": "HTTP 503", "retry_in_s": 0.5}
    event = AuditEvent(AuditKind.TOKEN_FAILED, 5.0, "ch", facts)
    assert audit_record(event, "p").event_id == audit_record(event, "p").event_id
    others = [
        dataclasses.replace(event, at=6.0),
        dataclasses.replace(event, channel_id="other"),
        dataclasses.replace(event, details={**facts, "status": 502}),
        dataclasses.replace(event, kind=AuditKind.CHANNEL_CREATE_FAILED),
    ]
    ids = {audit_record(e, "p").event_id for e in [event, *others]}
    ids.add(audit_record(event, "q").event_id)
    assert len(ids) == 6


def test_audit_details_that_are_not_json_are_kept_as_text() -> None:
    with pytest.warns(AuditDetailsWarning, match="'path' is PosixPath, declared str"):
        event = AuditEvent(AuditKind.THROTTLED, 1.0, None, {"path": Path("/a"), "wait_s": 1})
    assert json.loads(audit_record(event, "p").details_json) == {"path": "/a", "wait_s": 1}


def test_gap_audit_records_the_gap() -> None:
    gap = Gap("ch-1", 100.0, 112.25, ("t1", "t2", "t3"), "socket.dropped")
    rec = gap_audit(gap, "p0")
    assert (rec.kind, rec.at, rec.channel_id, rec.producer_instance) == (
        "gap.closed", 112_250, "ch-1", "p0")  # fmt: skip
    assert (rec.gap_seconds, rec.topic_count) == (12.25, 3)
    assert json.loads(rec.details_json) == gap_details(gap) == {
        "started_at_ms": 100_000, "ended_at_ms": 112_250, "reason": "socket.dropped"}  # fmt: skip
    assert check_details(AuditKind.GAP_CLOSED, gap_details(gap)) == []
    assert rec.event_id == gap_audit(gap, "p0").event_id
    assert rec.event_id != gap_audit(dataclasses.replace(gap, reason="x"), "p0").event_id


# ----------------------------------------------------------------------------- dead letters
def test_dead_letter_record_golden() -> None:
    dl = DeadLetter(b"\x00not json", "invalid JSON", "parse", None, 3.5)
    rec = dead_letter_record(dl, "p0")
    head = orjson.dumps(["dlq", "parse", None, "invalid JSON", 3500, "p0", 9])
    assert rec == DeadLetterRecord(
        blake(head + b"\x00not json"), b"\x00not json", None, "invalid JSON", "parse", 3500, "p0"
    )


def test_dead_letter_ids_depend_on_the_bytes_and_the_occurrence() -> None:
    dl = DeadLetter(b"abc", "bad", "map", "v2.users.u.presence", 1.0)
    same = dead_letter_record(dl, "p").event_id
    assert same == dead_letter_record(dl, "p").event_id
    assert same != dead_letter_record(dataclasses.replace(dl, raw=b"abd"), "p").event_id
    assert same != dead_letter_record(dataclasses.replace(dl, at=2.0), "p").event_id
    assert same != dead_letter_record(dataclasses.replace(dl, stage="parse"), "p").event_id
