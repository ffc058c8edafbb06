"""Values shared by the contact-centre simulation, its topic bodies and the query engine.

Entity descriptions (:class:`QueueInfo`, :class:`UserInfo`, :class:`WrapupCodeInfo`), the
tuning knobs (:class:`SimulationConfig`, :class:`MediaProfile`), read-model snapshots handed
out by :class:`~.center.ContactCenter`, the metrics the simulation records, and millisecond
time helpers. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from pipeline.core.genesys.metrics import INTERVAL_TOPIC_METRICS, MEDIA_TYPES, SYSTEM_PRESENCES
from pipeline.emulator.config import DEFAULTS

__all__ = [
    "AGENT_METRICS",
    "INTERVAL_MS",
    "RECORDED_METRICS",
    "WRAPUP_METRICS",
    "AgentStateSnapshot",
    "MediaObservation",
    "MediaProfile",
    "QueueInfo",
    "SimulationConfig",
    "UserInfo",
    "UserSnapshot",
    "WrapupCodeInfo",
    "format_interval",
    "iso_ms",
    "to_ms",
]

# Aggregate topics carry 30-minute intervals (docs/genesys-api.md §6.1, DOC-AN-NOTIF).
INTERVAL_MS = 30 * 60 * 1000

# Conversation metrics the simulation emits, each at the moment it completes (§7.2, FORUM-AGG).
# The index of a name in this tuple is its code in the emission log.
# nAlertExpired (SDK 269, §7.6) counts offers whose alert timed out: the simulation's
# not-responding offers. nAgentDeclined is not produced: simulated agents never decline.
RECORDED_METRICS: tuple[str, ...] = (
    *INTERVAL_TOPIC_METRICS,
    "tNotResponding",
    "tShortAbandon",
    "nOverSla",
    "nAlertExpired",
)
# Metrics emitted on the agent's side of the conversation: they carry userId and their
# `purpose` dimension is "agent"; the rest are queue-side ("acd"). UNVERIFIED split: Genesys
# attributes tAnswered to the acd segment, but grouping tAnswered by userId works there too.
AGENT_METRICS: frozenset[str] = frozenset(
    {"tAnswered", "tHandle", "tTalk", "tHeld", "tAcw", "tAlert", "nTransferred", "nConnected"}
    | {"tNotResponding", "nAlertExpired"}
)
# Metrics that carry the wrapUpCode dimension. The simulation draws the code at answer;
# which metrics Genesys tags with wrapUpCode is UNVERIFIED (segment-level, so likely these).
WRAPUP_METRICS: frozenset[str] = frozenset({"tTalk", "tHeld", "tAcw", "tHandle", "nTransferred"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A routing queue: id, name, media it serves and its service-level target."""

    id: str
    name: str
    media_types: tuple[str, ...]
    service_level_percentage: float
    service_level_duration_ms: int


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An agent and the queues it is a member of (1–3)."""

    id: str
    name: str
    queue_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WrapupCodeInfo:
    """A wrap-up code agents pick during after-call work."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """How conversations of one media type behave. Times are means in seconds.

    Attributes:
        weight: share of a queue's arrivals (normalised over the queue's media types).
        capacity: conversations of this media an agent handles at once (after-call work
            occupies a slot).
        talk_mean_s: connected time excluding hold.
        hold_probability: chance a conversation is put on hold once.
        hold_mean_s: length of that hold.
        acw_mean_s: after-call work.
        patience_mean_s: how long a customer waits before abandoning; None = never abandons.
        transfer_probability: chance the agent transfers to another queue at end of talk.
    """

    weight: float
    capacity: int
    talk_mean_s: float
    hold_probability: float
    hold_mean_s: float
    acw_mean_s: float
    patience_mean_s: float | None
    transfer_probability: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.weight < 0 or min(self.talk_mean_s, self.acw_mean_s) <= 0:
            raise ValueError("capacity >= 1, weight >= 0 and positive talk/acw means required")
        if not (0 <= self.hold_probability <= 1 and 0 <= self.transfer_probability <= 1):
            raise ValueError("probabilities must be within [0, 1]")
        if self.hold_mean_s < 0 or (self.patience_mean_s is not None and self.patience_mean_s <= 0):
            raise ValueError("hold mean must be >= 0 and patience positive (or None)")


_DEFAULT_PROFILE = MediaProfile(0.1, 1, 300.0, 0.1, 40.0, 30.0, 300.0, 0.03)
_MEDIA_PROFILES: Mapping[str, MediaProfile] = MappingProxyType(
    {
        "voice": MediaProfile(0.55, 1, 240.0, 0.3, 40.0, 30.0, 90.0, 0.05),
        "chat": MediaProfile(0.2, 2, 360.0, 0.0, 0.0, 20.0, 180.0, 0.03),
        "email": MediaProfile(0.1, 1, 420.0, 0.0, 0.0, 60.0, None, 0.02),
        "message": MediaProfile(0.15, 2, 480.0, 0.0, 0.0, 20.0, 900.0, 0.03),
        "callback": MediaProfile(0.05, 1, 240.0, 0.2, 40.0, 30.0, None, 0.03),
    }
)
# Non-queue presences an agent takes when leaving the queue: (weight, mean duration seconds).
_OFF_QUEUE_PRESENCES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "BREAK": (0.3, 600.0),
        "MEAL": (0.15, 1800.0),
        "AWAY": (0.1, 480.0),
        "AVAILABLE": (0.1, 300.0),
        "BUSY": (0.08, 600.0),
        "MEETING": (0.08, 1800.0),
        "TRAINING": (0.07, 2700.0),
        "OFFLINE": (0.1, 7200.0),
        "IDLE": (0.02, 300.0),
    }
)


def _media_profiles() -> Mapping[str, MediaProfile]:
    return _MEDIA_PROFILES


def _off_queue_presences() -> Mapping[str, tuple[float, float]]:
    return _OFF_QUEUE_PRESENCES


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Size, seed and behaviour of the simulated contact centre.

    Size, seed and arrival rate default to the emulator's (:data:`~pipeline.emulator.config.
    DEFAULTS`). The defaults give roughly 85–90 % agent occupancy, so queues build up now and
    then and some customers abandon. All rates and means are in simulated time.

    Raises:
        ValueError: from construction, when a knob is out of range or a media type or presence
            is not a real Genesys value.
    """

    queues: int = DEFAULTS.queues
    agents: int = DEFAULTS.agents
    seed: int = DEFAULTS.seed
    media_types: tuple[str, ...] = ("voice", "chat", "email", "message")
    arrival_rate_per_queue_per_min: float = DEFAULTS.arrival_rate
    media_profiles: Mapping[str, MediaProfile] = field(default_factory=_media_profiles)
    queue_media_probability: float = 0.6
    extra_queue_probability: float = 0.35
    wrapup_codes: int = 12
    alert_min_s: float = 1.0
    alert_max_s: float = 6.0
    # Genesys' default ACD alerting timeout is believed to be 8 s for voice. UNVERIFIED.
    alert_timeout_s: float = 8.0
    not_responding_probability: float = 0.03
    not_responding_mean_s: float = 30.0
    short_abandon_s: float = 10.0
    on_queue_mean_s: float = 3000.0
    off_queue_presences: Mapping[str, tuple[float, float]] = field(
        default_factory=_off_queue_presences
    )
    initial_on_queue_fraction: float = 0.65
    retention_s: int = 48 * 3600
    # Simulated past before the start (simulation/history.py); the emulator passes --history.
    history_s: int = 0
    history_budget_s: float = DEFAULTS.history_budget_s
    # Queue agent-state bodies leave out a qualifier whose count is 0 (real Genesys may: §6.2
    # UNVERIFIED), so a routing status or presence nobody is in disappears from the body.
    omit_zero_qualifiers: bool = False

    def __post_init__(self) -> None:
        if self.queues < 1 or self.agents < 1:
            raise ValueError("queues and agents must be at least 1")
        if not self.media_types or len(set(self.media_types)) != len(self.media_types):
            raise ValueError("media_types must be a non-empty list without duplicates")
        unknown = [m for m in self.media_types if m not in MEDIA_TYPES]
        if unknown:
            raise ValueError(f"not Genesys media types: {unknown}")
        bad = [p for p in self.off_queue_presences if p not in SYSTEM_PRESENCES or p == "ON_QUEUE"]
        if bad or not self.off_queue_presences:
            raise ValueError(f"off_queue_presences must be non-queue system presences: {bad}")
        rate = self.arrival_rate_per_queue_per_min
        if not 0 <= rate < float("inf") or self.retention_s < INTERVAL_MS // 1000:
            raise ValueError("arrival rate must be finite and >= 0, retention at least 30 minutes")
        if not 0 < self.alert_min_s <= self.alert_max_s < self.alert_timeout_s:
            raise ValueError("need 0 < alert_min_s <= alert_max_s < alert_timeout_s")
        if self.wrapup_codes < 1:
            raise ValueError("wrapup_codes must be at least 1")
        if self.history_s < 0 or self.history_budget_s < 0:
            raise ValueError("history_s and history_budget_s must be >= 0")
        if self.history_s + INTERVAL_MS // 1000 > self.retention_s:
            raise ValueError(
                f"history_s ({self.history_s}) must leave 30 minutes of the retention "
                f"({self.retention_s} s): the logs would drop the oldest history"
            )

    def profile(self, media_type: str) -> MediaProfile:
        """The behaviour of ``media_type`` (a generic profile when none is configured)."""
        return self.media_profiles.get(media_type, _DEFAULT_PROFILE)


