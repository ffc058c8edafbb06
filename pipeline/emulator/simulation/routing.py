"""Which agents can take an offer right now, per queue and media type.

Routing picks the longest-available agent: an index keeps, per queue, the on-queue agents with
no work (insertion order = the order they became idle) and, per queue-media slot, the agents
already handling that media with a free slot (chats and messages allow more than one). An agent
is in the index only while it can take an offer, so a pick is O(1) and the engine keeps the
invariant that no indexed agent could serve a waiting conversation.
"""

from __future__ import annotations

from pipeline.emulator.simulation.entities import Agent

__all__ = ["RoutingIndex"]


class RoutingIndex:
    """Idle agents per queue and part-loaded agents per queue-media slot.

    Args:
        queue_media: media positions each queue serves.
        media_count: number of media types (slot = queue * media_count + media).
    """

    def __init__(self, queue_media: list[tuple[int, ...]], media_count: int) -> None:
        self._m = media_count
        self._idle: list[dict[int, None]] = [{} for _ in queue_media]
        self._partial: list[dict[int, None]] = [{} for _ in range(len(queue_media) * media_count)]
        self._serves = [False] * (len(queue_media) * media_count)
        for q, medias in enumerate(queue_media):
            for m in medias:
                self._serves[q * media_count + m] = True

    def pick(self, queue: int, slot: int) -> int | None:
        """The agent to offer a conversation of ``slot`` to: longest idle, else part-loaded."""
        agent = next(iter(self._idle[queue]), None)
        return agent if agent is not None else next(iter(self._partial[slot]), None)

    def add(self, agent: Agent) -> None:
        """Make ``agent`` routable (idle if it has no work, else for its current media)."""
        if agent.load == 0:
            for q in agent.queues:
                self._idle[q][agent.idx] = None
            agent.indexed = -1
            return
        for q in agent.queues:
            slot = q * self._m + agent.media
            if self._serves[slot]:
                self._partial[slot][agent.idx] = None
        agent.indexed = agent.media

    def remove(self, agent: Agent) -> None:
        """Make ``agent`` unroutable (no-op when it is not indexed)."""
        if agent.indexed == -1:
            for q in agent.queues:
                del self._idle[q][agent.idx]
        elif agent.indexed >= 0:
            for q in agent.queues:
                self._partial[q * self._m + agent.indexed].pop(agent.idx, None)
        agent.indexed = -2
