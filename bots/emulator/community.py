"""A community to watch: people joining, chatting, leaving and rejoining the
channel, and now and then a small raid. Drives the emulator only, so every
effect on the dashboard comes from the real engine reacting to it.
`scripts/demo.py` plays it against `bots.emulator.localstack`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from bots.emulator import EmulatorError, TelegramEmulator
from bots.emulator.scene import Scene
from bots.emulator.state import User

NAMES = [
    "Mia", "Noah", "Emma", "Liam", "Sofia", "Lucas", "Yuki", "Aiko", "Ravi", "Chen", "Ines",
    "Omar", "Lena", "Tariq", "Zoe", "Hugo", "Nina", "Ivan", "Maya", "Leo", "Sara", "Kenji",
    "Amir", "Elif", "Jonas", "Priya", "Mateo", "Hana", "Felix", "Aria",
]
CHATTER = [
    "good morning!", "did you see the new post?", "lol", "which one is better?",
    "thanks for sharing", "can someone help me with this?", "nice", "+1",
    "when is the next meetup?", "that is a great idea",
]


@dataclass
class Community:
    scene: Scene
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    regulars: list[User] = field(default_factory=list)
    outsiders: list[User] = field(default_factory=list)
    raids: int = 0
    people: int = 0

    @property
    def emu(self) -> TelegramEmulator:
        return self.scene.emulator

    def person(self) -> User:
        name = self.rng.choice(NAMES)
        self.people += 1
        return self.emu.create_user(name, username=f"{name.lower()}{self.people}")

    def say(self, user: User, text: str | None = None) -> None:
        try:
            self.emu.send_message(self.scene.group, user, text or self.rng.choice(CHATTER))
        except EmulatorError:
            pass  # muted people cannot speak, as in Telegram

    def newcomer_subscribed(self) -> None:
        user = self.person()
        self.emu.join(self.scene.channel, user)
        self.emu.join(self.scene.group, user)
        self.regulars.append(user)
        self.say(user, "hi everyone!")

    def newcomer_without_channel(self) -> None:
        user = self.person()
        self.emu.join(self.scene.group, user)
        self.outsiders.append(user)
        self.say(user, "hello?")

    def outsider_complies(self) -> None:
        if self.outsiders:
            user = self.outsiders.pop(0)
            self.emu.join(self.scene.channel, user)
            self.regulars.append(user)

    def regular_leaves_channel(self) -> None:
        if len(self.regulars) > 3:
            user = self.regulars.pop(self.rng.randrange(len(self.regulars)))
            try:
                self.emu.leave(self.scene.channel, user)
            except EmulatorError:
                return
            self.outsiders.append(user)

    def chatter(self) -> None:
        if self.regulars:
            self.say(self.rng.choice(self.regulars))

    def raid(self, size: int = 12) -> None:
        self.raids += 1
        for _ in range(size):
            user = self.person()
            self.emu.join(self.scene.group, user)
            self.say(user, "JOIN MY CHANNEL t.me/spam")

    def step(self) -> str:
        """One thing happens; returns its name (for the console)."""
        actions = [
            (self.chatter, 10), (self.newcomer_subscribed, 3), (self.newcomer_without_channel, 3),
            (self.outsider_complies, 3), (self.regular_leaves_channel, 1),
        ]
        action = self.rng.choices([a for a, _ in actions], weights=[w for _, w in actions])[0]
        action()
        return action.__name__

    async def play(self, stop: asyncio.Event, *, pace: float = 0.4,
                   raid_every: float = 45.0) -> None:
        loop = asyncio.get_running_loop()
        next_raid = loop.time() + 15
        for _ in range(8):
            self.newcomer_subscribed()
        while not stop.is_set():
            try:
                if loop.time() >= next_raid:
                    self.raid()
                    next_raid = loop.time() + raid_every
                else:
                    self.step()
            except EmulatorError as exc:
                # Something Telegram would refuse (e.g. a muted person acting); carry on.
                print(f"community: {exc}", flush=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=pace * (0.5 + self.rng.random()))
            except TimeoutError:
                pass
