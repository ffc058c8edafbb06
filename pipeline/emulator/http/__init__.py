"""The emulator's aiohttp shell: parse, call the pure parts, answer.

Each route group is a plain class built from the parts it needs, with ``routes()``.

Modules:
    gate           the middleware: planned REST faults → bearer token → rate limit; request log
    login          ``POST /oauth/token``
    notifications  channels, subscriptions and available topics (``/api/v2/notifications``)
    streaming      the ``/channels/{id}`` WebSocket endpoint and the hub of live sockets
    sockets        one live socket: ping/pong, heartbeats, socket faults, topic frames
    feed           which topic frames are due: on change, at most one per topic per interval
    frames         the frame envelope and the log of every frame sent
    analytics      the analytics query endpoints
    directory      queues, members, wrap-up codes, users (``/api/v2/routing``, ``/users``)
    admin          ``/__emulator``: state, frames, requests, fault injection (for tests)
    answers        JSON answers and request bodies, shared by the routes
"""
