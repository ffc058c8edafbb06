"""The fault plan: REST failures consumed by count, WebSocket intents, frame shaping."""

from __future__ import annotations

import json

import pytest

from pipeline.emulator.state.channels import ChannelId
from pipeline.emulator.state.faults import (
    DropSocket,
    DuplicateFrames,
    ExpireChannel,
    FaultPlan,
    MalformedFrames,
    OversizedFrames,
    ReorderFrames,
    ResumeHeartbeats,
    SendSocketClosing,
    SocketAction,
    StopHeartbeats,
    TruncatedFrames,
)

CH1, CH2 = ChannelId("streaming-0-one"), ChannelId("streaming-0-two")
CHANNELS = "/api/v2/notifications/channels"


def frame(n: int) -> str:
    return json.dumps({"topicName": "v2.users.u1.presence", "eventBody": {"n": n}})


def test_fail_requests_answers_the_next_n_requests_then_stops() -> None:
    plan = FaultPlan()
    plan.fail_requests(2, 503)
    taken = [plan.take_request_fault(CHANNELS, now=float(i)) for i in range(3)]
    assert [f.status if f else None for f in taken] == [503, 503, None]
    assert plan.pending_request_faults() == 0
    assert [(c.at, c.path, c.fault.status) for c in plan.consumed] == [
        (0.0, CHANNELS, 503),
        (1.0, CHANNELS, 503),
    ]


def test_path_prefix_limits_which_requests_fail() -> None:
    plan = FaultPlan()
    plan.fail_requests(1, 500, path_prefix="/api/v2/analytics")
    assert plan.take_request_fault(CHANNELS, now=0.0) is None
    fault = plan.take_request_fault("/api/v2/analytics/queues/observations/query", now=1.0)
    assert fault is not None
    assert fault.error().code == "internal.server.error"


def test_rules_are_used_in_planning_order() -> None:
    plan = FaultPlan()
    plan.fail_requests(1, 500)
    plan.fail_requests(1, 503)
    first = plan.take_request_fault("/x", now=0.0)
    second = plan.take_request_fault("/x", now=0.0)
    assert first is not None
    assert second is not None
    assert (first.status, second.status) == (500, 503)


def test_429_with_retry_after_has_header_and_retry_after_code() -> None:
    plan = FaultPlan()
    plan.fail_requests(1, 429, retry_after=3)
    fault = plan.take_request_fault("/x", now=0.0)
    assert fault is not None
    error = fault.error()
    assert (error.status, error.code) == (429, "too.many.requests.retry.after")
    assert error.headers == {"Retry-After": "3"}


def test_429_without_retry_after_has_no_header() -> None:
    plan = FaultPlan()
    plan.fail_requests(1, 429)
    fault = plan.take_request_fault("/x", now=0.0)
    assert fault is not None
    error = fault.error()
    assert (error.status, error.code) == (429, "too.many.requests")
    assert "Retry-After" not in error.headers


def test_503_uses_service_unavailable() -> None:
    plan = FaultPlan()
    plan.fail_requests(1, 503)
    fault = plan.take_request_fault("/x", now=0.0)
    assert fault is not None
    assert fault.error().code == "service.unavailable"


@pytest.mark.parametrize(("count", "status"), [(0, 500), (1, 200), (1, 600)])
def test_fail_requests_refuses_nonsense(count: int, status: int) -> None:
    with pytest.raises(ValueError, match=r"count|status"):
        FaultPlan().fail_requests(count, status)


def test_socket_actions_are_drained_per_channel_in_order() -> None:
    plan = FaultPlan()
    plan.inject(SendSocketClosing(CH1, close_after=0.5))
    plan.inject(DropSocket(CH2))
    plan.inject(DropSocket(CH1))
    assert plan.take_socket_actions(CH1) == [SendSocketClosing(CH1, 0.5), DropSocket(CH1)]
    assert plan.take_socket_actions(CH1) == []
    assert plan.take_socket_actions(CH2) == [DropSocket(CH2)]


def test_socket_actions_pattern_match() -> None:
    plan = FaultPlan()
    plan.inject(SendSocketClosing(CH1, close_after=2.0))

    def describe(action: SocketAction) -> str:
        match action:
            case DropSocket(channel_id=cid):
                return f"drop {cid}"
            case SendSocketClosing(channel_id=cid, close_after=delay):
                return f"closing {cid} in {delay}"

    assert [describe(a) for a in plan.take_socket_actions(CH1)] == [f"closing {CH1} in 2.0"]


