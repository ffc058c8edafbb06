"""The emulated org's protocol state, pure: every method takes ``now`` and returns values.

Modules:
    org            OrgState: the registries below as plain attributes, wired where they meet
    tokens         OAuth clients and bearer tokens (handles, digests, expiry, revocation)
    channels       notification channels: create, evict, expire, subscribe, the 1,000 cap
    notices        the system messages of a channel that ends (no_longer_subscribed, ...)
    subscriptions  subscription request bodies, topic validation, the answers' shape
    catalogue      topic templates, topic matching and ``availabletopics``
    ratelimit      the per-client request budget and its ``inin-ratelimit-*`` headers
    faults         the fault plan: failures tests inject and the shell carries out
"""
