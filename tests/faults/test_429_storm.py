"""Telegram answers 429 to every restrictChatMember for 25 s during a 100-join raid.

Before the fix (a restriction refused four times in a row was dropped, never retried):
    5 restrictChatMember calls refused; lost=1 doubled=0 owed=1 recovered_in=never
(the call at the head of the queue met four 429s in a row and was dropped).
"""

from __future__ import annotations

from tests.faults.harness import FaultWorld, figures, settle

RAID = 100  # 80 non-subscribers
STORM_SECONDS = 25.0
RETRY_AFTER = 5
GRACE_SECONDS = 30.0  # after the storm, owed restrictions must be carried out within this


async def test_429_storm_leaves_no_owed_action(world: FaultWorld) -> None:
    await world.runbot.start()
    raid = world.raid(RAID)
    await world.storm("restrictChatMember", STORM_SECONDS, RETRY_AFTER)
    refused = len(world.emulator.calls_named("restrictChatMember", error_code=429))

    async def owed() -> int:
        return len(world.unrestricted(raid.strangers))

    left, waited = await settle(owed, lambda n: n == 0, quiet=GRACE_SECONDS, within=GRACE_SECONDS)
    print(
        f"\n429 (retry_after {RETRY_AFTER}) to restrictChatMember for {STORM_SECONDS:.0f}s "
        f"during a {RAID}-join raid: {refused} calls refused\n"
        + figures(lost=left, doubled=len(world.doubled()), owed=left,
                  recovered_in=waited if left == 0 else "never")
    )
    # Every restriction Telegram refused during the storm is carried out after it.
    assert left == 0, f"{left} of {len(raid.strangers)} non-subscribers still unrestricted " \
                      f"{GRACE_SECONDS:.0f}s after the storm"
    assert world.doubled() == []
