"""runbot's PostgreSQL stopped (immediate) for 20 s in the middle of a 300-join raid.

Before the fix (ledger writes and events were dropped while the database was away):
    muted before 10, during the outage 230, in all 240; 30 subscribed afterwards
    lost=232 events_lost=231 stayed_muted=30 doubled=0 owed=0 recovered_in=never
(enforcement went on; the ledger rows and events of the outage never arrived).
"""

from __future__ import annotations

import asyncio

from bots.tests.runtime_support import eventually
from tests.faults.harness import FaultWorld, figures, settle

RAID = 300  # 240 non-subscribers
OUTAGE_SECONDS = 20.0
MUTED_BEFORE_OUTAGE = 10  # "mid-raid": the outage starts once this many are muted
SUBSCRIBERS_AFTER = 30  # muted people who join the channel once the database is back


async def test_postgres_outage_mid_raid_keeps_every_ledger_row_and_event(
    world: FaultWorld,
) -> None:
    loop = asyncio.get_running_loop()
    await world.runbot.start()
    raid = world.raid(RAID)

    async def some_muted() -> bool:
        return len(world.muted(raid.strangers)) >= MUTED_BEFORE_OUTAGE

    await eventually(some_muted, within=60)
    world.cluster.stop("immediate")
    muted_before = len(world.muted(raid.strangers))
    # The outage's length is the scenario, not a wait for an event.
    await asyncio.sleep(OUTAGE_SECONDS)
    muted_during = len(world.muted(raid.strangers)) - muted_before
    world.cluster.start()
    back = loop.time()

    async def unrestricted() -> tuple[int, int]:
        return len(world.unrestricted(raid.strangers)), world.activity()

    await settle(unrestricted, lambda v: v[0] == 0, quiet=10, within=120)
    muted = world.muted(raid.strangers)

    async def missing() -> tuple[int, int]:
        return await world.missing_rows(muted)

    (ledger_missing, events_lost), _ = await settle(
        missing, lambda v: v == (0, 0), quiet=10, within=60
    )
    rows_back_in = loop.time() - back

    # Muted people subscribe: each one must be unmuted, ledger row or not.
    sample = muted[:: max(1, len(muted) // SUBSCRIBERS_AFTER)][:SUBSCRIBERS_AFTER]
    for person in sample:
        world.emulator.join(world.scene.channel, person)

    async def still_muted() -> tuple[int, int]:
        return len(world.muted(sample)), world.activity()

    (stayed_muted, _), _ = await settle(still_muted, lambda v: v[0] == 0, quiet=10, within=60)
    print(
        f"\nPostgreSQL stopped {OUTAGE_SECONDS:.0f}s mid-raid ({RAID} joins, "
        f"{len(raid.strangers)} non-subscribers): muted before {muted_before}, "
        f"during {muted_during}, in all {len(muted)}; "
        f"{len(sample)} of them subscribed afterwards\n"
        + figures(lost=ledger_missing, events_lost=events_lost, stayed_muted=stayed_muted,
                  doubled=len(world.doubled()),
                  owed=len(world.unrestricted(p for p in raid.strangers if p not in sample)),
                  recovered_in=rows_back_in if (ledger_missing, events_lost) == (0, 0)
                  else "never")
    )
    # Nobody Nezuko muted is without a ledger row: it is what lets them out again.
    assert ledger_missing == 0, f"{ledger_missing} of {len(muted)} muted have no ledger row"
    # Every restriction has its event.
    assert events_lost == 0, f"{events_lost} of {len(muted)} restrictions have no event"
    # Everyone who subscribed afterwards is unmuted.
    assert stayed_muted == 0, f"{stayed_muted} of {len(sample)} subscribers stayed muted"
