"""A Genesys Cloud emulator: login, Platform API and notification WebSocket on one base URL.

Start with ``server.py`` (the owner that wires the parts), then the subpackages. Dependencies
point one way, top to bottom (an import-linter contract keeps it so, and forbids cycles):

Modules:
    thread      EmulatorThread: an emulator on its own loop in a daemon thread (SDK, fixtures)
    server      Emulator: holds the clock, the org state, the simulation, the sockets; serves
    http/       the aiohttp shell: one route group per module, the gate, the sockets
    analytics/  the analytics query engine over the simulation (pure)
    simulation/ the seeded contact-center simulation and its topic bodies (pure)
    state/      the org's protocol state: tokens, channels, subscriptions, limits, faults (pure)
    config      EmulatorConfig: the one configuration type and the source of every default
    clock       Clock, SystemClock, ManualClock: the injectable time every part reads
    errors      EmulatorError and OAuthError: the answers the emulated API refuses with
"""
