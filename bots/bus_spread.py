"""Which runbot process polls which bot and works which partitions.

Every process on the bus registers itself in one Redis sorted set (member =
its consumer name, score = when its registration expires) and renews it every
`BEAT_SECONDS`; a process that stops leaves at once, one killed drops out
after `TTL_SECONDS`. Every process reads the same live set and computes the same
assignment from it, with no coordinator:

* rendezvous hashing (each item goes to the member that scores it highest), so a
  process joining or leaving moves only the items it takes or gives up;
* with bounded loads (no member gets more than ceil(items / members)), so 6 bots
  on 3 processes are 2/2/2 rather than whatever the hashes say.

Items are bots (the poller: exactly one per bot, also held by the bot's lock in
`bots.locks`, so even a moment's disagreement never has two polling one token)
and (bot, partition) pairs (the engine workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import socket
import time
import uuid
from collections.abc import Hashable, Sequence

import structlog

logger = structlog.get_logger(__name__)

# Under the bus's prefix (settings.NEZUKO_BUS_PREFIX): `nezuko:bus:members`.
MEMBERS_SUFFIX = "members"
# A killed process's share moves within TTL + one reconcile pass: under 15 s.
TTL_SECONDS = 8.0
BEAT_SECONDS = 2.0


def consumer_name() -> str:
    """Unique per process start: a restarted process must not inherit a dead one's
    pending entries by name (they are claimed like anyone's)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _score(member: str, item: Hashable) -> int:
    digest = hashlib.blake2b(f"{member}|{item!r}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(items: Sequence[Hashable], members: Sequence[str]) -> dict[Hashable, str]:
    """Each item's member: rendezvous hashing with bounded loads (module docstring).

    Deterministic for the same items and members, whatever order they come in.
    """
    if not members:
        return {}
    members = sorted(set(members))
    cap = math.ceil(len(items) / len(members))
    load = dict.fromkeys(members, 0)
    out: dict[Hashable, str] = {}
    for item in sorted(items, key=repr):
        for member in sorted(members, key=lambda m: _score(m, item), reverse=True):
            if load[member] < cap:
                load[member] += 1
                out[item] = member
                break
    return out


class Membership:
    """This process's registration in Redis, and the live processes it sees.

    `live` stays empty until the first registration succeeds: a process that
    starts while Redis is away knows nothing of the others, and taking every
    bot's partitions on its own would fight them once Redis is back.
    """

    def __init__(self, redis, name: str | None = None, *, prefix: str = "nezuko:bus") -> None:
        self.redis = redis
        self.name = name or consumer_name()
        self.key = f"{prefix}:{MEMBERS_SUFFIX}"
        self.live: list[str] = []

    @property
    def joined(self) -> bool:
        """True once a registration succeeded (the live set includes this process)."""
        return bool(self.live)

    async def beat(self) -> list[str]:
        """Renew this process and return the live members (itself included)."""
        now = time.time()
        # A Redis that hangs (partitioned, frozen) fails the beat rather than the caller.
        async with asyncio.timeout(BEAT_SECONDS), self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {self.name: now + TTL_SECONDS})
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.zrange(self.key, 0, -1)
            *_, members = await pipe.execute()
        live = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        if live != self.live:
            logger.info("bus.members", members=live, me=self.name)
        self.live = live
        return live

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.zrem(self.key, self.name)
