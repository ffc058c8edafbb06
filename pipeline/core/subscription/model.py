"""The pydantic model of a subscription file (pure; the schema is documented in ``spec``).

Every mapping rejects unknown keys (``extra="forbid"``) and every model is frozen. Single
values are checked by the rules in :mod:`pipeline.core.subscription.rules`; each raises a message
that :func:`pipeline.core.subscription.rules.error_lines` puts on one line with its path. A
subscription's kind is picked by its key (``queues``, ``users`` or ``wrapup_codes``), so
metric and topic names are checked against the right catalogue for that kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from pipeline.core.genesys.topics import UserId
from pipeline.core.subscription.rules import (
    KIND_KEYS,
    REGION_API_HOSTS,
    MetricRef,
    SubscriptionKind,
    check_api_url,
    check_duration,
    check_media_type,
    check_metric,
    check_non_blank,
    check_region,
    check_subscription_name,
    check_topic,
    check_uuid,
    check_version,
    login_base_url,
    parse_duration,
    problem,
)

__all__ = [
    "TAGS",
    "AnalyticsSection",
    "DefaultsSection",
    "EntityRef",
    "GenesysSection",
    "QueueSubscription",
    "Subscription",
    "SubscriptionSpec",
    "UserSelection",
    "UserSubscription",
    "WrapupSubscription",
]

_MAX_LOOKBACK: Final = timedelta(days=31)  # §7.2: believed sync aggregate-query limit, UNVERIFIED
_QUARTER_HOUR: Final = timedelta(minutes=15)


def _granularity(value: str) -> str:
    # §7.2: granularities are believed to be multiples of PT15M (UNVERIFIED; the emulator
    # enforces it too).
    if parse_duration(value) % _QUARTER_HOUR:
        raise problem(f"'{value}' is not a multiple of PT15M (use PT15M, PT30M, PT1H, P1D ...)")
    return value


def _lookback(value: str) -> str:
    if parse_duration(value) > _MAX_LOOKBACK:
        raise problem(
            f"'{value}' is longer than 31 days, the believed limit of synchronous aggregate "
            "queries (UNVERIFIED)"
        )
    return value


def _null_is_empty(value: object) -> object:
    # A section whose keys are all commented out is YAML null: read it as "all defaults".
    return {} if value is None else value


def _users_shape(value: object) -> object:
    if isinstance(value, list):
        raise problem(
            "expected a mapping with ids and/or members_of_queues, got a list "
            "(write users: {ids: [...]})"
        )
    return value


Uuid = Annotated[str, AfterValidator(check_uuid)]
EntityName = Annotated[str, AfterValidator(check_non_blank)]
MediaType = Annotated[str, AfterValidator(check_media_type)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenesysSection(_Strict):
    """Where the org lives. Credentials never go in the file: they come from the environment.

    Attributes:
        region: an SDK region name (§2.1), e.g. ``eu_west_1``.
        api_url: an http(s) API base URL instead (the emulator's, a gateway's).
    """

    region: Annotated[str, AfterValidator(check_region)] | None = None
    api_url: Annotated[str, AfterValidator(check_api_url)] | None = None

    @model_validator(mode="after")
    def _one_place(self) -> GenesysSection:
        if self.region is not None and self.api_url is not None:
            raise problem("give region or api_url, not both")
        return self

    @property
    def api_base_url(self) -> str | None:
        """The API base URL the file names, or ``None`` (the environment must say)."""
        if self.api_url is not None:
            return self.api_url
        return REGION_API_HOSTS[self.region] if self.region is not None else None

    @property
    def login_base_url(self) -> str | None:
        """The OAuth login base that goes with :attr:`api_base_url` (§2)."""
        base = self.api_base_url
        return login_base_url(base) if base is not None else None


class DefaultsSection(_Strict):
    """Defaults for every subscription.

    Attributes:
        media_types: media filter for queue subscriptions; empty means every media type.
    """

    media_types: tuple[MediaType, ...] = ()


class AnalyticsSection(_Strict):
    """The REST side: availability check and backfill queries (§7).

    Attributes:
        granularity: bucket size, ISO-8601, a multiple of PT15M.
        interval: look-back from now for the availability report, ISO-8601, at most 31 days.
    """

    granularity: Annotated[str, AfterValidator(check_duration), AfterValidator(_granularity)] = (
        "PT30M"
    )
    interval: Annotated[str, AfterValidator(check_duration), AfterValidator(_lookback)] = "PT1H"

    @model_validator(mode="after")
    def _fits(self) -> AnalyticsSection:
        if parse_duration(self.granularity) > parse_duration(self.interval):
            raise problem(f"granularity {self.granularity} is longer than interval {self.interval}")
        return self

    @property
    def interval_delta(self) -> timedelta:
        """:attr:`interval` as a ``timedelta``."""
        return parse_duration(self.interval)


class EntityRef(_Strict):
    """A queue or wrap-up code, by ``id`` (a UUID) or by ``name`` (resolved by ``plan``).

    Attributes:
        id: the entity id, lower-cased.
        name: the entity name, exactly as in Genesys.
    """

    id: Uuid | None = None
    name: EntityName | None = None

    @model_validator(mode="after")
    def _one_of(self) -> EntityRef:
        if self.id is None and self.name is None:
            raise problem("give id or name")
        if self.id is not None and self.name is not None:
            raise problem("give id or name, not both")
        return self

    @property
    def label(self) -> str:
        """``id <uuid>`` or ``name '<name>'``, for messages."""
        return f"id {self.id}" if self.id is not None else f"name '{self.name}'"


class _SubscriptionBase(_Strict):
    kind: ClassVar[SubscriptionKind]

    name: Annotated[str, AfterValidator(check_subscription_name)]
    metrics: tuple[MetricRef, ...] = ()
    topics: tuple[str, ...] = ()

    @property
    def real_metrics(self) -> tuple[str, ...]:
        """The real Genesys metric names asked for, first mention first, once each."""
        return tuple(dict.fromkeys(ref.metric for ref in self.metrics))


class QueueSubscription(_SubscriptionBase):
    """Queues, by id or name, and what to stream about them.

    Attributes:
        name: the subscription's label.
        queues: one or more queue references.
        metrics: queue observation and conversation aggregate metrics; empty means all.
        topics: topic family keys (``observations`` by default).
        media_types: media filter overriding ``defaults.media_types``; ``None`` inherits.
    """

    kind: ClassVar[SubscriptionKind] = "queue"

    queues: tuple[EntityRef, ...] = Field(min_length=1)
    metrics: tuple[Annotated[MetricRef, BeforeValidator(check_metric("queue"))], ...] = ()
    topics: tuple[Annotated[str, BeforeValidator(check_topic("queue"))], ...] = Field(
        default=("observations",), min_length=1
    )
    media_types: tuple[MediaType, ...] | None = None


class UserSelection(_Strict):
    """Users by id, and/or every member of some queues (members resolve through REST).

    Attributes:
        ids: user ids.
        members_of_queues: queues whose members to include.
    """

    ids: tuple[Annotated[UserId, AfterValidator(check_uuid)], ...] = ()
    members_of_queues: tuple[EntityRef, ...] = ()

    @model_validator(mode="after")
    def _some(self) -> UserSelection:
        if not self.ids and not self.members_of_queues:
            raise problem("give ids, members_of_queues, or both")
        return self


class UserSubscription(_SubscriptionBase):
    """Users (agents) and what to stream about them.

    Attributes:
        name: the subscription's label.
        users: which users.
        metrics: user aggregate metrics; empty means all.
        topics: topic family keys (``aggregates`` by default).
    """

    kind: ClassVar[SubscriptionKind] = "user"

    users: Annotated[UserSelection, BeforeValidator(_users_shape)]
    metrics: tuple[Annotated[MetricRef, BeforeValidator(check_metric("user"))], ...] = ()
    topics: tuple[Annotated[str, BeforeValidator(check_topic("user"))], ...] = Field(
        default=("aggregates",), min_length=1
    )


class WrapupSubscription(_SubscriptionBase):
    """Wrap-up codes and their conversation aggregates.

    Attributes:
        name: the subscription's label.
        wrapup_codes: one or more wrap-up code references.
        metrics: conversation aggregate metrics; empty means all.
        topics: topic family keys (only ``aggregates``).
    """

    kind: ClassVar[SubscriptionKind] = "wrapup"

    wrapup_codes: tuple[EntityRef, ...] = Field(min_length=1)
    metrics: tuple[Annotated[MetricRef, BeforeValidator(check_metric("wrapup"))], ...] = ()
    topics: tuple[Annotated[str, BeforeValidator(check_topic("wrapup"))], ...] = Field(
        default=("aggregates",), min_length=1
    )


TAGS: Final[Mapping[str, type[BaseModel]]] = {
    "queue-subscription": QueueSubscription,
    "user-subscription": UserSubscription,
    "wrapup-subscription": WrapupSubscription,
}
"""Discriminator tag (as it appears in a pydantic error ``loc``) → subscription model."""


def _tag(value: Any) -> str | None:
    if isinstance(value, _SubscriptionBase):
        return f"{value.kind}-subscription"
    if isinstance(value, Mapping):
        present = [KIND_KEYS[key] for key in KIND_KEYS if key in value]
        if len(present) == 1:
            return f"{present[0]}-subscription"
    return None  # spec_rules turns the "subscription_kind" error into a precise line


Subscription = Annotated[
    Annotated[QueueSubscription, Tag("queue-subscription")]
    | Annotated[UserSubscription, Tag("user-subscription")]
    | Annotated[WrapupSubscription, Tag("wrapup-subscription")],
    Discriminator(
        _tag,
        custom_error_type="subscription_kind",
        custom_error_message="needs exactly one of queues, users or wrapup_codes",
    ),
]
"""One entry of ``subscriptions``: the key ``queues``, ``users`` or ``wrapup_codes`` picks the
kind."""


class SubscriptionSpec(_Strict):
    """A validated subscription file.

    Attributes:
        version: the file format version (1).
        genesys: where the org lives (optional).
        defaults: defaults for every subscription.
        subscriptions: one or more subscriptions.
        analytics: REST-side settings.
    """

    version: Annotated[int, AfterValidator(check_version)] = 1
    genesys: Annotated[GenesysSection, BeforeValidator(_null_is_empty)] = Field(
        default_factory=GenesysSection
    )
    defaults: Annotated[DefaultsSection, BeforeValidator(_null_is_empty)] = Field(
        default_factory=DefaultsSection
    )
    subscriptions: tuple[Subscription, ...] = Field(min_length=1)
    analytics: Annotated[AnalyticsSection, BeforeValidator(_null_is_empty)] = Field(
        default_factory=AnalyticsSection
    )

    def media_types_for(self, subscription: Subscription) -> tuple[str, ...]:
        """The media filter of a subscription: its own, else the default; ``()`` = all."""
        if isinstance(subscription, QueueSubscription) and subscription.media_types is not None:
            return subscription.media_types
        return self.defaults.media_types if isinstance(subscription, QueueSubscription) else ()
