"""Writing down what carrying out a decision did: the ledger and the events.

`actions` make the Bot API calls and return a `Done`; `record()` is the one
place that turns it into writes, so every path (a message, a join, a button,
a channel join, an owed retry, a dashboard command) records the same way:

* the ledger (`groups.models.GroupMember`, written through `groups.ledger` so
  an outage spools instead of losing it) says whose restriction it is. Nezuko
  lifts only what the ledger says it placed; `engine.restricted` covers the
  moment before the row is written.
* an action Telegram did not carry out for a passing reason (a 5xx, a
  timeout, a 429 the limiter gave up on) is owed and retried
  (`verification/owed.py`); a refusal (400, 403) is not, because it would fail
  again until someone fixes the bot's rights, which /doctor reports.
* one `VerificationEvent` per outcome, buffered by the recorder and published
  at once to analytics and the live feed.
* members seen (`seen`): buffered and written in bulk once a second; any
  later write about the member drops their buffered sighting first.
"""

from __future__ import annotations

import dataclasses
import time

from telegram.error import TelegramError

from bots.heartbeat import is_network_error
from bots.ratelimit import RateLimitDropped
from groups import owed
from groups.config import ChannelConfig, GroupConfig
from groups.models import GroupMember
from groups.services import attribution, health, ledger_writes, protection
from verification.decisions import Freed, HandOver
from verification.engine import Engine
from verification.events import VerificationEventData
from verification.models import Outcome
from verification.updates import MemberChange, Person

# Outcomes that told a person which channels to join (the funnel's "warned").
WARNING_OUTCOMES = frozenset({Outcome.RESTRICTED, Outcome.KICKED, Outcome.DELETED})
# Unmutes that happened because the person now satisfies every channel (not an
# admin's unmute from the dashboard): the funnel's "verified".
VERIFYING_REASONS = frozenset({"channel_join", "button", "owed", "recheck"})


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    """The outcome of carrying out one decision, as `record()` needs it."""

    # What the ledger should say now.
    RESTRICTED = "restricted"  # Nezuko's restriction
    LIFTED = "lifted"  # no restriction of Nezuko's any more
    KICKED = "kicked"  # out of the group
    LEFT = "left"  # unbanned: may come back
    SETTLE = "settle"  # nothing under way or owed
    MEMBER = "member"  # a known member (join approved)

    person: Person
    event: str | None  # verification.models.Outcome to record; None: no event
    ledger: str = ""
    detail: str = ""
    missing: tuple[ChannelConfig, ...] = ()
    ok: bool = True  # False: Telegram did not do it
    failure: TelegramError | None = None  # the error, when it might pass
    owed: str = ""  # the owed action ("restrict", "unmute") if `failure` passes
    lacks_rights: bool = False  # Telegram refused for want of the bot's rights
    target_is_admin: bool = False  # refused: the target is an admin after all


async def intend(config: GroupConfig, person: Person) -> None:
    """Write-ahead before restrictChatMember: the restriction is under way. A process
    that dies before the outcome is written leaves this mark, and the next one asks
    Telegram instead of muting twice or not at all (decisions.restriction_in_place)."""
    await owed.aintend(config.pk, person.id, GroupMember.Owed.RESTRICT,
                       name=person.name, username=person.username)


async def record(engine: Engine, config: GroupConfig, done: Done, *,
                 started: float | None = None, cache_hit: bool | None = None) -> None:
    """The ledger first (a later read must see it), then the event."""
    await _ledger(engine, config, done)
    if done.failure is not None and done.owed:
        await _owe(config, done)
    if done.lacks_rights:
        # The group shows up as needing attention until /doctor finds the rights back.
        await health.arecord_bot_rights(engine.bot_pk, config.chat_id, "supergroup",
                                          "member", {})
    if done.event is not None:
        event(engine, done.event, config, done.person, missing=done.missing, started=started,
              cache_hit=cache_hit, detail=done.detail)
    if done.ok:
        await _funnel(config, done)


async def _funnel(config: GroupConfig, done: Done) -> None:
    """The growth funnel's steps that an outcome in a group makes (groups.attribution)."""
    if done.event in WARNING_OUTCOMES and done.missing:
        await attribution.awarned(config.pk, [c.chat_id for c in done.missing], done.person.id)
    elif done.event == Outcome.JOIN_APPROVED or (
            done.event == Outcome.UNMUTED and done.detail in VERIFYING_REASONS):
        await attribution.averified(config.pk, done.person.id)


async def invite_link_made(config: GroupConfig, channel: ChannelConfig, url: str) -> None:
    """The group's own invite link to a channel: its Join buttons use it from now on."""
    await protection.astore_invite_link(config.pk, channel.chat_id, url)


