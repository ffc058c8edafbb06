"""The emulator's one configuration type, and the single source of its defaults.

:class:`EmulatorConfig` is what a caller chooses: where to listen, which OAuth client to accept,
how the protocol behaves, and how big the simulated contact center is. Behaviour the reference
marks UNVERIFIED is a setting here, so a test can try both answers. Each field carries its help
text in its metadata; ``pipeline emulator`` builds its flags (default and help) from them, and
the parts' own settings (``RateLimitSettings``, ``SimulationConfig``, …) take their defaults
from :data:`DEFAULTS`, so a default is written once.

Pure: no clock, no environment. The CLI reads ``GENESYS_CLIENT_ID`` / ``GENESYS_CLIENT_SECRET``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULTS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "EmulatorConfig",
    "help_of",
    "history_seconds",
]

# Documented defaults for the demo; any real deployment of the emulator sets its own through
# GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET.
DEMO_CLIENT_ID = "emulator-client"
DEMO_CLIENT_SECRET = "emulator-secret"  # noqa: S105 - a public demo default, not a secret


def _setting(default: Any, text: str, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, repr=not secret, metadata={"help": text})


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulator behaves; every field has a default and a one-line help.

    Sections, top to bottom: the server, the login service (§3), the notification channels and
    sockets (§5, §6.1), the Platform API budget (§4.3), the simulated contact center, and the
    shell's own pacing. See :func:`help_of` for each field's meaning.
    """

    # the server
    host: str = _setting("127.0.0.1", "interface to bind")
    port: int = _setting(8089, "TCP port; 0 picks a free one")
    # the login service (§3)
    client_id: str = _setting(DEMO_CLIENT_ID, "the OAuth client the emulator accepts")
    client_secret: str = _setting(DEMO_CLIENT_SECRET, "its secret (never logged)", secret=True)
    token_lifetime_s: int = _setting(
        86399, "expires_in of issued tokens (§3.2: about 24 h; exact value UNVERIFIED)"
    )
    bad_credentials_status: int = _setting(
        401, "HTTP status for a wrong client secret (§3.3 UNVERIFIED: 400 or 401)"
    )
    # notification channels and sockets (§5, §6.1)
    heartbeat_s: float = _setting(30.0, "seconds between WebSocket Heartbeat frames (§5.3)")
    socket_closing_delay_s: float = _setting(
        60.0,
        "seconds between v2.system.socket_closing and the close, when the fault names none "
        "(§5.8: one minute, VERIFIED)",
    )
    channels_die_with_token: bool = _setting(
        True,
        "a channel ends (token_revoked notice, then close) when the token that created it "
        "expires (§5.7 BELIEF)",
    )
    restricted_queues: int = _setting(
        0,
        "the last N queues sit in a division whose topics the OAuth client may not subscribe "
        "(403, or Rejected with ignoreErrors: §5.6)",
    )
    frame_interval_s: float = _setting(1.0, "at most one frame per topic in this many seconds")
    send_initial_state: bool = _setting(
        False, "send current values when a topic is subscribed (the real service does not)"
    )
    omit_zero_qualifiers: bool = _setting(
        False,
        "queue agent-state bodies leave out qualifiers whose count is 0 (real Genesys may, "
        "§6.2 UNVERIFIED)",
    )
    # the Platform API budget (§4.3, §4.5)
    rate_limit: int = _setting(
        300, "requests per token (or client, see rate_limit_scope) per rate window before 429"
    )
    rate_window_s: int = _setting(60, "the rate-limit window in seconds")
    rate_limit_scope: str = _setting(
        "token", "what one budget counts: token (§4.5, VERIFIED statements) or client"
    )
    family_rate_limits: str = _setting(
        "",
        "extra per-family budgets on top, e.g. 'analytics=60,notifications=120/60' "
        "(family=requests[/seconds]; families: login, notifications, analytics, directory, "
        "other; numbers unknown, §4.5: none by default)",
    )
    # the directory listings (§8.1)
    listing_max_page_size: int = _setting(
        100, "largest page of the queue, user and wrap-up code listings (§8.1 BELIEF)"
    )
    # the simulated contact center
    queues: int = _setting(20, "simulated queues")
    agents: int = _setting(200, "simulated agents")
    seed: int = _setting(7, "seed of the simulation and of every id the emulator makes")
    arrival_rate: float = _setting(
        1.0, "conversations per queue and media type per simulated minute"
    )
    speed: float = _setting(1.0, "simulated seconds per emulator second")
    history: str = _setting(
        "PT24H",
        "simulated past before the start, an ISO-8601 duration (PT24H, P1D, PT0S for none; at "
        "most PT47H30M): past aggregate intervals answer like a busy org's",
    )
    history_budget_s: float = _setting(
        6.0,
        "estimated start-up seconds the history may cost; a bigger centre gets less history "
        "(estimated from its size, so still deterministic)",
    )
    # the analytics query rules Genesys documents only as BELIEF (§7.4)
    query_max_interval_days: int = _setting(
        31, "longest interval of a synchronous aggregate query, days (§7.4 BELIEF)"
    )
    conversation_granularity_minutes: int = _setting(
        15, "conversation aggregate granularity must be a multiple of this (§7.4 BELIEF)"
    )
    user_granularity_minutes: int = _setting(
        30, "user aggregate granularity must be a multiple of this (§7.4 BELIEF)"
    )
    # the shell's own pacing
    tick_s: float = _setting(
        0.1, "wall-clock seconds between ticks of the simulation and of every socket"
    )
    keep_frame_text: bool = _setting(
        False, "keep each sent frame's text in the frame log (end-to-end value checks)"
    )

    def __post_init__(self) -> None:
        history_seconds(self.history)  # refuse a bad --history before anything starts


_HISTORY = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?"
)


def history_seconds(text: str) -> int:
    """Seconds of an ISO-8601 duration of days, hours, minutes and seconds (``PT0S`` is 0).

    Raises:
        ValueError: not such a duration (``PT24H``, ``P1D``, ``PT90M`` …).
    """
    match = _HISTORY.fullmatch(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"history {text!r} is not an ISO-8601 duration like PT24H, P1D or PT0S")
    part = {key: int(value or 0) for key, value in match.groupdict().items()}
    return ((part["days"] * 24 + part["hours"]) * 60 + part["minutes"]) * 60 + part["seconds"]


DEFAULTS: Final = EmulatorConfig()
"""The default configuration: where every part reads the defaults it shares with the CLI."""


def help_of(name: str) -> str:
    """The help text of one :class:`EmulatorConfig` field.

    Raises:
        KeyError: no field of that name.
    """
    for item in dataclasses.fields(EmulatorConfig):
        if item.name == name:
            return str(item.metadata["help"])
    raise KeyError(name)
