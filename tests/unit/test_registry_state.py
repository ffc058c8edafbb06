"""Unit tests for the pure state of the local schema registry (no sockets, no files but tmp)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pipeline.local.registry_compatibility import Compatibility
from pipeline.local.registry_model import LATEST, RegistryError, SchemaReference, parse_version
from pipeline.local.registry_state import RegistryState

__all__: list[str] = []


def record(*fields: dict[str, Any], name: str = "Metric") -> str:
    """An Avro record schema string with the given fields."""
    return json.dumps({"type": "record", "name": name, "namespace": "t", "fields": list(fields)})


A_INT = {"name": "a", "type": "int"}
B_STR = {"name": "b", "type": "string"}
B_STR_DEFAULT = {"name": "b", "type": "string", "default": ""}
B_INT_DEFAULT = {"name": "b", "type": "int", "default": 0}


def error_of(exc_info: pytest.ExceptionInfo[RegistryError]) -> tuple[int, int]:
    """(http status, Confluent error code) of a caught RegistryError."""
    return exc_info.value.http_status, exc_info.value.error_code


@pytest.fixture
def state() -> RegistryState:
    return RegistryState()


def test_state_gives_identical_schema_the_same_id_across_subjects(state: RegistryState) -> None:
    first = state.register("orders-value", record(A_INT))
    second = state.register("audit-value", record(A_INT))
    other = state.register("other-value", record(B_STR))

    assert first.schema_id == second.schema_id == 1
    assert (first.version, second.version) == (1, 1)
    assert other.schema_id == 2
    assert state.versions_for_id(1) == [("audit-value", 1), ("orders-value", 1)]


def test_state_increments_versions_and_ignores_repeat_registration(state: RegistryState) -> None:
    v1 = state.register("s", record(A_INT))
    again = state.register("s", record(A_INT))
    v2 = state.register("s", record(A_INT, B_STR_DEFAULT))

    assert (v1.version, v1.schema_id) == (1, 1)
    assert (again.version, again.schema_id) == (1, 1)
    assert (v2.version, v2.schema_id) == (2, 2)
    assert state.versions("s") == [1, 2]
    assert state.get_version("s", LATEST).version == 2
    assert state.subjects() == ["s"]


def test_lookup_matches_canonical_form_not_text(state: RegistryState) -> None:
    state.register("s", record(A_INT, B_STR))
    reordered_keys = json.dumps(
        {
            "fields": [{"type": "int", "name": "a"}, {"type": {"type": "string"}, "name": "b"}],
            "namespace": "t",
            "name": "Metric",
            "type": "record",
        },
        indent=4,
    )

    found = state.lookup("s", reordered_keys)

    assert (found.subject, found.version, found.schema_id) == ("s", 1, 1)
    assert state.register("s", reordered_keys).version == 1


@given(indent=st.one_of(st.none(), st.integers(0, 8)), spaces=st.booleans())
def test_lookup_ignores_whitespace(indent: int | None, spaces: bool) -> None:
    state = RegistryState()
    state.register("s", record(A_INT, B_STR_DEFAULT))
    separators = (", ", ": ") if spaces else (",", ":")
    text = json.dumps(
        json.loads(record(A_INT, B_STR_DEFAULT)), indent=indent, separators=separators
    )

    assert state.lookup("s", text).schema_id == 1


def test_lookup_reports_unknown_subject_and_unknown_schema(state: RegistryState) -> None:
    state.register("s", record(A_INT))

    with pytest.raises(RegistryError) as missing_subject:
        state.lookup("nope", record(A_INT))
    with pytest.raises(RegistryError) as missing_schema:
        state.lookup("s", record(B_STR))

    assert error_of(missing_subject) == (404, 40401)
    assert error_of(missing_schema) == (404, 40403)


def test_backward_accepts_new_field_with_default(state: RegistryState) -> None:
    state.register("s", record(A_INT))

    assert state.test_compatibility("s", record(A_INT, B_STR_DEFAULT)).is_compatible
    assert state.register("s", record(A_INT, B_STR_DEFAULT)).version == 2


def test_backward_rejects_new_field_without_default(state: RegistryState) -> None:
    state.register("s", record(A_INT))

    report = state.test_compatibility("s", record(A_INT, B_STR))
    with pytest.raises(RegistryError) as exc_info:
        state.register("s", record(A_INT, B_STR))

    assert not report.is_compatible
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in report.messages[0]
    assert error_of(exc_info) == (409, 40901)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in exc_info.value.message
    assert state.versions("s") == [1]


@pytest.mark.parametrize(
    ("level", "accepted"),
    [(Compatibility.BACKWARD, True), (Compatibility.BACKWARD_TRANSITIVE, False)],
)
def test_transitive_level_checks_every_version(level: Compatibility, accepted: bool) -> None:
    # v1 has b:string; v2 drops b; v3 brings b back as an int with a default. v3 can read v2
    # data (b defaults) but not v1 data (string is not int), so only the transitive check fails.
    state = RegistryState()
    state.set_subject_compatibility("s", level)
    state.register("s", record(A_INT, B_STR))
    state.register("s", record(A_INT))

    if accepted:
        assert state.register("s", record(A_INT, B_INT_DEFAULT)).version == 3
    else:
        with pytest.raises(RegistryError) as exc_info:
            state.register("s", record(A_INT, B_INT_DEFAULT))
        assert error_of(exc_info) == (409, 40901)
        assert "oldSchemaVersion: 1" in exc_info.value.message
    # Against v2 alone (the latest), the candidate is fine whatever the level.
    assert state.test_compatibility("s", record(A_INT, B_INT_DEFAULT), version=2).is_compatible


def test_none_accepts_anything(state: RegistryState) -> None:
    state.set_global_compatibility(Compatibility.NONE)
    state.register("s", record(A_INT))

    changed = state.register("s", json.dumps({"type": "array", "items": "string"}))

    assert changed.version == 2


def test_forward_accepts_added_field_and_rejects_removed_required_field() -> None:
    state = RegistryState()
    state.set_global_compatibility(Compatibility.FORWARD)
    state.register("s", record(A_INT, B_STR))

    assert state.test_compatibility(
        "s", record(A_INT, B_STR, {"name": "c", "type": "long"})
    ).is_compatible
    assert not state.test_compatibility("s", record(A_INT)).is_compatible
    with pytest.raises(RegistryError) as exc_info:
        state.register("s", record(A_INT))
    assert error_of(exc_info) == (409, 40901)


@pytest.mark.parametrize(
    ("candidate", "compatible"),
    [
        (record(A_INT, B_STR_DEFAULT), True),  # readable both ways
        (record(A_INT, B_STR), False),  # new reader needs b, old data lacks it
    ],
)
def test_full_needs_both_directions(candidate: str, compatible: bool) -> None:
    state = RegistryState()
    state.set_subject_compatibility("s", Compatibility.FULL)
    state.register("s", record(A_INT))

    assert state.test_compatibility("s", candidate).is_compatible is compatible


def test_full_rejects_removing_field_without_default() -> None:
    state = RegistryState()
    state.set_subject_compatibility("s", Compatibility.FULL)
    state.register("s", record(A_INT, B_STR))

    # Backward is fine (the new reader ignores b), forward is not (the old reader needs b).
    assert not state.test_compatibility("s", record(A_INT)).is_compatible
    state.set_subject_compatibility("s", Compatibility.BACKWARD)
    assert state.test_compatibility("s", record(A_INT)).is_compatible


def test_soft_delete_hides_subject_but_keeps_schema(state: RegistryState) -> None:
    state.register("s", record(A_INT))

    assert state.delete_subject("s") == [1]

    assert state.subjects() == []
    assert state.subjects(deleted=True) == ["s"]
    assert state.subjects(deleted_only=True) == ["s"]
    with pytest.raises(RegistryError) as exc_info:
        state.versions("s")
    assert error_of(exc_info) == (404, 40401)
    assert state.versions("s", deleted=True) == [1]
    assert state.get_version("s", 1, deleted=True).schema_id == 1
    assert state.schema_by_id(1).schema == record(A_INT)
    assert state.lookup("s", record(A_INT), deleted=True).version == 1
    with pytest.raises(RegistryError) as twice:
        state.delete_subject("s")
    assert error_of(twice) == (404, 40404)
    # Registering again after a soft delete makes a new version with the same id.
    again = state.register("s", record(A_INT))
    assert (again.version, again.schema_id) == (2, 1)


def test_permanent_delete_needs_soft_delete_first(state: RegistryState) -> None:
    state.register("s", record(A_INT))
    state.set_subject_compatibility("s", Compatibility.NONE)

    with pytest.raises(RegistryError) as exc_info:
        state.delete_subject("s", permanent=True)
    assert error_of(exc_info) == (404, 40405)

    state.delete_subject("s")
    assert state.delete_subject("s", permanent=True) == [1]

    assert state.subjects(deleted=True) == []
    with pytest.raises(RegistryError) as gone:
        state.schema_by_id(1)
    assert error_of(gone) == (404, 40403)
    with pytest.raises(RegistryError) as config_gone:
        state.subject_compatibility("s", default_to_global=False)
    assert error_of(config_gone) == (404, 40408)
    assert state.register("s", record(B_STR)).version == 1


def test_version_delete_soft_then_permanent(state: RegistryState) -> None:
    state.register("s", record(A_INT))
    state.register("s", record(A_INT, B_STR_DEFAULT))

    with pytest.raises(RegistryError) as not_soft:
        state.delete_version("s", 2, permanent=True)
    assert error_of(not_soft) == (404, 40407)
    assert state.delete_version("s", LATEST) == 2
    assert state.get_version("s", LATEST).version == 1
    with pytest.raises(RegistryError) as already:
        state.delete_version("s", 2)
    assert error_of(already) == (404, 40406)
    assert state.delete_version("s", 2, permanent=True) == 2
    assert state.versions("s", deleted=True) == [1]
    with pytest.raises(RegistryError) as missing:
        state.get_version("s", 7)
    assert error_of(missing) == (404, 40402)


@pytest.mark.parametrize(
    ("schema", "schema_type"),
    [
        ("{not json", None),
        (
            json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}),
            None,
        ),
        (json.dumps({"type": "enum", "name": "E", "symbols": ["A", "A"]}), None),
        ('"string"', "PROTOBUF"),
    ],
)
def test_invalid_schema_is_42201(
    state: RegistryState, schema: str, schema_type: str | None
) -> None:
    with pytest.raises(RegistryError) as exc_info:
        state.register("s", schema, schema_type)

    assert error_of(exc_info) == (422, 42201)
    assert state.subjects(deleted=True) == []


@pytest.mark.parametrize("text", ["0", "-2", "abc", "2147483648", ""])
def test_invalid_version_is_42202(text: str) -> None:
    with pytest.raises(RegistryError) as exc_info:
        parse_version(text)

    assert error_of(exc_info) == (422, 42202)


def test_version_parsing_accepts_latest_and_numbers() -> None:
    assert parse_version("latest") == parse_version("-1") == LATEST
    assert parse_version("3") == 3


def test_subject_compatibility_config(state: RegistryState) -> None:
    with pytest.raises(RegistryError) as unset:
        state.subject_compatibility("s", default_to_global=False)
    assert error_of(unset) == (404, 40408)
    assert state.subject_compatibility("s", default_to_global=True) is Compatibility.BACKWARD

    state.set_subject_compatibility("s", Compatibility.parse("full_transitive"))
    assert state.compatibility("s") is Compatibility.FULL_TRANSITIVE
    assert state.delete_subject_compatibility("s") is Compatibility.FULL_TRANSITIVE
    assert state.compatibility("s") is Compatibility.BACKWARD
    with pytest.raises(RegistryError) as bad:
        Compatibility.parse("SIDEWAYS")
    assert error_of(bad) == (422, 42203)


def test_references_resolve_and_protect_their_target(state: RegistryState) -> None:
    inner = json.dumps({"type": "record", "name": "Inner", "namespace": "t", "fields": [A_INT]})
    outer = record({"name": "inner", "type": "t.Inner"}, name="Outer")
    ref = SchemaReference("t.Inner", "inner-value", 1)
    state.register("inner-value", inner)

    registered = state.register("outer-value", outer, "AVRO", [ref])

    assert registered.stored.references == (ref,)
    assert state.referenced_by("inner-value", 1) == [registered.schema_id]
    assert state.lookup("outer-value", outer, "AVRO", [ref]).version == 1
    with pytest.raises(RegistryError) as in_use:
        state.delete_subject("inner-value")
    assert error_of(in_use) == (422, 42206)
    with pytest.raises(RegistryError) as dangling:
        state.register("x-value", outer, "AVRO", [SchemaReference("t.Inner", "nope", 1)])
    assert error_of(dangling) == (422, 42201)


def test_state_survives_a_round_trip_through_a_file(tmp_path: pathlib.Path) -> None:
    state = RegistryState()
    state.register("a-value", record(A_INT))
    state.register("a-value", record(A_INT, B_STR_DEFAULT))
    state.register("b-value", record(A_INT))
    state.register("c-value", record(B_STR))
    state.delete_subject("c-value")
    state.set_global_compatibility(Compatibility.FULL)
    state.set_subject_compatibility("b-value", Compatibility.NONE)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(state.to_data()), encoding="utf-8")

    loaded = RegistryState.from_data(json.loads(path.read_text(encoding="utf-8")))

    assert loaded.to_data() == state.to_data()
    assert loaded.subjects() == ["a-value", "b-value"]
    assert loaded.subjects(deleted=True) == ["a-value", "b-value", "c-value"]
    assert loaded.lookup("a-value", record(A_INT, B_STR_DEFAULT)).schema_id == 2
    assert loaded.global_compatibility is Compatibility.FULL
    assert loaded.compatibility("b-value") is Compatibility.NONE
    # Ids keep their identity and new ones continue after the highest.
    assert loaded.register("d-value", record(A_INT)).schema_id == 1
    assert loaded.register("d-value", record(A_INT, B_STR_DEFAULT)).schema_id == 2
    assert loaded.register("e-value", json.dumps("long")).schema_id == 4
