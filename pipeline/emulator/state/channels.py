"""Notification channels and their subscriptions (pure).

Theory of operation
-------------------
A channel belongs to the OAuth client that created it and remembers the handle of the creating
token (``docs/genesys-api.md`` §5.1, §5.4). It lives from creation until ``expires``
(24 h) unless a successful POST/PUT of its subscriptions pushes ``expires`` to now + 24 h
(configurable; "extends" is VERIFIED, "to now + 24 h" UNVERIFIED). It also ends when:

* it is evicted: a client holds at most 20 live channels; creating one more evicts the channel
  with the oldest last use, preferring channels without a live socket (§5.4 VERIFIED; that the
  create call still succeeds is UNVERIFIED). The evicted channel gets
  ``v2.system.no_longer_subscribed`` (reason UNVERIFIED, configurable);
* its creating token is revoked (default on) or expires (default on: §5.7, BELIEF that a
  channel does not outlive its token), with ``v2.system.token_revoked`` (a ``reason`` of
  ``user_tokens_revoked`` for a revocation, none for an expiry: UNVERIFIED) then a close;
* a fault hook ends it.

What the socket of an ended channel is told is in :mod:`~pipeline.emulator.state.notices`.

An ended channel is forgotten at once: HEAD, subscriptions and WebSocket connects answer 404
``not.found``, exactly like an id that never existed (inferred, UNVERIFIED). A channel past its
``expires`` already answers 404; :meth:`ChannelRegistry.sweep` reports it once so the shell can
close its socket. Touching another client's channel also answers 404, so ids do not leak.

"Last use" moves on creation, on every subscription call and on socket connect/disconnect; the
shell may call :meth:`ChannelRegistry.touch` for more (which events count is UNVERIFIED).

Subscriptions are an ordered set of concrete topics, validated by
:func:`~pipeline.emulator.state.subscriptions.validate_topics`, at most 1,000 per channel
(§5.4): a call that would exceed the cap answers 400
``notification.subscription.too.many.subscriptions`` and changes nothing. POST/PUT answer the
channel's whole list after the call, then the ``Rejected`` entries (UNVERIFIED).

Time: ``now`` is seconds on the shell's clock; ``expires`` strings are
``settings.wall_epoch + now`` seconds, so a shell passing ``time.time()`` with the default epoch
gets real dates, and tests get fixed ones.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NewType

from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.errors import invalid_query_param, not_found, too_many_subscriptions
from pipeline.emulator.state.catalogue import TopicCatalogue, TopicMatch, TopicName
from pipeline.emulator.state.notices import SystemNotice, eviction_notice, token_notice
from pipeline.emulator.state.subscriptions import (
    EntityCheck,
    SubscriptionResult,
    TopicValidation,
    validate_topics,
)
from pipeline.emulator.state.tokens import ClientId, TokenId

__all__ = [
    "Channel",
    "ChannelEnded",
    "ChannelId",
    "ChannelRegistry",
    "ChannelSettings",
    "EndReason",
    "format_timestamp",
]

ChannelId = NewType("ChannelId", str)
EndReason = Literal["expired", "evicted", "token_revoked", "token_expired"]

UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"


def format_timestamp(epoch: datetime, now: float) -> str:
    """``epoch + now`` seconds as ISO-8601 UTC with milliseconds: ``2026-05-05T10:15:00.000Z``."""
    moment = (epoch + timedelta(seconds=now)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Limits and UNVERIFIED behaviours of channels (§5.4, §11), all configurable."""

    max_channels_per_client: int = 20
    max_topics_per_channel: int = 1000
    lifetime_seconds: float = 24 * 3600.0
    extend_on_subscribe: bool = True
    dies_with_token_revoke: bool = True
    dies_with_token_expiry: bool = DEFAULTS.channels_die_with_token
    eviction_reason: str | None = "another_channel_subscribed"
    organization_id: str = "00000000-0000-4000-8000-0000000000e1"
    wall_epoch: datetime = UNIX_EPOCH


