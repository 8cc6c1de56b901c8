"""What the engine publishes for analytics and the dashboard (verification.events)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published() -> list:
    return []


@pytest.fixture
def event_subscribers(published) -> list:
    """The world's runtime also hands every event it publishes to `published`."""
    return [published.append]


async def test_a_restriction_and_its_lifting_are_published_with_their_facts(world, published):
    s = world.scene
    group = await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    mark = len(world.emu.calls)
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", since=mark, user_id=s.carol.id)
    await world.settle()
    outcomes = [e.outcome for e in published if e.user_id == s.carol.id]
    assert outcomes == ["restricted", "unmuted"]
    restricted = next(e for e in published if e.outcome == "restricted")
    # Ids the dashboard filters on, what was missing, and how the decision was made.
    assert (restricted.group_id, restricted.bot_id, restricted.chat_id) == (
        group.pk, world.bot_row.pk, s.group.id)
    assert restricted.missing_channel_ids == (s.channel.id,)
    assert restricted.cache_hit is False and restricted.latency_ms > 0
    assert restricted.user_name == "Carol"
