"""A channel session's timing and retry limits (the topic limit is in ``topics``)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.http_policy import DEFAULT_MAX_RETRY_AFTER_S

__all__ = ["SessionSettings"]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Timing and retry limits of a :class:`~pipeline.core.genesys.session.ChannelSession`.

    Seconds unless noted.

    Attributes:
        heartbeat_timeout_s: silence before a ping (server heartbeats come every ~30 s, §5.3).
        ping_timeout_s: silence after the ping before the socket counts as dead.
        extend_margin_s: re-subscribe this long before ``expires`` (§5.4). With a lifetime
            shorter than twice the margin, the halfway point is used instead.
        channel_lifetime_s: assumed new lifetime after an extension whose answer carries no
            ``expires`` (UNVERIFIED, §5.4: "pushed to now + 24 h" is not documented).
        token_margin_s: roll a channel over to a new token this long before the token that
            created it expires (channels die with their token, §5.7 BELIEF). With a token
            shorter-lived than twice the margin, halfway through its life instead.
        socket_closing_lead_s: how long after ``v2.system.socket_closing`` the service closes
            the socket (§5.8: a minute). Within it, a clean close of the old socket while its
            replacement opens is the service handing the channel over (no gap).
        backoff_base_s: ceiling of the first retry delay.
        backoff_cap_s: largest ceiling of a retry delay.
        max_retry_after_s: the longest ``Retry-After`` obeyed as given (longer: cut to it).
        max_recreate_attempts: channels created in a row without one going live before the
            session fails (guards against an eviction fight over the 20-channel limit, §5.4).
        max_backfill_attempts: tries per backfill before it is abandoned (audited).
        call_timeout_s: a REST call or socket open without an answer after this long counts
            as failed (the shell has its own, shorter I/O timeouts; this one only guards
            against a shell that never answers: budget waits of up to ``max_retry_after_s``
            plus a token refresh fit well inside it).
        publish_stall_s: the shell reports handing an item downstream that blocked longer
            than this (``PublishStalled``); the session records the stall as a gap.

    Raises:
        ValueError: a timeout or lifetime that is not positive, a negative margin, base or
            Retry-After bound, a cap below the base, or an attempt limit below 1.
    """

    heartbeat_timeout_s: float = 70.0
    ping_timeout_s: float = 10.0
    extend_margin_s: float = 3600.0
    channel_lifetime_s: float = 24 * 3600.0
    token_margin_s: float = 300.0
    socket_closing_lead_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    max_recreate_attempts: int = 5
    max_backfill_attempts: int = 3
    call_timeout_s: float = 600.0
    publish_stall_s: float = 30.0

    def __post_init__(self) -> None:
        positive = (
            self.heartbeat_timeout_s,
            self.ping_timeout_s,
            self.channel_lifetime_s,
            self.call_timeout_s,
            self.publish_stall_s,
        )
        non_negative = (
            self.extend_margin_s,
            self.token_margin_s,
            self.socket_closing_lead_s,
            self.backoff_base_s,
            self.max_retry_after_s,
        )
        if min(positive) <= 0 or min(non_negative) < 0:
            raise ValueError("timeouts, stall and lifetime must be > 0, margin, base and max ≥ 0")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be ≥ backoff_base_s")
        if min(self.max_recreate_attempts, self.max_backfill_attempts) < 1:
            raise ValueError("max_recreate_attempts and max_backfill_attempts must be ≥ 1")
