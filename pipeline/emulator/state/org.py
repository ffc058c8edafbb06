"""The emulated org's protocol state in one object, for the HTTP/WebSocket shell (pure).

:class:`OrgState` holds the registries as plain attributes and wires the few places where
they meet:

* ``tokens`` (:class:`~.tokens.TokenRegistry`): OAuth clients, bearer check;
* ``catalogue`` (:class:`~.catalogue.TopicCatalogue`): topics, availabletopics;
* ``channels`` (:class:`~.channels.ChannelRegistry`): channels, subscriptions;
* ``limiter`` (:class:`~.ratelimit.RateLimiter`): per-client budget;
* ``faults`` (:class:`~.faults.FaultPlan`): planned failures.

Token events reach channels only through here: revoking a token ends the channels it created
(``dies_with_token_revoke``, default on), and so does a token's expiry while
``dies_with_token_expiry`` is on (the default: ``docs/genesys-api.md`` §5.7, a public
paraphrase of the official page says a channel can close when its token expires; BELIEF that
it always does). Everything that ends channels returns
:class:`~.channels.ChannelEnded` values: the shell sends each ``notice`` (if any) on the
channel's socket, then closes it.

A typical REST request in the shell::

    fault = state.faults.take_request_fault(path, now)      # planned failure?
    principal = state.tokens.authenticate(header, now)      # 401s
    decision = state.limiter.check(principal.client_id, now)
    if not decision.allowed: raise decision.error()         # 429 + headers
    channel, evicted = state.channels.create_channel(principal.client_id,
                                                     principal.token_id, now, base_ws_url)

and on a timer: ``for ended in state.sweep(now): ...``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.emulator.config import DEFAULTS
from pipeline.emulator.state.catalogue import TopicCatalogue
from pipeline.emulator.state.channels import ChannelEnded, ChannelRegistry, ChannelSettings
from pipeline.emulator.state.faults import (
    EvictChannel,
    ExpireChannel,
    ExpireToken,
    Fault,
    FaultPlan,
    RestrictEntities,
    RevokeToken,
)
from pipeline.emulator.state.ratelimit import RateLimiter, RateLimitSettings
from pipeline.emulator.state.subscriptions import EntityCheck
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig, TokenId, TokenRegistry

__all__ = ["OrgSettings", "OrgState"]


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """Every tunable of the protocol state; the defaults follow the reference."""

    channels: ChannelSettings = field(default_factory=ChannelSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    bad_client_status: int = DEFAULTS.bad_credentials_status


class OrgState:
    """Tokens, catalogue, channels, rate limits and faults of one emulated org.

    Args:
        clients: The OAuth clients the login service accepts (with their denied topics).
        rng: The one source of ids and tokens; seed it for repeatable runs.
        settings: Tunables; defaults as documented per module.
        catalogue: Topic templates; defaults to the built-in catalogue.
        entity_exists: Optional ``(kind, id) -> bool`` check of ids inside topics.
    """

    def __init__(
        self,
        clients: Iterable[OAuthClientConfig],
        rng: random.Random,
        settings: OrgSettings | None = None,
        *,
        catalogue: TopicCatalogue | None = None,
        entity_exists: EntityCheck | None = None,
    ) -> None:
        self.settings = settings or OrgSettings()
        self.catalogue = catalogue or TopicCatalogue()
        self.tokens = TokenRegistry((), rng, bad_client_status=self.settings.bad_client_status)
        self.channels = ChannelRegistry(
            self.catalogue, rng, self.settings.channels, entity_exists=entity_exists
        )
        self.limiter = RateLimiter(self.settings.rate_limit)
        self.faults = FaultPlan()
        for client in clients:
            self.add_client(client)

    def add_client(self, client: OAuthClientConfig) -> None:
        """Register an OAuth client and its denied topic templates."""
        self.tokens.add_client(client)
        self.channels.deny_topics(client.client_id, client.denied_topics)

    def revoke_token(self, token_id: TokenId, now: float) -> list[ChannelEnded]:
        """Revoke a token; returns the channels that end with it (``token_revoked``)."""
        revoked = self.tokens.revoke(token_id)
        if revoked is None or not self.settings.channels.dies_with_token_revoke:
            return []
        return self.channels.end_token_channels(token_id, "token_revoked", now)

    def expire_token(self, token_id: TokenId, now: float) -> list[ChannelEnded]:
        """Expire a token now; its channels end only if ``dies_with_token_expiry``."""
        if (
            not self.tokens.expire(token_id, now)
            or not self.settings.channels.dies_with_token_expiry
        ):
            return []
        return self.channels.end_token_channels(token_id, "token_expired", now)

    def sweep(self, now: float) -> list[ChannelEnded]:
        """Periodic housekeeping: end expired channels, forget expired tokens.

        Returns:
            Channels that ended since the last sweep (expiry, or token expiry when
            ``dies_with_token_expiry``), each reported once.
        """
        ended = self.channels.sweep(now)
        for principal in self.tokens.pop_expired(now):
            if self.settings.channels.dies_with_token_expiry:
                ended += self.channels.end_token_channels(principal.token_id, "token_expired", now)
        return ended

    def apply_fault(self, fault: Fault, now: float) -> list[ChannelEnded]:
        """Run a state fault now, or hand a WebSocket fault to :attr:`faults`.

        Returns:
            Channels ended by the fault (empty for WebSocket faults and unknown targets).

        Raises:
            ValueError: A frame fault with a count below its minimum.
        """
        match fault:
            case ExpireChannel(channel_id=cid):
                ended = self.channels.expire_channel(cid, now)
                return [] if ended is None else [ended]
            case EvictChannel(channel_id=cid):
                ended = self.channels.evict_channel(cid, now)
                return [] if ended is None else [ended]
            case ExpireToken(token_id=tid):
                return self.expire_token(tid, now)
            case RevokeToken(token_id=tid):
                return self.revoke_token(tid, now)
            case RestrictEntities(entity_ids=ids, client_id=client, restricted=restricted):
                owner = None if client is None else ClientId(client)
                self.channels.restrict_entities(owner, ids, restricted=restricted)
                return []
            case _:
                self.faults.inject(fault)
                return []
