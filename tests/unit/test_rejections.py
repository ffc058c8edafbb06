"""Reading refused topics out of a subscription answer (ignoreErrors=true, §5.6)."""

from __future__ import annotations

from pipeline.core.genesys.rejections import (
    MAX_LISTED,
    NOT_IN_ANSWER,
    RejectedTopic,
    rejected_topics,
    rejection_details,
)

Q1 = "v2.analytics.queues.q1.observations"
Q2 = "v2.analytics.queues.q2.observations"
Q3 = "v2.analytics.queues.q3.observations"


def entry(topic: str, state: str = "Permitted", **extra: object) -> dict[str, object]:
    return {"id": topic, "state": state, **extra}


def test_rejected_entries_come_back_with_reason_and_permissions() -> None:
    answer = {
        "entities": [
            entry(Q1),
            entry(Q2, "Rejected", rejectionReason="Not authorized for this topic.",
                  missingPermissions=["analytics:queueObservation:view"]),
        ]
    }  # fmt: skip
    assert rejected_topics([Q1, Q2], answer) == (
        RejectedTopic(Q2, "Not authorized for this topic.", ("analytics:queueObservation:view",)),
    )


def test_a_requested_topic_missing_from_the_answer_counts_as_refused() -> None:
    answer = {"entities": [entry(Q1)]}
    assert rejected_topics([Q1, Q3, Q3], answer) == (RejectedTopic(Q3, NOT_IN_ANSWER),)


def test_a_compound_request_is_answered_by_its_expansion() -> None:
    answer = {"entities": [entry("v2.users.u1.presence"), entry("v2.users.u1.routingStatus")]}
    assert rejected_topics(["v2.users.u1?presence&routingStatus"], answer) == ()


def test_a_malformed_answer_refuses_nothing() -> None:
    assert rejected_topics([Q1], None) == ()
    assert rejected_topics([Q1], {"entities": "nope"}) == ()
    answer = {"entities": [7, {"id": 3}, entry(Q1, "Rejected", missingPermissions="x")]}
    assert rejected_topics([Q1], answer) == (RejectedTopic(Q1),)


def test_audit_details_count_everything_and_list_a_bounded_sample() -> None:
    refused = [RejectedTopic(f"t{i}", "no", ("p:a", "p:b")) for i in range(MAX_LISTED + 5)]
    refused.append(RejectedTopic("last", "", ("p:c",)))
    details = rejection_details(refused, "channel.extend")
    assert details["topics"] == MAX_LISTED + 6
    assert details["topic_names"] == [f"t{i}" for i in range(MAX_LISTED)]
    assert details["reason"] == "no"
    assert details["missing_permissions"] == ["p:a", "p:b", "p:c"]
    assert details["call"] == "channel.extend"
