"""Aggregate query rules (docs/genesys-api.md §7.3, §7.4): the emulator enforces them, the
client's queries keep to them.

VERIFIED rules are fixed: at most 100 userId predicates in a user aggregate query, no
granularity means one bucket. BELIEF rules are ``QueryRules`` (``EmulatorConfig``): the 31-day
cap and the granularity steps, PT15M for conversation aggregates and PT30M for user aggregates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.core.genesys.backfill import plan_snapshot
from pipeline.core.genesys.topics import UserId
from pipeline.core.subscription.availability import (
    USER_GRANULARITY,
    availability_query_bodies,
    user_window,
)
from pipeline.core.subscription.planner import ResolvedEntities
from pipeline.core.subscription.rules import parse_duration
from pipeline.core.subscription.spec import parse_spec
from pipeline.emulator.analytics.queries import (
    query_conversation_aggregates,
    query_user_aggregates,
)
from pipeline.emulator.analytics.request import DEFAULT_RULES, QueryError, QueryRules
from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.server import _query_rules
from pipeline.emulator.simulation.center import ContactCenter
from pipeline.emulator.simulation.model import SimulationConfig

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
HOURS = "2026-05-04T06:30:00.000Z/2026-05-04T08:30:00.000Z"  # inside the history
NOW = datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def cc() -> ContactCenter:
    return ContactCenter(SimulationConfig(queues=3, agents=20, seed=2, history_s=3 * 3600), START)


def users(cc: ContactCenter, rules: QueryRules = DEFAULT_RULES, **body: Any) -> Any:
    query = {"interval": HOURS, "metrics": ["tAgentRoutingStatus"], "groupBy": ["userId"]}
    return query_user_aggregates(cc, {**query, **body}, rules)


def conversations(cc: ContactCenter, rules: QueryRules = DEFAULT_RULES, **body: Any) -> Any:
    query = {"interval": HOURS, "metrics": ["nOffered"]}
    return query_conversation_aggregates(cc, {**query, **body}, rules)


def refused(call: Any, *args: Any, **kwargs: Any) -> QueryError:
    with pytest.raises(QueryError) as caught:
        call(*args, **kwargs)
    return caught.value


# ----------------------------------------------------------------------------- the emulator
@pytest.mark.parametrize("granularity", ["PT30M", "PT1H", "PT90M", "P1D"])
def test_user_aggregates_take_multiples_of_half_an_hour(
    cc: ContactCenter, granularity: str
) -> None:
    assert users(cc, interval="2026-05-03T09:00:00.000Z/2026-05-04T11:00:00.000Z",
                 granularity=granularity)["results"]  # fmt: skip


@pytest.mark.parametrize("granularity", ["PT15M", "PT45M", "PT10M"])
def test_user_aggregates_refuse_other_granularities_by_default(
    cc: ContactCenter, granularity: str
) -> None:
    error = refused(users, cc, granularity=granularity)
    assert (error.status, error.code) == (400, "constraint.validation")
    assert "must be a multiple of PT30M (e.g. PT30M, PT1H, PT2H, P1D)" in error.message


def test_the_user_granularity_rule_is_a_setting(cc: ContactCenter) -> None:
    rules = QueryRules(user_granularity_minutes=15)
    assert users(cc, rules, granularity="PT15M")["results"]
    assert (
        "multiple of PT1H"
        in refused(
            conversations, cc, QueryRules(conversation_granularity_minutes=60), granularity="PT30M"
        ).message
    )


def test_conversation_aggregates_take_quarter_hours_by_default(cc: ContactCenter) -> None:
    assert len(conversations(cc, granularity="PT15M")["results"][0]["data"]) == 8
    assert "multiple of PT15M" in refused(conversations, cc, granularity="PT10M").message


def test_no_granularity_is_one_bucket(cc: ContactCenter) -> None:
    [group] = conversations(cc)["results"]
    assert [b["interval"] for b in group["data"]] == [HOURS]


@pytest.mark.parametrize("query", [users, conversations])
def test_the_interval_cap_is_31_days_and_a_setting(cc: ContactCenter, query: Any) -> None:
    month = "2026-04-03T09:00:00.000Z/2026-05-04T09:00:00.000Z"  # 31 days
    longer = "2026-04-03T08:59:00.000Z/2026-05-04T09:00:00.000Z"
    query(cc, interval=month)  # accepted (no data that far back is fine)
    assert "longer than 31 days" in refused(query, cc, interval=longer).message
    week = QueryRules(max_interval_days=7)
    error = refused(query, cc, week, interval="2026-04-26T09:00:00.000Z/2026-05-04T09:00:00.000Z")
    assert "longer than 7 days" in error.message


def user_filter(count: int) -> dict[str, Any]:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    half = count // 2
    return {"type": "or", "clauses": [  # predicates in nested clauses count too
        {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in ids[:half]]},
        {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in ids[half:]]},
    ]}  # fmt: skip


def test_a_user_query_holds_at_most_100_user_ids(cc: ContactCenter) -> None:
    users(cc, filter=user_filter(100))
    error = refused(users, cc, filter=user_filter(101))
    assert (error.code, error.message) == (
        "constraint.validation",
        "filter: 101 userId predicates; a query may hold at most 100 (split the users over "
        "several queries)",
    )


def test_the_emulator_config_sets_the_rules() -> None:
    config = EmulatorConfig(query_max_interval_days=7, conversation_granularity_minutes=30,
                            user_granularity_minutes=60)  # fmt: skip
    assert _query_rules(config) == QueryRules(7, 30, 60)
    assert _query_rules(EmulatorConfig()) == DEFAULT_RULES == QueryRules(31, 15, 30)
    with pytest.raises(ValueError, match="at least 1"):
        QueryRules(max_interval_days=0)


# ----------------------------------------------------------------------------- the client
def spec(analytics: str, users: int = 1) -> Any:
    ids = ", ".join(f"00000000-0000-4000-8000-{i:012d}" for i in range(users))
    return parse_spec(
        f"analytics: {analytics}\nsubscriptions:\n"
        f"  - {{name: u, users: {{ids: [{ids}]}}, metrics: [tSystemPresence]}}\n"
        "  - {name: q, queues: [{id: 8f7e2c1a-0000-4000-8000-000000000001}], metrics: [nOffered]}\n"
    )


@pytest.mark.parametrize(
    ("analytics", "user_granularity", "queue_granularity"),
    [("{granularity: PT30M, interval: PT1H}", "PT30M", "PT30M"),
     ("{granularity: PT15M, interval: PT1H}", "PT30M", "PT15M"),
     ("{granularity: PT45M, interval: PT2H}", "PT1H", "PT45M"),
     ("{granularity: PT15M, interval: PT15M}", None, "PT15M"),  # PT30M > the look-back
     ("{granularity: P1D, interval: P7D}", "P1D", "P1D")],
)  # fmt: skip
def test_availability_user_queries_use_a_half_hour_granularity(
    analytics: str, user_granularity: str | None, queue_granularity: str
) -> None:
    queries = availability_query_bodies(spec(analytics), ResolvedEntities(), now=NOW)
    by_kind = {q.kind: q.body for q in queries}
    assert by_kind["user_aggregates"].get("granularity") == user_granularity
    assert by_kind["conversation_aggregates"]["granularity"] == queue_granularity
    assert by_kind["user_aggregates"]["interval"] == by_kind["conversation_aggregates"]["interval"]


def test_availability_user_queries_pass_the_emulators_rules(cc: ContactCenter) -> None:
    for analytics in (
        "{granularity: PT15M, interval: PT1H}",
        "{granularity: PT45M, interval: P1D}",
    ):
        for query in availability_query_bodies(spec(analytics), ResolvedEntities(), now=NOW):
            if query.kind == "user_aggregates":
                query_user_aggregates(cc, query.body)  # no QueryError
            else:
                query_conversation_aggregates(cc, query.body)


def test_availability_never_puts_more_than_100_users_in_a_query() -> None:
    queries = availability_query_bodies(
        spec("{granularity: PT30M, interval: PT1H}", users=250), ResolvedEntities(), now=NOW,
        max_entities=500,
    )  # fmt: skip
    user_queries = [q for q in queries if q.kind == "user_aggregates"]
    assert [len(q.entity_ids) for q in user_queries] == [100, 100, 50]
    assert next(q for q in queries if q.kind == "conversation_aggregates").entity_ids


def test_user_window_rounds_up_to_the_half_hour() -> None:
    window = {"interval": "x/y", "granularity": "PT20M", "timeZone": "UTC"}
    assert user_window(window, parse_duration("PT1H")) == {**window, "granularity": "PT30M"}
    assert parse_duration("PT30M") == USER_GRANULARITY


def test_backfill_user_queries_keep_to_the_rules(cc: ContactCenter) -> None:
    topics = [f"v2.analytics.users.{UserId(f'u{i}')}.aggregates" for i in range(230)]
    plan = plan_snapshot(topics, NOW.timestamp())
    assert [len(q["filter"]["predicates"]) for q in plan.user_queries] == [100, 100, 30]
    for body in plan.user_queries:
        query_user_aggregates(cc, body)  # PT30M, the current half hour: accepted
