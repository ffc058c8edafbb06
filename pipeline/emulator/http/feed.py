"""Which topic frames a channel's socket sends next: on change, at most one per topic per second.

Theory of operation. Genesys sends analytics notifications *on change*, at most one per second
(docs/genesys-api.md §6.1; "per topic" is UNVERIFIED, so the interval is configurable). A topic can
carry several bodies at once: the queue observations topic has one body per media type, one
agent-state
body and one 30-minute aggregate body per media type (§6.2). The feed remembers the last body
it sent under each body key and, when a topic's interval has passed, sends the changed body that
has waited longest (round-robin over the topic's bodies), so every body reaches the client
eventually however many change at once.

A topic subscribed while the socket is live starts from a *baseline*: the current bodies are
remembered but not sent, like the real service, which sends nothing until something changes
(this is why the client backfills from the REST API). ``send_initial_state=True`` sends them.

Pure: the caller passes ``now`` (seconds) and a function that returns a topic's bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import orjson

__all__ = ["OutgoingFrame", "TopicFeed", "body_key"]

Body = Mapping[str, object]
BodiesFor = Callable[[str], list[dict[str, object]]]


@dataclass(frozen=True, slots=True)
class OutgoingFrame:
    """A topic frame to send: its topic, the body, and the key the body is tracked under."""

    topic: str
    body: dict[str, object]
    key: str


def body_key(body: Body, index: int) -> str:
    """A stable identity for one body of a topic.

    Analytics bodies are identified by their ``group`` plus their flavour (an instant
    observation has interval start == end; an aggregate spans its interval); entity bodies
    by their ``id``; anything else by its position.
    """
    group = body.get("group")
    if isinstance(group, Mapping):
        flavour = "agg"
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], Mapping):
            interval = str(data[0].get("interval", ""))
            start, _, end = interval.partition("/")
            flavour = "obs" if start == end else "agg"
        return f"{flavour}:{orjson.dumps(group, option=orjson.OPT_SORT_KEYS).decode()}"
    entity = body.get("id")
    if isinstance(entity, str):
        return f"id:{entity}"
    return f"#{index}"


@dataclass(slots=True)
class _TopicState:
    sent: dict[str, bytes] = field(default_factory=dict)
    last_sent_at: float = float("-inf")
    cursor: int = 0


class TopicFeed:
    """Per-socket scheduler of topic frames.

    Args:
        min_interval: seconds between two frames of the same topic.
        send_initial_state: send a new topic's current bodies instead of baselining them.
    """

    def __init__(self, min_interval: float = 1.0, send_initial_state: bool = False) -> None:
        self.min_interval = min_interval
        self.send_initial_state = send_initial_state
        self._topics: dict[str, _TopicState] = {}

    def sync_topics(self, topics: Iterable[str], bodies_for: BodiesFor) -> None:
        """Follow the channel's current subscriptions: baseline new topics, forget removed ones."""
        wanted = set(topics)
        for topic in list(self._topics):
            if topic not in wanted:
                del self._topics[topic]
        for topic in wanted - self._topics.keys():
            state = _TopicState()
            if not self.send_initial_state:
                for index, body in enumerate(bodies_for(topic)):
                    state.sent[body_key(body, index)] = _encode(body)
            self._topics[topic] = state

    def due_frames(self, bodies_for: BodiesFor, now: float) -> list[OutgoingFrame]:
        """The frames to send now: at most one per topic, only for changed bodies."""
        frames: list[OutgoingFrame] = []
        for topic, state in self._topics.items():
            if now - state.last_sent_at < self.min_interval:
                continue
            frame = self._next_changed(topic, state, bodies_for(topic))
            if frame is not None:
                state.last_sent_at = now
                frames.append(frame)
        return frames

    def _next_changed(
        self, topic: str, state: _TopicState, bodies: list[dict[str, object]]
    ) -> OutgoingFrame | None:
        count = len(bodies)
        for step in range(count):
            index = (state.cursor + step) % count
            body = bodies[index]
            key = body_key(body, index)
            encoded = _encode(body)
            if state.sent.get(key) != encoded:
                state.sent[key] = encoded
                state.cursor = index + 1
                return OutgoingFrame(topic, body, key)
        return None

    @property
    def topics(self) -> frozenset[str]:
        """The topics this feed follows."""
        return frozenset(self._topics)


def _encode(body: Body) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
