"""Ask the org what the subscription file names: queues, members, wrap-up codes, topics.

The shell side of ``pipeline plan``: the pure planner says what to look up
(:func:`~pipeline.core.subscription.resolution.lookups_needed`), this module fetches it over
REST and hands back plain values
(:class:`~pipeline.core.subscription.resolution.ResolvedEntities`, problem lines, an
availability report).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from pipeline.core.genesys.topics import QueueId, UserId, WrapupCodeId
from pipeline.core.subscription.availability import (
    AvailabilityQuery,
    AvailabilityReport,
    availability_query_bodies,
    availability_report,
)
from pipeline.core.subscription.planner import PlannedTopic
from pipeline.core.subscription.resolution import Lookups, ResolvedEntities
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.genesys.rest import GenesysRest

__all__ = [
    "PERMISSIONS_NOTE",
    "check_availability",
    "check_topics",
    "resolve_entities",
    "topic_permissions",
]

PERMISSIONS_NOTE = (
    "topic permissions: checked by Genesys at subscribe time, per topic and division (a plan "
    "cannot subscribe); refused topics are skipped, audited as subscription.rejected and "
    "counted in genesys_pipeline_topics_rejected"
)
"""What ``pipeline plan`` says about permissions (docs/genesys-api.md §5.6)."""

log = logging.getLogger(__name__)


async def resolve_entities(rest: GenesysRest, lookups: Lookups) -> ResolvedEntities:
    """Fetch the org's queues (and the members and wrap-up codes the spec needs)."""
    queues = await rest.queues()
    by_name = {str(q["name"]): QueueId(str(q["id"])) for q in queues}
    member_queues = set(lookups.member_queue_ids)
    member_queues |= {by_name[name] for name in lookups.member_queue_names if name in by_name}
    members: dict[QueueId, tuple[UserId, ...]] = {}
    for queue_id in sorted(member_queues):
        listing = await rest.queue_members(queue_id)
        members[queue_id] = tuple(UserId(str(m["id"])) for m in listing)
    codes: dict[str, WrapupCodeId] = {}
    if lookups.wrapup_code_names:
        codes = {str(c["name"]): WrapupCodeId(str(c["id"])) for c in await rest.wrapup_codes()}
    return ResolvedEntities(
        queues_by_name=by_name,
        queue_members=members,
        wrapup_codes_by_name=codes,
        known_queue_ids=frozenset(by_name.values()),
        known_wrapup_ids=frozenset(codes.values()) if codes else None,
        fetched=True,
    )


async def check_topics(rest: GenesysRest, topics: Iterable[PlannedTopic]) -> list[str]:
    """Problem lines for planned topics whose template the org does not offer."""
    offered = {str(t["id"]) for t in await rest.available_topics()}
    missing = sorted({t.family for t in topics} - offered)
    return [f"topic {family} is not in this org's availabletopics" for family in missing]


async def topic_permissions(rest: GenesysRest, topics: Iterable[PlannedTopic]) -> list[str]:
    """One line per planned topic family: the permissions Genesys will check for it.

    ``availabletopics?expand=requiresPermissions`` names them (§5.1); whether this OAuth
    client holds them, and in which divisions, only the subscribe answer tells (§5.6).
    """
    offered = await rest.available_topics(["requiresPermissions"])
    needs = {str(t["id"]): t.get("requiresPermissions") or [] for t in offered}
    lines = []
    for family in sorted({t.family for t in topics}):
        permissions = [str(p) for p in needs.get(family, [])]
        lines.append(f"{family} needs {', '.join(permissions) or 'no permission'}")
    return lines


async def check_availability(
    rest: GenesysRest,
    spec: SubscriptionSpec,
    directory: ResolvedEntities,
    now: datetime | None = None,
) -> AvailabilityReport:
    """Run the availability queries and report which metrics returned data for whom."""
    queries = availability_query_bodies(spec, directory, now=now or datetime.now(UTC))
    answers = [await _answer(rest, query) for query in queries]
    return availability_report(queries, answers)


async def _answer(rest: GenesysRest, query: AvailabilityQuery) -> object:
    answer = await rest.request("POST", query.path, json=query.body)
    return answer if answer is not None else {}