def test_heartbeats_pause_and_resume_per_channel() -> None:
    plan = FaultPlan()
    plan.inject(StopHeartbeats(CH1))
    assert (plan.heartbeats_paused(CH1), plan.heartbeats_paused(CH2)) == (True, False)
    plan.inject(ResumeHeartbeats(CH1))
    assert not plan.heartbeats_paused(CH1)


def test_heartbeats_pause_and_resume_everywhere() -> None:
    plan = FaultPlan()
    plan.inject(StopHeartbeats(CH1))
    plan.inject(StopHeartbeats())
    assert plan.heartbeats_paused(CH2)
    plan.inject(ResumeHeartbeats())
    assert not plan.heartbeats_paused(CH1)
    assert not plan.heartbeats_paused(CH2)


def test_malformed_frames_are_not_json_for_n_frames() -> None:
    plan = FaultPlan()
    plan.inject(MalformedFrames(CH1, count=2))
    sent = [plan.shape_frame(CH1, frame(n)) for n in range(3)]
    for bad in (sent[0][0], sent[1][0]):
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad)
    assert sent[2] == [frame(2)]


def test_oversized_frames_stay_json_and_reach_their_size() -> None:
    plan = FaultPlan()
    plan.inject(OversizedFrames(CH1, count=1, size=10_000))
    (big,) = plan.shape_frame(CH1, frame(0))
    assert len(big) >= 10_000
    assert json.loads(big)["eventBody"] == {"n": 0}
    assert plan.shape_frame(CH1, frame(1)) == [frame(1)]


def test_garbage_answers_are_planned_like_request_faults() -> None:
    plan = FaultPlan()
    plan.answer_garbage(2, CHANNELS)
    assert plan.take_request_fault("/api/v2/users", 0.0) is None
    faults = [plan.take_request_fault(CHANNELS, 0.0) for _ in range(3)]
    assert [f is not None and f.garbage and f.status == 200 for f in faults] == [True, True, False]
    with pytest.raises(ValueError, match="count"):
        plan.answer_garbage(0)


def test_truncated_frames_lose_their_tail() -> None:
    plan = FaultPlan()
    plan.inject(TruncatedFrames(CH1))
    [cut] = plan.shape_frame(CH1, frame(0))
    assert frame(0).startswith(cut)
    assert len(cut) < len(frame(0))
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    assert plan.shape_frame(CH1, frame(1)) == [frame(1)]


def test_duplicate_frames_are_sent_twice() -> None:
    plan = FaultPlan()
    plan.inject(DuplicateFrames(CH1, count=1))
    assert plan.shape_frame(CH1, frame(0)) == [frame(0), frame(0)]
    assert plan.shape_frame(CH1, frame(1)) == [frame(1)]


def test_reorder_holds_n_frames_then_sends_them_reversed() -> None:
    plan = FaultPlan()
    plan.inject(ReorderFrames(CH1, count=3))
    assert plan.shape_frame(CH1, frame(0)) == []
    assert plan.shape_frame(CH1, frame(1)) == []
    assert plan.shape_frame(CH1, frame(2)) == [frame(2), frame(1), frame(0)]
    assert plan.shape_frame(CH1, frame(3)) == [frame(3)]


def test_frame_faults_touch_only_their_channel() -> None:
    plan = FaultPlan()
    plan.inject(DuplicateFrames(CH1))
    assert plan.shape_frame(CH2, frame(0)) == [frame(0)]


def test_frame_fault_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        FaultPlan().inject(ReorderFrames(CH1, count=1))
    with pytest.raises(ValueError, match="at least 1"):
        FaultPlan().inject(MalformedFrames(CH1, count=0))


def test_state_faults_are_refused_by_the_plan() -> None:
    with pytest.raises(TypeError, match="not a WebSocket fault"):
        FaultPlan().inject(ExpireChannel(CH1))  # type: ignore[arg-type]  # the point of the test


def test_clear_forgets_plans_but_keeps_the_log() -> None:
    plan = FaultPlan()
    plan.fail_requests(5, 500)
    plan.take_request_fault("/x", now=0.0)
    plan.inject(DropSocket(CH1))
    plan.inject(StopHeartbeats())
    plan.clear()
    assert plan.take_request_fault("/x", now=1.0) is None
    assert plan.take_socket_actions(CH1) == []
    assert not plan.heartbeats_paused(CH1)
    assert len(plan.consumed) == 1
