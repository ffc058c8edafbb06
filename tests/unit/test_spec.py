"""The subscription file validates fully and says what is wrong: one line per problem, a path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.core.genesys.metrics import METRIC_ALIASES
from pipeline.core.subscription import model as spec_model, rules as spec_rules, spec as spec_module
from pipeline.core.subscription.spec import (
    QueueSubscription,
    TopicCount,
    UserSubscription,
    WrapupSubscription,
    count_topics,
    load_spec,
    login_base_url,
    parse_duration,
    parse_spec,
    render_spec_text,
)
from pipeline.errors import SubscriptionError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"
Q1 = "8f7e2c1a-0000-4000-8000-000000000001"
Q2 = "8f7e2c1a-0000-4000-8000-000000000002"
U1 = "6a1b0000-0000-4000-8000-000000000001"


def problems(text: str) -> list[str]:
    """The lines of the SubscriptionError that ``text`` raises."""
    with pytest.raises(SubscriptionError) as caught:
        parse_spec(text, "subs.yaml")
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def queue_sub(extra: str = "", queues: str = f"[{{id: {Q1}}}]") -> str:
    """A one-subscription file for queues, with ``extra`` lines in the subscription."""
    return f"subscriptions:\n  - name: q\n    queues: {queues}\n{extra}"


# ----------------------------------------------------------------------------- good files


def test_example_file_loads_cleanly() -> None:
    spec = load_spec(EXAMPLE)
    assert [s.name for s in spec.subscriptions] == [
        "support-queues",
        "sales-billing",
        "support-agents",
        "wrapups",
    ]
    assert [s.kind for s in spec.subscriptions] == ["queue", "queue", "user", "wrapup"]


def test_minimal_file_gets_every_default() -> None:
    spec = parse_spec(queue_sub())
    sub = spec.subscriptions[0]
    assert isinstance(sub, QueueSubscription)
    assert (spec.version, sub.topics, sub.metrics, sub.media_types) == (
        1,
        ("observations",),
        (),
        None,
    )
    assert (spec.analytics.granularity, spec.analytics.interval) == ("PT30M", "PT1H")
    assert spec.genesys.api_base_url is None
    assert spec.media_types_for(sub) == ()


def test_each_kind_defaults_to_the_topic_that_carries_its_metrics() -> None:
    spec = parse_spec(
        f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}}}\n"
        f"  - {{name: w, wrapup_codes: [{{id: {Q1}}}]}}\n"
    )
    assert [s.topics for s in spec.subscriptions] == [("aggregates",), ("aggregates",)]


def test_friendly_metric_names_keep_what_was_written_and_the_real_metric() -> None:
    spec = parse_spec(
        queue_sub("    metrics: [offered, serviceLevelPercent, oWaiting, answered]\n")
    )
    refs = spec.subscriptions[0].metrics
    assert [(r.name, r.metric) for r in refs] == [
        ("offered", "nOffered"),
        ("serviceLevelPercent", "oServiceLevel"),
        ("oWaiting", "oWaiting"),
        ("answered", "tAnswered"),
    ]
    assert refs[1].alias == METRIC_ALIASES["serviceLevelPercent"]
    assert (refs[1].alias.stat, refs[1].alias.scale) == ("ratio", 100.0)
    assert refs[2].alias is None


@pytest.mark.parametrize("alias", sorted(METRIC_ALIASES))
def test_every_alias_is_accepted_for_queues_and_wrapup_codes(alias: str) -> None:
    spec = parse_spec(
        queue_sub(f"    metrics: [{alias}]\n")
        + f"  - {{name: w, wrapup_codes: [{{id: {Q1}}}], metrics: [{alias}]}}\n"
    )
    assert {s.metrics[0].metric for s in spec.subscriptions} == {METRIC_ALIASES[alias].metric}


def test_real_metrics_lists_each_real_name_once() -> None:
    spec = parse_spec(queue_sub("    metrics: [answered, avgWaitTime, tAnswered, oWaiting]\n"))
    assert spec.subscriptions[0].real_metrics == ("tAnswered", "oWaiting")


def test_ids_are_lower_cased_and_durations_upper_cased() -> None:
    spec = parse_spec(
        queue_sub(queues=f"[{{id: {Q1.upper()}}}]")
        + "analytics: {granularity: pt1h, interval: p1d}\n"
    )
    sub = spec.subscriptions[0]
    assert isinstance(sub, QueueSubscription)
    assert sub.queues[0].id == Q1
    assert (spec.analytics.granularity, spec.analytics.interval_delta) == (
        "PT1H",
        timedelta(days=1),
    )


def test_subscription_media_types_override_the_defaults() -> None:
    spec = parse_spec(
        "defaults: {media_types: [voice, chat]}\n"
        + queue_sub("    media_types: [email]\n")
        + f"  - {{name: q2, queues: [{{id: {Q2}}}]}}\n"
        + f"  - {{name: u, users: {{ids: [{U1}]}}}}\n"
    )
    assert [spec.media_types_for(s) for s in spec.subscriptions] == [
        ("email",),
        ("voice", "chat"),
        (),
    ]


@pytest.mark.parametrize(
    ("genesys", "api", "login"),
    [
        ("{region: eu_west_1}", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        (
            "{region: us_east_2}",
            "https://api.use2.us-gov-pure.cloud",
            "https://login.use2.us-gov-pure.cloud",
        ),
        ("{api_url: 'http://127.0.0.1:8089/'}", "http://127.0.0.1:8089", "http://127.0.0.1:8089"),
        ("", None, None),
    ],
)
def test_genesys_section_maps_region_to_api_and_login_hosts(
    genesys: str, api: str | None, login: str | None
) -> None:
    spec = parse_spec(f"genesys: {genesys}\n" + queue_sub())
    assert (spec.genesys.api_base_url, spec.genesys.login_base_url) == (api, login)


def test_login_base_url_replaces_api_with_login_once() -> None:
    assert login_base_url("https://api.mypurecloud.com") == "https://login.mypurecloud.com"
    assert login_base_url("http://localhost:8089") == "http://localhost:8089"


def test_the_spec_is_frozen() -> None:
    spec = parse_spec(queue_sub())
    with pytest.raises(ValueError, match="frozen"):
        spec.version = 2  # type: ignore[misc]  # the point of the test


# ----------------------------------------------------------------------------- file level


def test_bad_yaml_is_one_line_with_line_and_column() -> None:
    assert problems("subscriptions:\n  - name: a\n    queues: [\n  x: y: z\n") == [
        "subs.yaml: line 4, column 7: invalid YAML: expected ',' or ']', but got ':'"
    ]


def test_a_key_given_twice_is_refused_with_its_line() -> None:
    assert problems(queue_sub("    metrics: [oWaiting]\n    metrics: [nOffered]\n")) == [
        "subs.yaml: line 5, column 5: invalid YAML: duplicate key 'metrics'"
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", "subs.yaml: the file is empty; it needs a subscriptions list"),
        ("# only a comment\n", "subs.yaml: the file is empty; it needs a subscriptions list"),
        ("- a\n", "subs.yaml: expected a mapping with a subscriptions list, got a list"),
        (
            "just text\n",
            "subs.yaml: expected a mapping with a subscriptions list, got the text 'just text'",
        ),
    ],
)
def test_a_file_that_is_not_a_mapping_is_one_line(text: str, line: str) -> None:
    assert problems(text) == [line]


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SubscriptionError) as caught:
        load_spec(missing)
    assert caught.value.problems == [
        f"{missing}: cannot read the subscription file: No such file or directory"
    ]


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"subscriptions: \xff\n")
    with pytest.raises(SubscriptionError) as caught:
        load_spec(path)
    assert caught.value.problems == [f"{path}: cannot read the subscription file: not UTF-8 text"]


def test_validation_errors_carry_no_pydantic_traceback() -> None:
    with pytest.raises(SubscriptionError) as caught:
        parse_spec("subscriptions: []\n")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# ----------------------------------------------------------------------------- shape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscriptions: []\n", ["subscriptions: must not be empty"]),
        ("genesys: {}\n", ["subscriptions: required field is missing"]),
        (queue_sub("    metrcs: [oWaiting]\n"),
         ["subscriptions[0].metrcs: unknown field (did you mean metrics?)"]),
        ("subscription: []\n", [
            "subscriptions: required field is missing",
            "subscription: unknown field (did you mean subscriptions?)",
        ]),
        ("genesys: {regoin: eu_west_1}\n" + queue_sub(),
         ["genesys.regoin: unknown field (did you mean region?)"]),
        (queue_sub(queues=f"[{{id: {Q1}, nme: x}}]"),
         ["subscriptions[0].queues[0].nme: unknown field (did you mean name?)"]),
        ("extra: 1\n" + queue_sub(), ["extra: unknown field"]),
        ("version: 2\n" + queue_sub(),
         ["version: unsupported version 2; this release reads version 1"]),
        ("subscriptions:\n  - {name: x, queues: [{id: " + Q1 + "}], metrics: oWaiting}\n",
         ["subscriptions[0].metrics: expected a list, got the text 'oWaiting'"]),
        ("subscriptions:\n  - {name: no, queues: [{id: " + Q1 + "}]}\n",
         ["subscriptions[0].name: expected text, got false (quote it: YAML reads yes/no/on/off "
          "as true/false)"]),
        (queue_sub(queues="[]"), ["subscriptions[0].queues: must not be empty"]),
        (queue_sub("    topics: []\n"), ["subscriptions[0].topics: must not be empty"]),
    ],
)  # fmt: skip
def test_shape_problems_are_reported_with_their_path(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(
    ("subscription", "line"),
    [
        ("{name: x, queue: [{id: " + Q1 + "}]}",
         "subscriptions[0]: needs one of queues, users or wrapup_codes (found 'queue': did you "
         "mean queues?)"),
        ("{name: x}", "subscriptions[0]: needs one of queues, users or wrapup_codes"),
        ("{name: x, queues: [{id: " + Q1 + "}], users: {ids: [" + U1 + "]}}",
         "subscriptions[0]: has both queues and users: a subscription covers one kind of entity; "
         "split it in two"),
        ("support",
         "subscriptions[0]: expected a mapping (a subscription), got the text 'support'"),
    ],
)  # fmt: skip
def test_a_subscription_must_name_exactly_one_kind(subscription: str, line: str) -> None:
    assert problems(f"subscriptions:\n  - {subscription}\n") == [line]


@pytest.mark.parametrize(
    ("ref", "line"),
    [
        ("{id: abc}", "subscriptions[0].queues[0].id: 'abc' is not a UUID (Genesys ids look like "
         "8f7e2c1a-0000-4000-8000-000000000001)"),
        ("{name: ''}", "subscriptions[0].queues[0].name: must not be empty"),
        ("{name: '   '}", "subscriptions[0].queues[0].name: must not be empty"),
        ("{}", "subscriptions[0].queues[0]: give id or name"),
        ("{id: " + Q1 + ", name: Support 01}",
         "subscriptions[0].queues[0]: give id or name, not both"),
        ("Support 01", "subscriptions[0].queues[0]: expected a mapping, got the text 'Support 01'"),
    ],
)  # fmt: skip
def test_entity_references_are_checked(ref: str, line: str) -> None:
    assert problems(queue_sub(queues=f"[{ref}]")) == [line]


def test_user_ids_must_be_uuids() -> None:
    assert problems("subscriptions:\n  - {name: u, users: {ids: [" + U1 + ", nope]}}\n") == [
        "subscriptions[0].users.ids[1]: 'nope' is not a UUID (Genesys ids look like "
        "8f7e2c1a-0000-4000-8000-000000000001)"
    ]


@pytest.mark.parametrize(
    ("users", "line"),
    [
        ("{}", "subscriptions[0].users: give ids, members_of_queues, or both"),
        ("[" + U1 + "]", "subscriptions[0].users: expected a mapping with ids and/or "
         "members_of_queues, got a list (write users: {ids: [...]})"),
    ],
)  # fmt: skip
def test_users_need_ids_or_queues(users: str, line: str) -> None:
    assert problems(f"subscriptions:\n  - {{name: u, users: {users}}}\n") == [line]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("support-queues", True),
        ("a.b_c-1", True),
        ("Support Queues", False),
        ("-x", False),
        ("x" * 65, False),
    ],
)
def test_subscription_names_are_short_safe_labels(name: str, ok: bool) -> None:
    text = f"subscriptions:\n  - {{name: '{name}', queues: [{{id: {Q1}}}]}}\n"
    if ok:
        assert parse_spec(text).subscriptions[0].name == name
    else:
        assert problems(text) == [
            f"subscriptions[0].name: '{name}' is not a valid subscription name: use up to 64 "
            "letters, digits, '-', '_' and '.' (e.g. support-queues)"
        ]


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("metric", "line"),
    [
        ("oWating", "unknown metric 'oWating' (did you mean oWaiting?)"),
        ("Offered", "unknown metric 'Offered' (did you mean offered?)"),
        ("zzz", "unknown metric 'zzz'"),
        ("nAnswered",
         "'nAnswered' is not supported: no such metric; use tAnswered and read stats.count"),
        ("skillGroup",
         "'skillGroup' is not supported: Genesys analytics has no skill-group dimension or "
         "topic; map the skill group to its member users or queues and aggregate by userId or "
         "queueId"),
        ("serviceLevelDuration",
         "'serviceLevelDuration' is not supported: not a metric: it is queue configuration "
         "(mediaSettings.<media>.serviceLevel.durationMs from GET /api/v2/routing/queues/{id}); "
         "oServiceLevel.target is the configured percentage"),
        ("tAgentRoutingStatus",
         "'tAgentRoutingStatus' is a user aggregate metric; queue subscriptions take queue "
         "observation metrics (oWaiting, ...) and conversation aggregate metrics "
         "(nOffered, tHandle, ...)"),
        ("3", "expected a metric name, got the number 3"),
    ],
)  # fmt: skip
def test_queue_metrics_are_checked_against_the_queue_catalogues(metric: str, line: str) -> None:
    assert problems(queue_sub(f"    metrics: [oWaiting, {metric}]\n")) == [
        f"subscriptions[0].metrics[1]: {line}"
    ]


@pytest.mark.parametrize(
    ("metric", "line"),
    [
        ("oWaiting", "'oWaiting' is a queue observation metric; user subscriptions take user "
         "aggregate metrics (tAgentRoutingStatus, tOrganizationPresence, tSystemPresence)"),
        ("offered",
         "'offered' means nOffered, a conversation aggregate metric; user subscriptions take "
         "user aggregate metrics (tAgentRoutingStatus, tOrganizationPresence, tSystemPresence)"),
        ("tAgentRoutingStatu",
         "unknown metric 'tAgentRoutingStatu' (did you mean tAgentRoutingStatus?)"),
    ],
)  # fmt: skip
def test_user_metrics_come_from_the_user_catalogue(metric: str, line: str) -> None:
    text = f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}, metrics: [{metric}]}}\n"
    assert problems(text) == [f"subscriptions[0].metrics[0]: {line}"]


def test_wrapup_codes_take_conversation_metrics_only() -> None:
    text = f"subscriptions:\n  - {{name: w, wrapup_codes: [{{id: {Q1}}}], metrics: [oWaiting]}}\n"
    assert problems(text) == [
        "subscriptions[0].metrics[0]: 'oWaiting' is a queue observation metric; wrap-up code "
        "subscriptions take conversation aggregate metrics (nOffered, tHandle, ...)"
    ]


def test_every_bad_metric_of_every_subscription_is_reported_at_once() -> None:
    text = (
        queue_sub("    metrics: [oWating, nAnswered]\n")
        + f"  - {{name: u, users: {{ids: [{U1}]}}, metrics: [skillGroup]}}\n"
    )
    assert [line.split(":")[0] for line in problems(text)] == [
        "subscriptions[0].metrics[0]",
        "subscriptions[0].metrics[1]",
        "subscriptions[1].metrics[0]",
    ]


# ----------------------------------------------------------------------------- topics


@pytest.mark.parametrize(
    ("topic", "line"),
    [
        ("observation", "unknown topic 'observation' (did you mean observations?); queue "
         "subscriptions take observations, activity, users, conversations"),
        ("presence", "'presence' is a user topic; queue subscriptions take observations, activity, "
         "users, conversations"),
    ],
)  # fmt: skip
def test_topics_are_checked_per_kind(topic: str, line: str) -> None:
    assert problems(queue_sub(f"    topics: [{topic}]\n")) == [
        f"subscriptions[0].topics[0]: {line}"
    ]


def test_metrics_need_a_topic_that_carries_them() -> None:
    text = (
        f"subscriptions:\n  - {{name: u, users: {{ids: [{U1}]}}, metrics: [tSystemPresence], "
        "topics: [presence]}\n"
    )
    assert problems(text) == [
        "subscriptions[0].topics: metrics arrive only on the aggregates topic; add aggregates "
        "to topics"
    ]


def test_the_queue_activity_topic_carries_only_a_few_metrics() -> None:
    assert problems(queue_sub("    metrics: [oWaiting, offered]\n    topics: [activity]\n")) == [
        "subscriptions[0].metrics[1]: 'offered' arrives only on the observations topic (activity "
        "carries oAlerting, oFlow, oInteracting, oLongestInteracting, oLongestWaiting, oWaiting); "
        "add observations to topics"
    ]


def test_oflow_arrives_only_on_the_queue_activity_topic() -> None:
    assert problems(queue_sub("    metrics: [oWaiting, oFlow]\n    topics: [observations]\n")) == [
        "subscriptions[0].metrics[1]: 'oFlow' arrives only on the activity topic "
        "(docs/genesys-api.md §6.3); add activity to topics"
    ]
    text = queue_sub("    metrics: [oFlow]\n    topics: [observations, activity]\n")
    spec = parse_spec(text, "subs.yaml")
    assert spec.subscriptions[0].real_metrics == ("oFlow",)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("genesys", "line"),
    [
        ("{region: eu-west-1}",
         "genesys.region: unknown region 'eu-west-1' (did you mean eu_west_1?)"),
        ("{region: mars}", "genesys.region: unknown region 'mars'"),
        ("{api_url: 'ftp://x'}",
         "genesys.api_url: 'ftp://x' is not an http(s) base URL like https://api.mypurecloud.ie"),
        ("{api_url: 'api.mypurecloud.ie'}",
         "genesys.api_url: 'api.mypurecloud.ie' is not an http(s) base URL like "
         "https://api.mypurecloud.ie"),
        ("{region: eu_west_1, api_url: 'https://api.mypurecloud.ie'}",
         "genesys: give region or api_url, not both"),
    ],
)  # fmt: skip
def test_genesys_section_is_checked(genesys: str, line: str) -> None:
    assert problems(f"genesys: {genesys}\n" + queue_sub()) == [line]


@pytest.mark.parametrize(
    ("media", "line"),
    [
        ("call", "unknown media type 'call' (did you mean voice?)"),
        ("emial", "unknown media type 'emial' (did you mean email?)"),
    ],
)
def test_media_types_are_analytics_names(media: str, line: str) -> None:
    assert problems(f"defaults: {{media_types: [{media}]}}\n" + queue_sub()) == [
        f"defaults.media_types[0]: {line}; choose from callback, chat, cobrowse, email, "
        "internalmessage, message, screenmonitoring, screenshare, unknown, video, voice"
    ]


@pytest.mark.parametrize(
    ("analytics", "line"),
    [
        ("{granularity: PT20M}",
         "analytics.granularity: 'PT20M' is not a multiple of PT15M (use PT15M, PT30M, PT1H, "
         "P1D ...)"),
        ("{granularity: 30m}",
         "analytics.granularity: '30m' is not an ISO-8601 duration like PT30M, PT1H or P1D"),
        ("{interval: P1M}",
         "analytics.interval: 'P1M' uses years or months, whose length varies; use days (P30D)"),
        ("{interval: P32D}",
         "analytics.interval: 'P32D' is longer than 31 days, the believed limit of synchronous "
         "aggregate queries (UNVERIFIED)"),
        ("{interval: PT0M}", "analytics.interval: 'PT0M' is zero"),
        ("{granularity: P1D, interval: PT1H}",
         "analytics: granularity P1D is longer than interval PT1H"),
    ],
)  # fmt: skip
def test_analytics_durations_are_checked(analytics: str, line: str) -> None:
    assert problems(f"analytics: {analytics}\n" + queue_sub()) == [line]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT1H30M", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(hours=36)),
        ("PT90S", timedelta(seconds=90)),
        ("pt30m", timedelta(minutes=30)),
    ],
)
def test_parse_duration_reads_weeks_to_seconds(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "P", "PT", "P1DT", "1H", "PT1.5H", "P1Y", "PT-1M"])
def test_parse_duration_refuses_other_forms(bad: str) -> None:
    with pytest.raises(ValueError, match=r"duration|years or months"):
        parse_duration(bad)


def test_sections_written_without_keys_take_their_defaults() -> None:
    spec = parse_spec("genesys:\ndefaults:\nanalytics:\n" + queue_sub())
    assert spec.genesys.api_base_url is None
    assert spec.analytics.granularity == "PT30M"


# ----------------------------------------------------------------------------- second pass


def test_duplicates_inside_a_list_are_errors() -> None:
    text = queue_sub(
        "    metrics: [oWaiting, nOffered, oWaiting]\n    topics: [observations, observations]\n",
        queues=f"[{{id: {Q1}}}, {{name: A}}, {{id: {Q1.upper()}}}, {{name: A}}]",
    )
    assert problems(text) == [
        f"subscriptions[0].queues[2]: duplicate of queues[0] (id {Q1})",
        "subscriptions[0].queues[3]: duplicate of queues[1] (name 'A')",
        "subscriptions[0].metrics[2]: duplicate of metrics[0] ('oWaiting')",
        "subscriptions[0].topics[1]: duplicate of topics[0] ('observations')",
    ]


def test_duplicate_user_references_and_subscription_names_are_errors() -> None:
    text = (
        queue_sub()
        + f"  - {{name: q, users: {{ids: [{U1}, {U1}], "
        + "members_of_queues: [{name: A}, {name: A}]}}\n"
    )
    assert problems(text) == [
        "subscriptions[1].name: duplicate subscription name 'q' (also subscriptions[0])",
        f"subscriptions[1].users.ids[1]: duplicate of ids[0] (id {U1})",
        "subscriptions[1].users.members_of_queues[1]: duplicate of members_of_queues[0] (name 'A')",
    ]


def test_two_metrics_with_one_real_name_are_not_duplicates() -> None:
    spec = parse_spec(queue_sub("    metrics: [answered, avgWaitTime, tAnswered]\n"))
    assert len(spec.subscriptions[0].metrics) == 3


def test_the_same_entity_in_two_subscriptions_is_allowed() -> None:
    spec = parse_spec(
        queue_sub() + f"  - {{name: q2, queues: [{{id: {Q1}}}], topics: [observations, users]}}\n"
    )
    assert count_topics(spec) == TopicCount(known=2, pending=0)


def test_second_pass_waits_for_a_well_formed_file() -> None:
    text = queue_sub("    metrics: [oWaiting, oWaiting]\n") + "  - {name: q, queues: [{id: bad}]}\n"
    assert problems(text) == [
        "subscriptions[1].queues[0].id: 'bad' is not a UUID (Genesys ids look like "
        "8f7e2c1a-0000-4000-8000-000000000001)"
    ]


# ----------------------------------------------------------------------------- budget


def _many_queues(count: int, topics: str, names: int = 0) -> str:
    refs = "".join(f"      - id: 00000000-0000-4000-8000-{i:012d}\n" for i in range(count))
    refs += "".join(f"      - name: Queue {i}\n" for i in range(names))
    return f"subscriptions:\n  - name: big\n    topics: {topics}\n    queues:\n{refs}"


def test_topic_budget_over_one_client_is_an_error_that_suggests_shards() -> None:
    assert problems(
        _many_queues(5001, "[observations, activity, users, conversations]", names=2)
    ) == [
        "subscriptions: 20,004 topics from explicit ids, plus what 2 references resolve to at "
        "plan time, but one OAuth client holds at most 20,000 (20 channels × 1,000 topics each, "
        "docs/genesys-api.md §5.4); split the set with --shards N and give each shard its own "
        "OAuth client: shards that share a client also share its 20 channels"
    ]


def test_topic_budget_grows_with_oauth_clients() -> None:
    text = _many_queues(5001, "[observations, activity, users, conversations]")
    spec = parse_spec(text, oauth_clients=2)
    assert count_topics(spec) == TopicCount(20_004, 0)
    assert str(count_topics(spec)) == "20,004 topics"


def test_topic_budget_at_the_limit_is_fine() -> None:
    assert (
        count_topics(
            parse_spec(_many_queues(5000, "[observations, activity, users, conversations]"))
        ).known
        == 20_000
    )


def test_count_topics_reports_pending_references() -> None:
    spec = load_spec(EXAMPLE)
    count = count_topics(spec)
    assert count == TopicCount(known=0, pending=9)
    assert (
        str(count) == "0 topics from explicit ids, plus what 9 references resolve to at plan time"
    )


# ----------------------------------------------------------------------------- text and API


def test_render_spec_text_shows_aliases_and_defaults() -> None:
    text = render_spec_text(load_spec(EXAMPLE))
    assert text.splitlines()[0] == (
        "4 subscriptions, 0 topics from explicit ids, plus what 9 references resolve to at plan "
        "time"
    )
    assert "serviceLevelPercent = oServiceLevel ratio × 100" in text
    assert "avgHandleTime = tHandle sum / count" in text
    assert (
        "- support-agents: users: 0 by id, members of 1 queue; topics: presence, routingStatus, "
        "aggregates" in text
    )
    assert "genesys: API URL from the environment (GENESYS_API_URL)" in text


def test_render_spec_text_marks_derived_aliases() -> None:
    text = render_spec_text(parse_spec(queue_sub("    metrics: [wrapupCount]\n")))
    assert "wrapupCount = tAcw count (derived)" in text


def test_subscription_classes_are_the_union_members() -> None:
    spec = parse_spec(
        queue_sub()
        + f"  - {{name: u, users: {{ids: [{U1}]}}}}\n"
        + "  - {name: w, wrapup_codes: [{name: Resolved}]}\n"
    )
    assert [type(s) for s in spec.subscriptions] == [
        QueueSubscription,
        UserSubscription,
        WrapupSubscription,
    ]


def test_a_spec_dumps_to_json_with_real_names_and_aliases() -> None:
    dumped = json.loads(load_spec(EXAMPLE).model_dump_json())
    first = dumped["subscriptions"][0]["metrics"][4]
    assert first["name"] == "offered"
    assert first["metric"] == "nOffered"
    assert first["alias"]["stat"] == "count"


@pytest.mark.parametrize("module", [spec_module, spec_model, spec_rules])
def test_module_exports_exist(module: object) -> None:
    assert all(hasattr(module, name) for name in module.__all__)  # type: ignore[attr-defined]
