"""The audit vocabulary: every kind declared once, checked, documented, and used as declared."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from pipeline.core.audit import (
    AUDIT_KINDS,
    AuditDetailsWarning,
    AuditEvent,
    AuditKind,
    check_details,
)
from pipeline.core.workers.slo import SloChange
from pipeline.kafka.producer import OutRecord
from pipeline.services.producer_facts import FactQueue, ProducerHooks
from pipeline.services.producer_metrics import ProducerMetrics
from tests import audit_doc

_SNAKE = re.compile(r"[a-z][a-z0-9_]*\Z")


# ----------------------------------------------------------------------------- the table
def test_every_kind_is_declared_in_enum_order() -> None:
    assert list(AUDIT_KINDS) == list(AuditKind)


def test_kinds_are_dotted_lowercase_wire_strings() -> None:
    for kind in AuditKind:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", kind.value), kind
        assert str(kind) == kind.value == f"{kind}"


def test_a_detail_key_has_one_type_everywhere() -> None:
    types: dict[str, set[str]] = {}
    for spec in AUDIT_KINDS.values():
        names = [f.name for f in spec.fields]
        assert len(names) == len(set(names)), spec
        for f in spec.fields:
            assert _SNAKE.match(f.name), f.name
            assert f.meaning, f.name
            assert "|" not in f.meaning, f.name  # it goes into a table cell
            types.setdefault(f.name, set()).add(f.type)
    assert {name: t for name, t in types.items() if len(t) > 1} == {}


def test_detail_keys_follow_the_unit_suffixes() -> None:
    for spec in AUDIT_KINDS.values():
        for f in spec.fields:
            if f.name.endswith("_s"):
                assert f.type == "float", f.name
            if f.name.endswith("_ms"):
                assert f.type == "int", f.name
            if f.name.endswith("_at"):
                assert f.type == "float", f.name


def test_columns_are_filled_where_declared() -> None:
    for kind, spec in AUDIT_KINDS.items():
        assert set(spec.columns) <= {"gap_seconds", "topic_count"}, kind
        has_topics = any(f.name == "topics" for f in spec.fields)
        if kind is not AuditKind.GAP_CLOSED:  # its columns come from the Gap, not its details
            assert ("topic_count" in spec.columns) == has_topics, kind
            assert "gap_seconds" not in spec.columns, kind
    assert AUDIT_KINDS[AuditKind.GAP_CLOSED].columns == ("gap_seconds", "topic_count")


def test_the_contract_doc_shows_the_table() -> None:
    text = audit_doc.DOC.read_text()
    assert audit_doc.committed(text) == audit_doc.render(), "run: python -m tests.audit_doc --write"
    for kind in AuditKind:
        assert f"| `{kind}` |" in text


# ----------------------------------------------------------------------------- the check
def test_check_details_accepts_a_declared_event() -> None:
    details = {"socket_id": 2, "cause": "socket.dropped", "code": None, "reason": ""}
    assert check_details(AuditKind.SOCKET_DISCONNECTED, details) == []


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ({"wait_s": 1.0}, "throttled: missing 'path'"),
        ({"path": "/a", "wait_s": 1.0, "seconds": 1}, "throttled: unexpected 'seconds'"),
        ({"path": "/a", "wait_s": "1"}, "throttled: 'wait_s' is str, declared float"),
        ({"path": None, "wait_s": 1.0}, "throttled: 'path' is NoneType, declared str"),
        ({"path": "/a", "wait_s": True}, "throttled: 'wait_s' is bool, declared float"),
    ],
)
def test_check_details_names_each_problem(details: dict[str, Any], problem: str) -> None:
    assert check_details(AuditKind.THROTTLED, details) == [problem]


def test_check_details_takes_ints_for_floats_and_null_where_declared() -> None:
    assert check_details(AuditKind.THROTTLED, {"path": "/a", "wait_s": 2}) == []
    facts = {"status": None, "reason": "timeout", "retry_in_s": 0.5}
    assert check_details(AuditKind.TOKEN_FAILED, facts) == []
    assert check_details(AuditKind.TOKEN_FAILED, {**facts, "status": 1.5}) == [
        "token.failed: 'status' is float, declared int or null"
    ]


def test_check_details_wants_the_enum_not_a_string() -> None:
    assert check_details("socket.connected", {"socket_id": 1}) == [
        "kind 'socket.connected' is not an AuditKind"
    ]


def test_building_a_mismatched_event_warns() -> None:
    with pytest.warns(AuditDetailsWarning, match="socket.connected: missing 'socket_id'"):
        AuditEvent(AuditKind.SOCKET_CONNECTED, 1.0, "ch", {})


def test_the_suite_fails_on_a_mismatched_event() -> None:
    # pyproject's filterwarnings = error: any test that builds a bad event fails here.
    with pytest.raises(AuditDetailsWarning):
        AuditEvent(AuditKind.CHANNEL_GONE, 1.0, "ch", {"why": "404"})


def test_building_a_declared_event_is_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        event = AuditEvent(AuditKind.CHANNEL_GONE, 1.0, "ch")
    assert event.details == {}


# ----------------------------------------------------------------------------- the writers
def test_producer_hooks_write_declared_events() -> None:
    metrics = ProducerMetrics()
    facts = FactQueue(100, metrics)
    hooks = ProducerHooks(metrics, facts)
    hooks.on_token_refreshed(86_399)
    hooks.on_login_throttled(2.5)
    hooks.on_throttled("/api/v2/notifications/channels", 1)
    hooks.on_failed(OutRecord("genesys.metrics", b"k", b"v", ()), "Local: Timed out", True)
    hooks.on_producer_replaced("fatal: UNKNOWN_PRODUCER_ID", 3)
    events: list[AuditEvent] = []
    while isinstance(event := facts.get_nowait(), AuditEvent):
        events.append(event)
    assert [e.kind for e in events] == [
        AuditKind.TOKEN_ISSUED, AuditKind.THROTTLED, AuditKind.THROTTLED,
        AuditKind.PUBLISH_FAILED, AuditKind.PRODUCER_REPLACED,
    ]  # fmt: skip
    assert all(check_details(e.kind, e.details) == [] for e in events)
    assert events[1].details == {"path": "/oauth/token", "wait_s": 2.5}


@pytest.mark.parametrize("breached", [True, False])
def test_slo_changes_write_declared_events(breached: bool) -> None:
    change = SloChange("latency_p95", "observation", "queue", breached, 7.5, 5.0, 0, 60_000)
    event = change.audit_event()
    assert event.kind == change.kind
    assert check_details(event.kind, event.details) == []
    assert event.at == 60.0
