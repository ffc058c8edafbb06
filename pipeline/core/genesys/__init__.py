"""The Genesys Cloud side, pure: what arrives on the wire and what to do about it.

Modules:
    frames             frame bytes → Heartbeat | SocketClosing | TopicEvent | SystemMessage
    topics             the notification topic grammar: build, parse and validate topics
    metrics            the analytics vocabulary: real metric names, dimensions, statuses, units
    regions            Genesys regions and their API/login hosts
    token              the OAuth token answer and the refresh rule
    budget             an OAuth client's request budgets, one per endpoint family
    paging             following a listing's ``nextUri`` to its end, with loop and page-cap guards
    rejections         the topics a subscription answer refused (``ignoreErrors=true``, §5.6)
    events             what the stream hands on: TopicEvent, BackfillEvent, Gap, DeadLetter, ...
    inputs             what the channel session is fed (REST outcomes, socket events, ticks)
    actions            what the channel session asks the shell to do
    session            the channel session state machine (input, now → actions)
    session_settings   the session's timeouts and retry limits
    calls              the session's REST calls; what a failed one means (retry, reauth, ...)
    backfill_schedule  which backfill the session wants, and when a failed one is retried
    backfill           the REST snapshot after a gap, shaped like topic bodies
"""
