"""An admin changes the emulated org: a member leaves a queue, a user's presence changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig
from pipeline.emulator.simulation.topics import bodies_for_topic

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def center(**changes: Any) -> ContactCenter:
    config = SimulationConfig(queues=2, agents=8, arrival_rate_per_queue_per_min=0.0, **changes)
    return ContactCenter(config, START)


def agent_states(cc: ContactCenter, queue_id: str) -> dict[tuple[str, str | None], int]:
    bodies = bodies_for_topic(cc, f"v2.analytics.queues.{queue_id}.observations")
    (body,) = [b for b in bodies if "mediaType" not in b["group"]]  # type: ignore[operator]
    return {
        (m["metric"], m.get("qualifier")): m["stats"]["count"]
        for m in body["data"][0]["metrics"]  # type: ignore[index]
    }


def test_member_who_leaves_is_announced_with_joined_false() -> None:
    cc = center()
    queue, user = cc.queues[0], cc.users[cc.members(0)[0]]
    before = agent_states(cc, queue.id)[("oMemberUsers", None)]
    assert cc.remove_member(queue.id, user.id)
    bodies = bodies_for_topic(cc, f"v2.routing.queues.{queue.id}.users")
    assert {(b["id"], b["joined"]) for b in bodies if b["id"] == user.id} == {(user.id, False)}
    assert sum(b["joined"] is True for b in bodies) == len(cc.members(0))
    assert agent_states(cc, queue.id)[("oMemberUsers", None)] == before - 1
    presences = sum(n for (m, _), n in agent_states(cc, queue.id).items() if m == "oUserPresences")
    assert presences == before - 1
    assert not cc.remove_member(queue.id, user.id)  # not a member any more


def test_presence_change_moves_the_queue_counts() -> None:
    cc = center()
    queue = cc.queues[0]
    user = cc.users[cc.members(0)[0]]
    cc.set_presence(user.id, "TRAINING")
    assert cc.user_snapshot(cc.user_index[user.id]).presence == "TRAINING"
    training = cc.org_presence_ids["TRAINING"]
    assert agent_states(cc, queue.id)[("oUserPresences", training)] >= 1
    with pytest.raises(ValueError, match="NOT_A_PRESENCE"):
        cc.set_presence(user.id, "NOT_A_PRESENCE")


def test_zero_qualifiers_are_left_out_when_asked() -> None:
    full, sparse = center(), center(omit_zero_qualifiers=True)
    queue = full.queues[0].id
    everything, some = agent_states(full, queue), agent_states(sparse, queue)
    assert {k: n for k, n in everything.items() if n or k[1] is None} == some
    assert len(some) < len(everything)
    user = sparse.users[sparse.members(0)[0]]
    sparse.set_presence(user.id, "MEAL")
    meal = ("oUserPresences", sparse.org_presence_ids["MEAL"])
    assert agent_states(sparse, queue)[meal] >= 1
    sparse.set_presence(user.id, "TRAINING")
    if all(sparse.user_snapshot(u).presence != "MEAL" for u in sparse.members(0)):
        assert meal not in agent_states(sparse, queue)
