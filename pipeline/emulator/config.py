"""Settings of the Genesys Cloud emulator, with the documented beliefs as defaults.

Behaviour the reference marks UNVERIFIED is a setting here, so a test can try both answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "EmulatorConfig"]

# Documented defaults for the demo; any real deployment of the emulator sets its own through
# GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET.
DEMO_CLIENT_ID = "emulator-client"
DEMO_CLIENT_SECRET = "emulator-secret"  # noqa: S105 - a public demo default, not a secret


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulator behaves.

    Attributes:
        host: interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        client_id: the OAuth client the emulator accepts.
        client_secret: its secret (never logged).
        token_lifetime_s: ``expires_in`` of issued tokens (§3.2: default 24 h; exact value
            UNVERIFIED).
        bad_credentials_status: HTTP status for a wrong client secret (§3.3 UNVERIFIED: 400 or
            401).
        heartbeat_s: seconds between ``WebSocket Heartbeat`` frames (§5.3: about 30 s).
        socket_closing_delay_s: seconds between ``v2.system.socket_closing`` and the close
            (UNVERIFIED: "about a minute" in the community; short by default for tests).
        frame_interval_s: at most one frame per topic in this many seconds (§6.1).
        send_initial_state: send current bodies when a topic is subscribed (the real service
            sends only changes; default False).
        speed: simulated seconds per wall-clock second.
        tick_s: wall-clock seconds between feed ticks.
        rate_limit: requests per OAuth client per ``rate_window_s`` before 429.
        rate_window_s: the rate-limit window.
        queues, agents, seed: the simulated contact center.
        arrival_rate: conversations per queue and media type per simulated minute.
        keep_frame_text: keep each sent frame's text in the frame log (tests that check
            every value end to end; costs memory).
    """

    host: str = "127.0.0.1"
    port: int = 8089
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    token_lifetime_s: int = 86399
    bad_credentials_status: int = 401
    heartbeat_s: float = 30.0
    socket_closing_delay_s: float = 1.0
    frame_interval_s: float = 1.0
    send_initial_state: bool = False
    speed: float = 1.0
    tick_s: float = 0.1
    rate_limit: int = 300
    rate_window_s: float = 60.0
    queues: int = 20
    agents: int = 200
    seed: int = 7
    arrival_rate: float = 1.0
    keep_frame_text: bool = False
