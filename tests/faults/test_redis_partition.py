"""Cats' action changed from mute to kick while runbot's Redis was paused for 20 s.

Before the fix (the settings version lived only in Redis, so the bump made
during the pause was lost and runbot kept its cached configuration):
    joiners after recovery: +0s muted, +2s muted, +4s muted, +6s muted, +8s muted,
    +10s muted; lost=1 doubled=0 owed=1 recovered_in=never
"""

from __future__ import annotations

import asyncio

from bots.emulator.state import User
from bots.tests.runtime_support import Child, eventually
from tests.faults.harness import FaultWorld, figures

PAUSE_SECONDS = 20.0
APPLIED_WITHIN = 10.0  # the new setting must govern joiners this long after recovery
JOINER_EVERY = 2.0  # a joiner every 2 s from the moment Redis is back, up to APPLIED_WITHIN

# What the dashboard and the API call to change a group's settings, run in a
# process of its own that uses the same (paused) Redis as runbot.
CHANGE_ACTION = """
from bots.audit import Actor
from bots.models import AuditLog
from groups.models import ProtectedGroup
from groups.services import settings
settings.update_settings({pk}, {{"action": "kick"}},
                         actor=Actor(AuditLog.Source.DASHBOARD, name="staff", staff=True))
print("action is now", ProtectedGroup.objects.get(pk={pk}).action)
"""


async def handled(world: FaultWorld, person: User) -> str:
    """Await what runbot did to a joiner: "muted" or "kicked"."""
    async def done() -> bool:
        return world.status(person) in ("restricted", "kicked", "left")

    await eventually(done, within=30)
    kicked = world.emulator.calls_named("banChatMember", user_id=person.id, ok=True)
    return "kicked" if kicked else "muted"


async def test_setting_changed_during_redis_pause_reaches_runbot(world: FaultWorld) -> None:
    loop = asyncio.get_running_loop()
    emu, scene = world.emulator, world.scene
    await world.runbot.start()
    # runbot has Cats' configuration (action: mute) in memory.
    first = emu.create_user("Before")
    emu.join(scene.group, first)
    assert await handled(world, first) == "muted"

    world.redis.pause()
    paused = loop.time()
    change = await Child.start("shell", "-c", CHANGE_ACTION.format(pk=world.group_pk),
                               env=world.runbot.env)
    assert await change.wait() == 0, "".join(change.output)
    assert any("action is now kick" in line for line in change.output), "".join(change.output)
    # The pause's length is the scenario, not a wait for an event.
    await asyncio.sleep(max(0.0, paused + PAUSE_SECONDS - loop.time()))
    world.redis.resume()
    recovered = loop.time()

    outcomes: list[tuple[float, str]] = []
    for index in range(int(APPLIED_WITHIN / JOINER_EVERY) + 1):
        await asyncio.sleep(max(0.0, recovered + index * JOINER_EVERY - loop.time()))
        joined = loop.time() - recovered
        person = emu.create_user(f"After {index}")
        emu.join(scene.group, person)
        outcomes.append((joined, await handled(world, person)))

    kicked_at = [at for at, outcome in outcomes if outcome == "kicked"]
    late = [at for at, outcome in outcomes if outcome == "muted" and at >= APPLIED_WITHIN]
    print(
        f"\nRedis paused {PAUSE_SECONDS:.0f}s, action mute -> kick during the pause; joiners "
        f"after recovery: {', '.join(f'+{at:.0f}s {outcome}' for at, outcome in outcomes)}\n"
        + figures(lost=len(late), doubled=len(world.doubled()), owed=len(late),
                  recovered_in=kicked_at[0] if kicked_at else "never")
    )
    # A joiner 10 s after Redis is back is handled with the new setting.
    assert late == [], f"joiners {late} s after recovery were muted, not kicked"