@dataclass(frozen=True, slots=True)
class MediaObservation:
    """Conversation counts of one queue and media type, as of ``instant_ms``.

    ``instant_ms`` is the last time any of these values changed; the oldest-* fields are epoch
    ms start times (None when nobody is waiting / interacting).
    """

    waiting: int
    interacting: int
    alerting: int
    oldest_waiting_ms: int | None
    oldest_interacting_ms: int | None
    instant_ms: int


@dataclass(frozen=True, slots=True)
class AgentStateSnapshot:
    """Member counts of one queue by presence and routing status, as of ``instant_ms``.

    ``presence_counts`` covers all members (index = position in SYSTEM_PRESENCES);
    ``routing_counts`` covers active members, i.e. not OFFLINE (index = ROUTING_STATUSES).
    """

    presence_counts: tuple[int, ...]
    routing_counts: tuple[int, ...]
    members: int
    instant_ms: int

    @property
    def active(self) -> int:
        """Members whose presence is not OFFLINE."""
        return sum(self.routing_counts)

    @property
    def on_queue(self) -> int:
        """Members with presence ON_QUEUE."""
        return self.presence_counts[SYSTEM_PRESENCES.index("ON_QUEUE")]


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    """One agent's presence and routing status with the times they last changed.

    ``conversations`` counts conversations connected or in after-call work (all of
    ``media_type``, None when there are none); a ringing offer is not counted.
    """

    presence: str
    presence_ms: int
    routing_status: str
    routing_ms: int
    conversations: int
    media_type: str | None


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso_ms(epoch_ms: int) -> str:
    """``2026-05-04T10:15:02.123Z`` for an epoch-ms instant (the format of §6 frames)."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def format_interval(start_ms: int, end_ms: int) -> str:
    """An ISO-8601 ``start/end`` interval string with millisecond UTC instants."""
    return f"{iso_ms(start_ms)}/{iso_ms(end_ms)}"
