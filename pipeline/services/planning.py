"""``pipeline plan``: the dry run from a subscription file to channels and shards.

Offline (no credentials): only explicit ids are planned; names are listed as not resolved.
Online: names and queue members are resolved over REST (every page, by ``nextUri``), the
topics are checked against the org's ``availabletopics``, and the analytics API says which
metrics returned data lately. Topic permissions cannot be known without subscribing (per
topic and division, §5.6): the plan lists what each topic family needs and says they are
checked at subscribe time, where refused topics are skipped and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from pipeline.core.subscription.availability import AvailabilityReport, render_availability_text
from pipeline.core.subscription.planner import Plan, expand_topics, plan_shards, render_plan_text
from pipeline.core.subscription.resolution import (
    ResolvedEntities,
    lookups_needed,
    unresolved_references,
)
from pipeline.core.subscription.spec import SubscriptionSpec
from pipeline.errors import SubscriptionError
from pipeline.genesys.client import genesys_client
from pipeline.genesys.directory import (
    PERMISSIONS_NOTE,
    check_availability,
    check_topics,
    resolve_entities,
    topic_permissions,
)
from pipeline.genesys.rest import GenesysRest

__all__ = ["PlanOutcome", "plan_offline", "plan_online", "resolve_plan"]


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """A plan and what was learned making it."""

    plan: Plan
    online: bool
    notes: list[str] = field(default_factory=list)
    availability: AvailabilityReport | None = None
    permissions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json``."""
        return {
            "online": self.online,
            "plan": self.plan.to_dict(),
            "notes": self.notes,
            "availability": None if self.availability is None else self.availability.to_dict(),
            "permissions": {"checked": "at subscribe time", "needs": self.permissions},
        }

    def render_text(self) -> str:
        """The human summary."""
        parts = [render_plan_text(self.plan)]
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        parts.append("\n".join([PERMISSIONS_NOTE, *(f"  {line}" for line in self.permissions)]))
        if self.availability is not None:
            parts.append(render_availability_text(self.availability))
        elif not self.online:
            parts.append("metric availability: not checked (no GENESYS_CLIENT_ID/SECRET)")
        return "\n\n".join(parts)


def plan_offline(spec: SubscriptionSpec, shards: int, client_per_shard: bool) -> PlanOutcome:
    """Plan what explicit ids allow; names stay unresolved (listed as notes)."""
    directory = ResolvedEntities()
    topics = expand_topics(spec, directory)
    plan = plan_shards(topics, shards, client_per_shard=client_per_shard)
    return PlanOutcome(plan, online=False, notes=unresolved_references(spec, directory))


async def resolve_plan(
    rest: GenesysRest, spec: SubscriptionSpec, shards: int, client_per_shard: bool
) -> tuple[Plan, ResolvedEntities]:
    """Resolve the spec's names against the org, check its topics, and plan the shards.

    Raises:
        SubscriptionError: names the org does not have, or topics it does not offer.
    """
    directory = await resolve_entities(rest, lookups_needed(spec))
    problems = unresolved_references(spec, directory)
    topics = expand_topics(spec, directory)
    problems += await check_topics(rest, topics)
    if problems:
        raise SubscriptionError(problems)
    return plan_shards(topics, shards, client_per_shard=client_per_shard), directory


async def plan_online(
    spec: SubscriptionSpec,
    api_base: str,
    client_id: str,
    client_secret: SecretStr,
    shards: int,
    client_per_shard: bool,
) -> PlanOutcome:
    """Resolve against the org, check topics, plan, and report metric availability.

    Raises:
        SubscriptionError: names the org does not have, or topics it does not offer.
    """
    async with genesys_client(api_base, client_id, client_secret) as rest:
        plan, directory = await resolve_plan(rest, spec, shards, client_per_shard)
        availability = await check_availability(rest, spec, directory)
        topics = [t for shard in plan.shards for c in shard.channels for t in c.topics]
        permissions = await topic_permissions(rest, topics)
    return PlanOutcome(plan, online=True, availability=availability, permissions=permissions)