async def invite_links_revoked(group_pk: int, links: list[tuple[int, str]]) -> None:
    await protection.aforget_invite_links(group_pk, links)


async def asked_to_join(config: GroupConfig, person: Person,
                        missing: tuple[ChannelConfig, ...]) -> None:
    """A join request answered with "join these first": warned, for the funnel."""
    await attribution.awarned(config.pk, [c.chat_id for c in missing], person.id)


async def channel_membership(engine: Engine, change: MemberChange) -> None:
    """A person joined or left a channel some group requires: the funnel's joined
    (exact through a group's own invite link, else likely) or left."""
    if change.joined:
        await attribution.ajoined(engine.bot_pk, change.chat_id, change.person.id,
                                  change.invite_link)
    elif change.left:
        await attribution.aleft(engine.bot_pk, change.chat_id, change.person.id)


async def _ledger(engine: Engine, config: GroupConfig, done: Done) -> None:
    person, key = done.person, (config.chat_id, done.person.id)
    if done.ledger == Done.RESTRICTED:
        engine.restricted.add(key)
        # Ours now; whatever was owed or under way is settled with it.
        await ledger_writes.amark_restricted(config.pk, person.id, name=person.name,
                                        username=person.username, reason=done.detail)
    elif done.ledger == Done.LIFTED:
        engine.restricted.discard(key)
        await ledger_writes.aclear_restriction(config.pk, person.id)
    elif done.ledger == Done.KICKED:
        engine.restricted.discard(key)
        await ledger_writes.aset_member_status(config.pk, person.id, "kicked")
    elif done.ledger == Done.LEFT:
        await ledger_writes.aset_member_status(config.pk, person.id, "left")
    elif done.ledger == Done.SETTLE:
        await owed.asettle(config.pk, person.id)
    elif done.ledger == Done.MEMBER:
        await ledger_writes.anote_member(config.pk, person.id, name=person.name,
                                    username=person.username)


async def _owe(config: GroupConfig, done: Done) -> None:
    """Owed when the failure passes (5xx, timeouts, the network, a 429 the limiter
    gave up on); otherwise nothing stays under way."""
    exc = done.failure
    if not (is_network_error(exc) or isinstance(exc, RateLimitDropped)):
        await owed.asettle(config.pk, done.person.id)
        return
    await owed.aowe(config.pk, done.person.id, done.owed, error=str(exc),
                    name=done.person.name, username=done.person.username)


async def changed_hands(engine: Engine, config: GroupConfig, change: HandOver | Freed) -> None:
    """Another admin restricted or freed a member (a chat_member update, not an action
    of Nezuko's): the ledger must no longer call the restriction Nezuko's."""
    engine.restricted.discard((config.chat_id, change.person.id))
    if isinstance(change, HandOver):
        await ledger_writes.ahand_over_restriction(config.pk, change.person.id)
    else:
        await ledger_writes.aclear_restriction(config.pk, change.person.id)


def seen(engine: Engine, config: GroupConfig, person: Person) -> None:
    """A member spoke (or joined) here: the group is active, and a member seen for the
    first time in this process is noted (a channel leave restricts them only in groups
    that know them). No await, no task: the fast path calls this, and the sighting is
    buffered and written in bulk once a second (`ledger_writes.MemberSightings`). Their
    language counts towards the group's (`Engine.member_languages`), in memory. The people
    directory's last_seen moves too, at most hourly (`PeopleWriter.touch`)."""
    engine.note_activity(config.chat_id)
    engine.member_languages.note(config.chat_id, person.id, person.language_code)
    engine.people.touch(engine.bot_pk, person.id)
    if engine.first_sighting(config.chat_id, person.id):
        engine.sightings.add(config.pk, person.id, name=person.name, username=person.username)


async def member_left(config: GroupConfig, person: Person, *, kicked: bool) -> None:
    await ledger_writes.aset_member_status(config.pk, person.id, "kicked" if kicked else "left")


async def warning_gone(chat_id: int, message_id: int) -> None:
    """A warning message was deleted: no ledger row points at it any more."""
    await ledger_writes.aforget_warning(chat_id, message_id)


def event(engine: Engine, outcome: str, config: GroupConfig, person: Person, *,
          missing: tuple[ChannelConfig, ...] = (), started: float | None = None,
          cache_hit: bool | None = None, detail: str = "") -> None:
    """One VerificationEvent: buffered for the database, published at once."""
    engine.recorder.record(VerificationEventData(
        outcome=str(outcome),
        bot_id=engine.bot_pk,
        group_id=config.pk,
        chat_id=config.chat_id,
        user_id=person.id,
        user_name=person.name,
        missing_channel_ids=tuple(c.chat_id for c in missing),
        latency_ms=(time.perf_counter() - started) * 1000 if started else None,
        cache_hit=cache_hit,
        detail=detail,
    ))
