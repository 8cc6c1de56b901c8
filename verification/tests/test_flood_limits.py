"""Under Telegram's real flood limits, a raid is handled without a single 429."""

import pytest

from bots.ratelimit import Limits

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limits() -> Limits:
    # Production limits, unrelaxed.
    return Limits()


async def test_a_join_raid_under_flood_limits_gets_no_429_and_few_messages(world):
    s = world.scene
    world.emu.flood_limits = True
    await world.protect()
    raiders = [s.emulator.create_user(f"Raider {i}") for i in range(40)]
    for raider in raiders:
        s.emulator.join(s.group, raider)
    for raider in raiders:
        await world.emu.wait_for_call("restrictChatMember", timeout=20, user_id=raider.id)
    # Every raider is muted, Telegram never said "too many requests",
    assert not world.calls("restrictChatMember", error_code=429)
    # and, once everything is done (warnings wait behind restrictions, and raiders
    # are handled concurrently), not once, and the group got one warning, not forty.
    await world.settle()
    assert not [c for c in world.emu.calls if c.error_code == 429]
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1
