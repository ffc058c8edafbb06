"""The emulator's frame scheduler: on change only, one frame per topic per interval, fair."""

from __future__ import annotations

from pipeline.emulator.http.feed import TopicFeed, body_key

QUEUE = "v2.analytics.queues.q1.observations"
USER = "v2.users.u1.presence"


def obs(media: str, waiting: int, at: str = "2026-01-01T00:00:00.000Z") -> dict[str, object]:
    return {
        "group": {"queueId": "q1", "mediaType": media},
        "data": [
            {
                "interval": f"{at}/{at}",
                "metrics": [{"metric": "oWaiting", "stats": {"count": waiting}}],
            }
        ],
    }


class World:
    """Topic bodies that tests change between ticks."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, object]]] = {
            QUEUE: [obs("voice", 0), obs("chat", 0)],
            USER: [{"id": "u1", "presenceDefinition": {"systemPresence": "AVAILABLE"}}],
        }

    def __call__(self, topic: str) -> list[dict[str, object]]:
        return self.bodies.get(topic, [])


def test_feed_sends_nothing_until_a_body_changes() -> None:
    world, feed = World(), TopicFeed()
    feed.sync_topics([QUEUE, USER], world)
    assert feed.due_frames(world, now=10.0) == []


def test_feed_sends_a_changed_body_once() -> None:
    world, feed = World(), TopicFeed()
    feed.sync_topics([QUEUE], world)
    world.bodies[QUEUE][0] = obs("voice", 3, "2026-01-01T00:00:01.000Z")
    frames = feed.due_frames(world, now=10.0)
    assert [(f.topic, f.body) for f in frames] == [(QUEUE, world.bodies[QUEUE][0])]
    assert feed.due_frames(world, now=20.0) == []


def test_feed_sends_at_most_one_frame_per_topic_per_interval() -> None:
    world, feed = World(), TopicFeed(min_interval=1.0)
    feed.sync_topics([QUEUE], world)
    world.bodies[QUEUE] = [obs("voice", 3), obs("chat", 4)]
    first = feed.due_frames(world, now=10.0)
    assert len(first) == 1
    assert feed.due_frames(world, now=10.5) == []
    second = feed.due_frames(world, now=11.0)
    assert len(second) == 1
    assert {first[0].key, second[0].key} == {body_key(b, i) for i, b in enumerate(world(QUEUE))}


def test_feed_is_fair_when_one_body_changes_constantly() -> None:
    world, feed = World(), TopicFeed(min_interval=1.0)
    feed.sync_topics([QUEUE], world)
    world.bodies[QUEUE][1] = obs("chat", 9)
    sent_keys = []
    for tick in range(4):
        world.bodies[QUEUE][0] = obs("voice", tick + 1)
        sent_keys += [f.key for f in feed.due_frames(world, now=float(tick))]
    assert any("chat" in key for key in sent_keys)


def test_feed_topics_are_independent() -> None:
    world, feed = World(), TopicFeed()
    feed.sync_topics([QUEUE, USER], world)
    world.bodies[QUEUE][0] = obs("voice", 1)
    world.bodies[USER][0] = {"id": "u1", "presenceDefinition": {"systemPresence": "BUSY"}}
    assert {f.topic for f in feed.due_frames(world, now=1.0)} == {QUEUE, USER}


def test_feed_can_send_initial_state() -> None:
    world, feed = World(), TopicFeed(send_initial_state=True)
    feed.sync_topics([USER], world)
    assert [f.topic for f in feed.due_frames(world, now=0.0)] == [USER]


def test_feed_forgets_unsubscribed_topics_and_baselines_new_ones() -> None:
    world, feed = World(), TopicFeed()
    feed.sync_topics([QUEUE], world)
    feed.sync_topics([USER], world)
    assert feed.topics == frozenset({USER})
    world.bodies[QUEUE][0] = obs("voice", 5)
    assert feed.due_frames(world, now=1.0) == []


def test_body_key_tells_observation_from_aggregate_flavour() -> None:
    instant = obs("voice", 1)
    aggregate = {
        "group": {"queueId": "q1", "mediaType": "voice"},
        "data": [{"interval": "2026-01-01T00:00:00.000Z/2026-01-01T00:30:00.000Z", "metrics": []}],
    }
    assert body_key(instant, 0) != body_key(aggregate, 0)
    assert body_key({"id": "u1"}, 3) == "id:u1"
    assert body_key({"x": 1}, 3) == "#3"