@dataclass(frozen=True, slots=True)
class Channel:
    """A snapshot of one channel; ``to_json()`` is the ``Channel`` model (§5.1)."""

    id: ChannelId
    client_id: ClientId
    token_id: TokenId
    connect_uri: str
    expires: str
    expires_at: float
    last_used: float
    socket_connected: bool
    topics: tuple[TopicName, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"connectUri", "id", "expires"}``."""
        return {"connectUri": self.connect_uri, "id": self.id, "expires": self.expires}


@dataclass(frozen=True, slots=True)
class ChannelEnded:
    """A channel that just ended: send ``notice`` (if any), then close its socket."""

    channel: Channel
    reason: EndReason
    notice: SystemNotice | None


@dataclass(slots=True)
class _Record:
    id: ChannelId
    client_id: ClientId
    token_id: TokenId
    connect_uri: str
    expires_at: float
    last_used: float
    serial: int
    socket_connected: bool = False
    topics: dict[TopicName, None] = field(default_factory=dict)  # an ordered set


class ChannelRegistry:
    """All channels of the emulated org and their subscriptions.

    Args:
        catalogue: Topic templates used to validate subscriptions.
        rng: Source of channel and correlation ids.
        settings: Limits and switches.
        entity_exists: Optional check ``(kind, id) -> bool`` for the id inside a topic; a
            ``False`` answers 400 ``notification.invalid.topic`` (UNVERIFIED). ``None`` accepts
            every id. May be set later through the attribute of the same name.
    """

    def __init__(
        self,
        catalogue: TopicCatalogue,
        rng: random.Random,
        settings: ChannelSettings | None = None,
        *,
        entity_exists: EntityCheck | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.settings = settings or ChannelSettings()
        self.entity_exists = entity_exists
        self._rng = rng
        self._channels: dict[ChannelId, _Record] = {}
        self._denied: dict[ClientId, frozenset[str]] = {}
        self._restricted: dict[ClientId | None, set[str]] = {}
        self._serial = 0

    # ------------------------------------------------------------------ channels

    def create_channel(
        self, client_id: ClientId, token_id: TokenId, now: float, base_ws_url: str
    ) -> tuple[Channel, ChannelEnded | None]:
        """``POST /api/v2/notifications/channels``.

        Args:
            client_id: The caller's client.
            token_id: Handle of the caller's token.
            now: Current time, seconds.
            base_ws_url: E.g. ``ws://127.0.0.1:8089``; ``connectUri`` is ``{base}/channels/{id}``.

        Returns:
            The new channel, and the channel evicted to make room (or ``None``).
        """
        evicted = None
        live = [r for r in self._channels.values() if r.client_id == client_id]
        live = [r for r in live if now < r.expires_at]
        if len(live) >= self.settings.max_channels_per_client:
            victim = min(live, key=lambda r: (r.socket_connected, r.last_used, r.serial))
            evicted = self._end(victim, "evicted", now)
        channel_id = ChannelId(
            "streaming-0-" + "".join(self._rng.choice(_ID_ALPHABET) for _ in range(26))
        )
        self._serial += 1
        record = _Record(
            id=channel_id,
            client_id=client_id,
            token_id=token_id,
            connect_uri=f"{base_ws_url.rstrip('/')}/channels/{channel_id}",
            expires_at=now + self.settings.lifetime_seconds,
            last_used=now,
            serial=self._serial,
        )
        self._channels[channel_id] = record
        return self._snapshot(record), evicted

    def list_channels(
        self, client_id: ClientId, token_id: TokenId, now: float, includechannels: str = "token"
    ) -> dict[str, Any]:
        """``GET /api/v2/notifications/channels`` as ``ChannelEntityListing`` JSON.

        ``token`` lists the channels made with this token. ``oauthclient`` lists all the
        client's channels, but "Channel Ids for other access tokens will not be shown, but will
        be presented to show their existence" (SPEC): they appear with ``expires`` only
        (shape UNVERIFIED).

        Raises:
            EmulatorError: 400 ``invalid.query.param.value`` for another ``includechannels``.
        """
        if includechannels not in ("token", "oauthclient"):
            raise invalid_query_param(includechannels, "includechannels", ["token", "oauthclient"])
        entities: list[dict[str, Any]] = []
        for record in self._live(now):
            if record.client_id != client_id:
                continue
            if record.token_id == token_id:
                entities.append(self._snapshot(record).to_json())
            elif includechannels == "oauthclient":
                entities.append({"expires": self._snapshot(record).expires})
        return {"entities": entities}

    def channel_exists(
        self, channel_id: str, now: float, client_id: ClientId | None = None
    ) -> bool:
        """``HEAD .../channels/{id}``: the channel is live (and ``client_id``'s, if given)."""
        record = self._channels.get(ChannelId(channel_id))
        return (
            record is not None
            and now < record.expires_at
            and (client_id is None or record.client_id == client_id)
        )

    def get_channel(self, channel_id: str, now: float) -> Channel | None:
        """A snapshot of a live channel, whoever owns it (for the WebSocket side)."""
        record = self._channels.get(ChannelId(channel_id))
        return self._snapshot(record) if record is not None and now < record.expires_at else None

    def channels(self, now: float, client_id: ClientId | None = None) -> list[Channel]:
        """Snapshots of live channels, oldest first, optionally of one client."""
        return [
            self._snapshot(r)
            for r in self._live(now)
            if client_id is None or r.client_id == client_id
        ]

    def touch(self, channel_id: str, now: float) -> None:
        """Record a use of a live channel (moves it back in the eviction order)."""
        record = self._channels.get(ChannelId(channel_id))
        if record is not None and now < record.expires_at:
            record.last_used = now

    def connect_socket(self, channel_id: str, now: float) -> bool:
        """A WebSocket opened on the channel; True if an older socket must be kicked (§5.4).

        Raises:
            EmulatorError: 404 ``not.found`` if the channel is not live.
        """
        record = self._channels.get(ChannelId(channel_id))
        if record is None or now >= record.expires_at:
            raise not_found()
        kicked = record.socket_connected
        record.socket_connected = True
        record.last_used = now
        return kicked

    def disconnect_socket(self, channel_id: str, now: float) -> None:
        """The channel's WebSocket closed (no-op for an unknown channel)."""
        record = self._channels.get(ChannelId(channel_id))
        if record is not None:
            record.socket_connected = False
            record.last_used = now

    # ------------------------------------------------------------------ endings

    def sweep(self, now: float) -> list[ChannelEnded]:
        """End channels past ``expires``; each is reported once."""
        due = [r for r in self._channels.values() if now >= r.expires_at]
        return [self._end(r, "expired", now) for r in due]

    def expire_channel(self, channel_id: str, now: float) -> ChannelEnded | None:
        """Fault hook: the channel expires now. ``None`` if it is not live."""
        record = self._channels.get(ChannelId(channel_id))
        return None if record is None else self._end(record, "expired", now)

    def evict_channel(self, channel_id: str, now: float) -> ChannelEnded | None:
        """Fault hook: evict the channel as the 20-channel rule would. ``None`` if not live."""
        record = self._channels.get(ChannelId(channel_id))
        return None if record is None else self._end(record, "evicted", now)

    def end_token_channels(
        self, token_id: TokenId, reason: Literal["token_revoked", "token_expired"], now: float
    ) -> list[ChannelEnded]:
        """End every channel made with ``token_id`` (the caller decides whether it should)."""
        doomed = [r for r in self._channels.values() if r.token_id == token_id]
        return [self._end(r, reason, now) for r in doomed]

    # ------------------------------------------------------------------ subscriptions

    def deny_topics(self, client_id: ClientId, templates: Iterable[str]) -> None:
        """Set the topic templates ``client_id`` lacks permission for (replaces the old set)."""
        self._denied[client_id] = frozenset(templates)

    def restrict_entities(
        self, client_id: ClientId | None, entity_ids: Iterable[str], *, restricted: bool = True
    ) -> None:
        """Hide entities from a client's subscriptions (``restricted=False`` shows them again).

        A topic about a restricted entity fails the permission check (§5.6) as if the entity
        sat in a division the client's roles do not reach. ``client_id=None``: every client.
        """
        held = self._restricted.setdefault(client_id, set())
        if restricted:
            held.update(entity_ids)
        else:
            held.difference_update(entity_ids)

    def restricted_entities(self, client_id: ClientId) -> frozenset[str]:
        """The entity ids ``client_id`` may not subscribe to."""
        return frozenset(self._restricted.get(client_id, set()) | self._restricted.get(None, set()))

    def get_subscriptions(
        self, channel_id: str, client_id: ClientId, now: float
    ) -> SubscriptionResult:
        """``GET .../subscriptions``.

        Raises:
            EmulatorError: 404 ``not.found`` for a channel not live or not ``client_id``'s.
        """
        record = self._owned(channel_id, client_id, now)
        return SubscriptionResult.of(record.id, record.topics)

    def add_subscriptions(
        self,
        channel_id: str,
        client_id: ClientId,
        topics: Iterable[str],
        now: float,
        ignore_errors: bool = False,
    ) -> SubscriptionResult:
        """``POST .../subscriptions``: add ``topics`` to the channel's list.

        Raises:
            EmulatorError: 404 as for GET; 400/403 from
                :func:`~pipeline.emulator.state.subscriptions.validate_topics`; 400
                ``notification.subscription.too.many.subscriptions``. Nothing is applied.
        """
        record = self._owned(channel_id, client_id, now)
        checked = self._validate(client_id, topics, ignore_errors)
        merged = dict(record.topics)
        merged.update(dict.fromkeys(checked.permitted))
        return self._apply(record, merged, checked.rejected, now)

    def replace_subscriptions(
        self,
        channel_id: str,
        client_id: ClientId,
        topics: Iterable[str],
        now: float,
        ignore_errors: bool = False,
    ) -> SubscriptionResult:
        """``PUT .../subscriptions``: the list becomes ``topics`` (``[]`` clears it).

        Raises:
            EmulatorError: As for :meth:`add_subscriptions`. Nothing is applied.
        """
        record = self._owned(channel_id, client_id, now)
        checked = self._validate(client_id, topics, ignore_errors)
        return self._apply(record, dict.fromkeys(checked.permitted), checked.rejected, now)

    def delete_subscriptions(self, channel_id: str, client_id: ClientId, now: float) -> None:
        """``DELETE .../subscriptions``: remove all. Raises EmulatorError 404 as for GET."""
        record = self._owned(channel_id, client_id, now)
        record.topics = {}
        record.last_used = now

    # ------------------------------------------------------------------ internals

    def _live(self, now: float) -> list[_Record]:
        return [r for r in self._channels.values() if now < r.expires_at]

    def _owned(self, channel_id: str, client_id: ClientId, now: float) -> _Record:
        record = self._channels.get(ChannelId(channel_id))
        if record is None or now >= record.expires_at or record.client_id != client_id:
            raise not_found()
        return record

    def _validate(
        self, client_id: ClientId, topics: Iterable[str], ignore_errors: bool
    ) -> TopicValidation:
        return validate_topics(
            self.catalogue,
            topics,
            denied=self._denied.get(client_id, frozenset()),
            restricted=self.restricted_entities(client_id),
            entity_exists=self.entity_exists,
            ignore_errors=ignore_errors,
        )

    def _apply(
        self,
        record: _Record,
        topics: dict[TopicName, None],
        rejected: Iterable[TopicMatch],
        now: float,
    ) -> SubscriptionResult:
        if len(topics) > self.settings.max_topics_per_channel:
            raise too_many_subscriptions()
        record.topics = topics
        record.last_used = now
        if self.settings.extend_on_subscribe:
            record.expires_at = max(record.expires_at, now + self.settings.lifetime_seconds)
        return SubscriptionResult.of(record.id, topics, rejected)

    def _end(self, record: _Record, reason: EndReason, now: float) -> ChannelEnded:
        del self._channels[record.id]
        notice = None
        if reason == "evicted":
            notice = eviction_notice(
                record.id,
                record.client_id,
                self.settings.eviction_reason,
                self._new_uuid(),
                self.settings.organization_id,
            )
        elif reason in ("token_revoked", "token_expired"):
            notice = token_notice(
                record.id,
                record.client_id,
                revoked=reason == "token_revoked",
                correlation_id=self._new_uuid(),
                organization_id=self.settings.organization_id,
            )
        return ChannelEnded(self._snapshot(record), reason, notice)

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _snapshot(self, record: _Record) -> Channel:
        return Channel(
            id=record.id,
            client_id=record.client_id,
            token_id=record.token_id,
            connect_uri=record.connect_uri,
            expires=format_timestamp(self.settings.wall_epoch, record.expires_at),
            expires_at=record.expires_at,
            last_used=record.last_used,
            socket_connected=record.socket_connected,
            topics=tuple(record.topics),
        )
