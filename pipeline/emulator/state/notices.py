"""The system messages a channel's socket gets when the channel ends (pure, §5.3).

A channel that ends because a newer one evicted it hears ``v2.system.no_longer_subscribed``;
one whose creating token was revoked (or expired, when that ends channels) hears
``v2.system.token_revoked``. A channel that simply expires hears nothing: its socket closes.
The shell wraps :meth:`SystemNotice.event_body` in the usual envelope under
:attr:`SystemNotice.topic_name`, sends it, then closes the socket.

Body fields are VERIFIED (SDK ``SystemMessageSystemMessage``); the ``.{channelId}`` topic
suffix, the ``reason`` values for our cases and the ``message`` texts are UNVERIFIED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["NoticeKind", "SystemNotice", "eviction_notice", "token_notice"]

NoticeKind = Literal["no_longer_subscribed", "token_revoked"]


@dataclass(frozen=True, slots=True)
class SystemNotice:
    """A system message to push on the channel's socket before closing it."""

    topic_name: str
    channel_id: str
    system_topic_type: NoticeKind
    reason: str | None
    message: str
    correlation_id: str
    organization_id: str
    oauth_client_id: str

    def event_body(self) -> dict[str, Any]:
        """The ``eventBody`` of the frame."""
        body: dict[str, Any] = {
            "channelId": self.channel_id,
            "systemTopicType": self.system_topic_type,
            "correlationId": self.correlation_id,
            "organizationId": self.organization_id,
            "oauthClientId": self.oauth_client_id,
            "oauthClientOrgId": self.organization_id,
            "message": self.message,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


def eviction_notice(
    channel_id: str, client_id: str, reason: str | None, correlation_id: str, organization_id: str
) -> SystemNotice:
    """``no_longer_subscribed``: a newer channel of the same client took this one's place.

    Args:
        channel_id: the evicted channel.
        client_id: the OAuth client that owned it.
        reason: the ``reason`` field (UNVERIFIED; ``ChannelSettings.eviction_reason``).
        correlation_id: the message's correlation id.
        organization_id: the emulated org.

    Returns:
        The notice to send.
    """
    return _notice(
        "no_longer_subscribed",
        channel_id,
        client_id,
        reason,
        "The channel was removed: the client created too many channels.",
        correlation_id,
        organization_id,
    )


def token_notice(
    channel_id: str, client_id: str, *, revoked: bool, correlation_id: str, organization_id: str
) -> SystemNotice:
    """``token_revoked``: the token that created the channel is no longer valid.

    Args:
        channel_id: the channel that ends.
        client_id: the OAuth client that owned it.
        revoked: True for a revocation (reason ``user_tokens_revoked``), False for an expiry
            (no reason).
        correlation_id: the message's correlation id.
        organization_id: the emulated org.

    Returns:
        The notice to send.
    """
    return _notice(
        "token_revoked",
        channel_id,
        client_id,
        "user_tokens_revoked" if revoked else None,
        "The access token that created this channel is no longer valid.",
        correlation_id,
        organization_id,
    )


def _notice(
    kind: NoticeKind,
    channel_id: str,
    client_id: str,
    reason: str | None,
    message: str,
    correlation_id: str,
    organization_id: str,
) -> SystemNotice:
    return SystemNotice(
        topic_name=f"v2.system.{kind}.{channel_id}",
        channel_id=channel_id,
        system_topic_type=kind,
        reason=reason,
        message=message,
        correlation_id=correlation_id,
        organization_id=organization_id,
        oauth_client_id=client_id,
    )
