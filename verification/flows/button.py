"""Flow 6: "I've joined" under a warning, and the button of a join request's
private message. The wording a person reads is here; who may press and what
is lifted are decisions (`decisions.screen_press`, `decide_unmute`)."""

from __future__ import annotations

import time

from django.utils.translation import npgettext, pgettext, pgettext_lazy
from telegram import Update

from groups import languages
from groups.config import GroupConfig
from groups.services import ledger_reads
from verification import actions, telegram_reads, wording
from verification.decisions import (
    Ledger,
    NotOurs,
    RefusePress,
    StillMissing,
    Unmute,
    decide_unmute,
    named_on_warning,
    restriction_is_ours,
    screen_press,
)
from verification.engine import Engine
from verification.flows.join_requests import retry_join_request
from verification.joinrequests import apending_request
from verification.updates import ButtonPress

# Translators: the alerts on a button press are at most 200 characters.
REFUSALS = {
    "protection_off": (pgettext_lazy("alert", "Protection is off here."), False),
    "not_named": (pgettext_lazy("alert", "This button is for the member named in the warning."),
                  True),
}


async def on_button(engine: Engine, update: Update) -> None:
    query = update.callback_query
    press = ButtonPress.parse(query.id, query.data, query.from_user, query.message)
    if press is None:
        await actions.answer(engine, query.id)
        return
    # Every answer is an alert to the presser alone: in their language.
    group = press.target if press.kind == "request" else press.chat_id
    config = await engine.config(group) if group is not None else None
    with languages.speaking(engine.language_of(config, press.presser.language_code)):
        if not engine.may_press(press.presser.id):
            await actions.answer(engine, press.query_id,
                                 pgettext("alert", "One moment, checking…"))
            return
        if press.kind == "request":
            await _request_pressed(engine, press)
        else:
            await _joined_pressed(engine, press)


async def _joined_pressed(engine: Engine, press: ButtonPress) -> None:
    started = time.perf_counter()
    config = await engine.config(press.chat_id)
    warning = engine.board.of_message(press.chat_id, press.message_id) \
        if config is not None else None
    ledger = None
    if config is not None and config.protecting:
        ledger = Ledger.of(await ledger_reads.aledger_entry(config.pk, press.presser.id))
    named = named_on_warning(press.presser.id, press.message_id,
                             live=warning.user_ids if warning else None, ledger=ledger)
    recorded = warning.users.get(press.presser.id) if warning else None
    restricted_here = config is not None and (config.chat_id, press.presser.id) in \
        engine.restricted
    decision = screen_press(config, press.presser, press.target, named=named,
                            missing=recorded[1] if recorded else None,
                            on_live_warning=warning is not None,
                            restricted_by_nezuko=restriction_is_ours(
                                ledger, restricted_here=restricted_here))
    if isinstance(decision, RefusePress):
        text, alert = REFUSALS[decision.why]
        await actions.answer(engine, press.query_id, str(text), alert=alert)
        return
    # A person is waiting for the answer: their checks go first (P0).
    answers, _ = await telegram_reads.check(engine, press.presser.id, config.channels,
                                            fresh=tuple(c.chat_id for c in decision.fresh),
                                            level="P0")
    unmute = decide_unmute(config, press.presser, answers, restricted_by_nezuko=decision.ours,
                           reason="button")
    await _answer_unmute(engine, press, unmute, config, started, restore=decision.restore)


async def _answer_unmute(engine: Engine, press: ButtonPress,
                         decision: Unmute | StillMissing | NotOurs, config: GroupConfig,
                         started: float, *, restore: bool) -> None:
    if isinstance(decision, Unmute):
        done = await actions.unmute(engine, decision, config, started=started, restore=restore)
        text = pgettext("alert", "Thanks! You can write again.") if done.ok else \
            pgettext("alert", "Something went wrong; try again.")
        await actions.answer(engine, press.query_id, text)
    elif isinstance(decision, StillMissing):
        await actions.answer(engine, press.query_id, missing_text(decision), alert=True)
    else:
        await actions.answer(engine, press.query_id, pgettext(
            "alert", "An admin of this group restricted you; only they can lift it."), alert=True)


async def _request_pressed(engine: Engine, press: ButtonPress) -> None:
    config = await engine.config(press.target)
    request = await apending_request(config.pk, press.presser.id) if config else None
    if request is None:
        await actions.answer(engine, press.query_id,
                             pgettext("alert", "This request is no longer open."))
        return
    still = await retry_join_request(
        engine, press.target, press.presser, fresh=tuple(c.chat_id for c in config.channels),
        level="P0")
    if still is None:
        await actions.answer(engine, press.query_id, pgettext("alert", "You're in!"))
    else:
        await actions.answer(engine, press.query_id, missing_text(still), alert=True)


def missing_text(decision: StillMissing) -> str:
    """The alert: what is still needed, and under `any` / `at least N` how many of it."""
    if decision.unknown:
        return pgettext("alert", "Telegram did not answer just now. Please try again in a minute.")
    names = wording.joined_text([wording.isolate(c.label) for c in decision.missing],
                                any_of=bool(decision.short))
    if decision.short and decision.short < len(decision.missing):
        # Translators: an alert (at most 200 characters with the channels' titles);
        # channels: "Cats or Dogs".
        return npgettext("alert", "You still need to join %(count)s of: %(channels)s",
                         "You still need to join %(count)s of: %(channels)s",
                         decision.short) % {"count": decision.short, "channels": names}
    # Translators: an alert (at most 200 characters with the channels' titles);
    # channels: "Cats and Dogs".
    return pgettext("alert", "You still need to join: %(channels)s") % {"channels": names}
