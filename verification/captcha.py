"""The human check for newcomers: its question, its pending state, its message.

A group with `captcha` on asks each member who joins a small sum with three
buttons, a new one each time, in the same message that names the channels the
policy still needs (`decisions.Challenge`); the newcomer is muted until they
answer and removed (kicked: banned and unbanned at once, so they may come
back) when `captcha_timeout` passes. State and rendering only: the message is
sent by `actions.captcha`, presses are read by `flows.captcha`.

Pending checks live in the engine's memory (`Engine.captchas`). After a
restart the answer is lost: a press by the newcomer then counts as an answer
(`decisions.decide_answer`), and nobody is removed for that old question.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random

from django.template.loader import render_to_string
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from groups.config import ChannelConfig
from verification import wording
from verification.updates import Person
from verification.warnings import needed

CALLBACK_PREFIX = "nz:h"
_rng = random.SystemRandom()


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    a: int
    b: int
    options: tuple[int, ...]  # the buttons, in the order shown

    @property
    def answer(self) -> int:
        return self.a + self.b

    @classmethod
    def new(cls, rng: random.Random = _rng) -> Question:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        wrong = rng.sample([n for n in range(2, 19) if n != a + b], 2)
        options = [a + b, *wrong]
        rng.shuffle(options)
        return cls(a, b, tuple(options))


@dataclasses.dataclass(eq=False)
class Pending:
    """One newcomer's open question."""

    chat_id: int
    person: Person
    question: Question
    missing: tuple[ChannelConfig, ...]
    message_id: int | None = None
    wrong: int = 0
    timer: asyncio.Task | None = None


def callback_data(user_id: int, option: int) -> str:
    return f"{CALLBACK_PREFIX}:{user_id}:{option}"


def parse_callback_data(data: str | None) -> tuple[int, int] | None:
    """(user id, chosen option) or None for data that is not a captcha answer."""
    parts = (data or "").split(":")
    if len(parts) != 4 or f"{parts[0]}:{parts[1]}" != CALLBACK_PREFIX:
        return None
    try:
        return int(parts[2]), int(parts[3])
    except ValueError:
        return None


def render(group_title: str, person: Person, question: Question, timeout: int,
           missing: tuple[ChannelConfig, ...], short: int,
           policy: str) -> tuple[str, InlineKeyboardMarkup]:
    """The one message: the question, and what to join when the policy needs it."""
    text = render_to_string("verification/telegram/captcha.html", {
        "user": wording.mention(person.id, person.name), "group": wording.isolate(group_title),
        "a": question.a, "b": question.b, "timeout": timeout,
        "channels": missing, "what": needed(missing, short, policy),
    }).strip()
    rows = [[InlineKeyboardButton(wording.join_button(c.label)[:64], url=c.join_url)]
            for c in missing if c.join_url]
    rows.append([InlineKeyboardButton(str(n), callback_data=callback_data(person.id, n))
                 for n in question.options])
    return text, InlineKeyboardMarkup(rows)
