"""Entity resolution: a spec's references (ids, names, queue members) → entity ids (pure).

The shell asks :func:`lookups_needed` what to fetch from the REST API (queue and wrap-up code
names, queue members), fetches it, and hands the answers over as a :class:`ResolvedEntities`.
Explicit ids need no lookup. An offline ``validate`` passes an empty ``ResolvedEntities()``:
names then stay unresolved and are reported as such (never guessed), while a fetched
directory reports them as unknown, with a "did you mean" when a name is close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.core.genesys.topics import QueueId, UserId, WrapupCodeId
from pipeline.core.subscription.rules import hint
from pipeline.core.subscription.spec import (
    EntityRef,
    QueueSubscription,
    Subscription,
    SubscriptionSpec,
    UserSubscription,
)

__all__ = [
    "Lookups",
    "ResolvedEntities",
    "SubscriptionEntities",
    "lookups_needed",
    "resolve_subscriptions",
    "unresolved_references",
]


@dataclass(frozen=True, slots=True)
class ResolvedEntities:
    """What the REST API said about the names in a spec (the shell fetches it).

    Attributes:
        queues_by_name: queue name → id (``GET /api/v2/routing/queues?name=``).
        queue_members: queue id → member user ids (``GET …/queues/{id}/members``).
        wrapup_codes_by_name: wrap-up code name → id (``GET /api/v2/routing/wrapupcodes``).
        known_queue_ids: every queue id of the org, to reject unknown explicit ids; ``None``
            when not fetched (explicit ids are then trusted).
        known_wrapup_ids: the same for wrap-up codes.
        fetched: True when the maps came from the API. False (the default, an offline
            ``validate``): unresolved names are "not resolved yet", not "unknown".
    """

    queues_by_name: Mapping[str, QueueId] = field(default_factory=dict)
    queue_members: Mapping[QueueId, tuple[UserId, ...]] = field(default_factory=dict)
    wrapup_codes_by_name: Mapping[str, WrapupCodeId] = field(default_factory=dict)
    known_queue_ids: frozenset[QueueId] | None = None
    known_wrapup_ids: frozenset[WrapupCodeId] | None = None
    fetched: bool = False


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the shell must fetch to resolve a spec.

    Attributes:
        queue_names: queue names to look up (including those in ``members_of_queues``).
        wrapup_code_names: wrap-up code names to look up.
        member_queue_ids: explicit queue ids whose members to fetch.
        member_queue_names: queues, by name, whose members to fetch once their id is known.
    """

    queue_names: tuple[str, ...]
    wrapup_code_names: tuple[str, ...]
    member_queue_ids: tuple[QueueId, ...]
    member_queue_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubscriptionEntities:
    """One subscription with its references resolved.

    Attributes:
        subscription: the subscription.
        entity_ids: resolved ids, first mention first, once each.
        unresolved: one ``<path>: <problem>`` line per reference that did not resolve.
    """

    subscription: Subscription
    entity_ids: tuple[str, ...]
    unresolved: tuple[str, ...]


def lookups_needed(spec: SubscriptionSpec) -> Lookups:
    """The names and member lists the shell must fetch before :func:`resolve_subscriptions`."""
    queues: dict[str, None] = {}
    codes: dict[str, None] = {}
    member_ids: dict[QueueId, None] = {}
    member_names: dict[str, None] = {}
    for sub in spec.subscriptions:
        if isinstance(sub, UserSubscription):
            for ref in sub.users.members_of_queues:
                if ref.name is not None:
                    queues[ref.name] = member_names[ref.name] = None
                elif ref.id is not None:
                    member_ids[QueueId(ref.id)] = None
            continue
        names = queues if isinstance(sub, QueueSubscription) else codes
        refs = sub.queues if isinstance(sub, QueueSubscription) else sub.wrapup_codes
        names.update((ref.name, None) for ref in refs if ref.name is not None)
    return Lookups(tuple(queues), tuple(codes), tuple(member_ids), tuple(member_names))


def _resolve_ref(
    ref: EntityRef,
    at: str,
    label: str,
    by_name: Mapping[str, str],
    known: frozenset[str] | None,
    fetched: bool,
) -> tuple[str | None, str | None]:
    if ref.id is not None:
        if known is not None and ref.id not in known:
            return None, f"{at}.id: no {label} with id {ref.id}"
        return ref.id, None
    name = ref.name or ""
    if name in by_name:
        return by_name[name], None
    if not fetched:
        return None, (
            f"{at}.name: {label} '{name}' not resolved yet (names resolve through the REST "
            "API at plan time)"
        )
    return None, f"{at}.name: no {label} named '{name}'{hint(name, by_name)}"


def resolve_subscriptions(
    spec: SubscriptionSpec, directory: ResolvedEntities
) -> tuple[SubscriptionEntities, ...]:
    """Resolve every subscription's references to entity ids (spec order)."""
    out: list[SubscriptionEntities] = []
    queues, fetched = directory.queues_by_name, directory.fetched
    for i, sub in enumerate(spec.subscriptions):
        at = f"subscriptions[{i}]"
        ids: list[str] = []
        problems: list[str] = []
        if isinstance(sub, UserSubscription):
            ids += sub.users.ids
            for j, ref in enumerate(sub.users.members_of_queues):
                path = f"{at}.users.members_of_queues[{j}]"
                queue_id, problem = _resolve_ref(
                    ref, path, "queue", queues, directory.known_queue_ids, fetched
                )
                members = directory.queue_members.get(QueueId(queue_id or ""))
                if problem is None and members is None:
                    problem = f"{path}: members of queue {queue_id} " + (
                        "were not fetched"
                        if fetched
                        else "resolve through the REST API at plan time"
                    )
                ids += members or ()
                problems += [problem] if problem else []
        else:
            is_queue = isinstance(sub, QueueSubscription)
            refs = sub.queues if isinstance(sub, QueueSubscription) else sub.wrapup_codes
            field_name, label = (
                ("queues", "queue") if is_queue else ("wrapup_codes", "wrap-up code")
            )
            by_name: Mapping[str, str] = queues if is_queue else directory.wrapup_codes_by_name
            known = directory.known_queue_ids if is_queue else directory.known_wrapup_ids
            for j, ref in enumerate(refs):
                entity_id, problem = _resolve_ref(
                    ref, f"{at}.{field_name}[{j}]", label, by_name, known, fetched
                )
                ids += [entity_id] if entity_id else []
                problems += [problem] if problem else []
        out.append(SubscriptionEntities(sub, tuple(dict.fromkeys(ids)), tuple(problems)))
    return tuple(out)


def unresolved_references(spec: SubscriptionSpec, directory: ResolvedEntities) -> list[str]:
    """One ``<path>: <problem>`` line per reference the directory could not resolve."""
    return [line for entry in resolve_subscriptions(spec, directory) for line in entry.unresolved]
