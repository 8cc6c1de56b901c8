"""/stats and /broadcast: the operator's commands, for NEZUKO_SUPERADMINS only.

Both work only in a private chat with a bot, and only for the Telegram ids in
`settings.NEZUKO_SUPERADMINS`; to anyone else they do nothing at all, as any
command the bot does not know (no answer, no hint that they exist).

/stats answers with the installation's figures from the database (bots,
groups, verifications, restrictions and errors today and in the last 7 days,
channel joins attributed) and this process's counters (Telegram calls, 429
answers, errors, membership cache hit rate).

/broadcast [owners|all] <text> (or, as a reply to a message, its text) writes
a draft and answers with a preview and two buttons, "Send to N people" and
"Cancel"; the sending is `verification.broadcasts`' job.
"""

from __future__ import annotations

import dataclasses
import datetime
import re

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bots import metrics
from bots.audit import Actor
from bots.models import AuditLog, BotInstance
from groups import languages
from groups.models import Attribution, ProtectedGroup
from verification import actions, broadcasts
from verification.actions import announcements
from verification.engine import Engine
from verification.models import Broadcast, Outcome, VerificationEvent

logger = structlog.get_logger(__name__)

# "/broadcast", "/broadcast@bot", then an optional audience, then the text.
COMMAND_TEXT = re.compile(r"^/\S+(?:\s+(?:owners|all)(?=\s|$))?\s*(?P<text>.*)\Z",
                          re.DOTALL | re.IGNORECASE)
CONFIRM = "nz:bc:"  # nz:bc:<broadcast pk>:send / :cancel
VERIFIED = (Outcome.VERIFIED, Outcome.UNMUTED, Outcome.JOIN_APPROVED)
RESTRICTED = (Outcome.RESTRICTED, Outcome.KICKED)
# Before the engine's commands (and /login), so these never reach another handler.
SUPERADMIN_GROUP = -3


def is_superadmin(user: User | None) -> bool:
    return user is not None and not user.is_bot and user.id in settings.NEZUKO_SUPERADMINS


def install(application: Application, engine: Engine) -> None:
    private = filters.ChatType.PRIVATE
    commands = SuperadminCommands(engine)
    application.add_handlers([
        CommandHandler("stats", commands.stats, filters=private),
        CommandHandler("broadcast", commands.broadcast, filters=private),
        CallbackQueryHandler(commands.pressed, pattern=rf"^{CONFIRM}"),
    ], group=SUPERADMIN_GROUP)


# --- /stats figures ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    verified: int
    restricted: int
    errors: int
    joins_attributed: int


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    bots_active: int
    bots: int
    groups_protected: int
    groups: int
    today: Period
    week: Period
    # This process only (Prometheus counters since it started).
    calls: int
    rate_limited: int
    errors: int
    cache_hits: int
    cache_misses: int

    @property
    def cache_hit_percent(self) -> float | None:
        lookups = self.cache_hits + self.cache_misses
        return round(100 * self.cache_hits / lookups, 1) if lookups else None


def _period(since: datetime.datetime) -> Period:
    events = VerificationEvent.objects.filter(created_at__gte=since).aggregate(
        verified=Count("pk", filter=Q(outcome__in=VERIFIED)),
        restricted=Count("pk", filter=Q(outcome__in=RESTRICTED)),
        errors=Count("pk", filter=Q(outcome=Outcome.ERROR)),
    )
    joins = Attribution.objects.filter(joined_at__gte=since).exclude(how="").count()
    return Period(events["verified"], events["restricted"], events["errors"], joins)


def _counter(counter, **labels: str) -> int:
    """The sum of a Prometheus counter's `_total` samples whose labels match."""
    total = 0.0
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and all(
                    sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return int(total)


def figures(now: datetime.datetime | None = None) -> Figures:
    """Today is since midnight UTC; the week is the last 7 days."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bots = BotInstance.objects.aggregate(
        n=Count("pk"), active=Count("pk", filter=Q(is_active=True)))
    groups = ProtectedGroup.objects.aggregate(
        n=Count("pk"), enabled=Count("pk", filter=Q(enabled=True)))
    return Figures(
        bots_active=bots["active"], bots=bots["n"],
        groups_protected=groups["enabled"], groups=groups["n"],
        today=_period(midnight), week=_period(now - datetime.timedelta(days=7)),
        calls=_counter(metrics.TELEGRAM_CALLS),
        rate_limited=_counter(metrics.TELEGRAM_CALLS, outcome="retry_after"),
        errors=_counter(metrics.ERRORS),
        cache_hits=_counter(metrics.CACHE_LOOKUPS, result="hit"),
        cache_misses=_counter(metrics.CACHE_LOOKUPS, result="miss"),
    )


afigures = sync_to_async(figures)


# --- the commands -----------------------------------------------------------------------


def _language(user: User) -> str:
    return languages.for_person(user.language_code)


def _audience_name(kind: str) -> str:
    if kind == Broadcast.Audience.ALL:
        return _("everyone who started this bot")
    return _("the owners of the groups this bot protects")


class SuperadminCommands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or not is_superadmin(user):
            return
        numbers = await afigures()
        with languages.speaking(_language(user)):
            text = render_to_string("verification/telegram/stats.html", {"f": numbers}).strip()
        await actions.reply(self.engine, message.chat_id, text)

    async def broadcast(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or not is_superadmin(user):
            return
        with languages.speaking(_language(user)):
            await self._draft(message, user, list(context.args or []))

    async def _draft(self, message: Message, user: User, args: list[str]) -> None:
        kind = Broadcast.Audience.OWNERS
        if args and args[0].lower() in Broadcast.Audience.values:
            kind = args.pop(0).lower()
        text = _text_after_command(message)
        replied = message.reply_to_message
        if not text and replied is not None:
            text = replied.text or replied.caption or ""
        if not text.strip():
            await actions.reply(self.engine, message.chat_id, render_to_string(
                "verification/telegram/broadcast_usage.html").strip())
            return
        try:
            draft = await broadcasts.adraft(self.engine.bot_pk, kind, text, user.id)
        except ValidationError as exc:
            await actions.reply(self.engine, message.chat_id, " ".join(exc.messages))
            return
        audience = await broadcasts.afind_audience(self.engine.bot_pk, kind)
        header = render_to_string("verification/telegram/broadcast_preview.html", {
            "audience": _audience_name(kind), "people": len(audience.people),
            # Counted as the deliveries will be: a block wins over an opt-out.
            "blocked": len(audience.blocked),
            "opted_out": len(audience.opted_out - audience.blocked),
            "reachable": audience.reachable,
        }).strip()
        await actions.reply(self.engine, message.chat_id, header)
        send_label = ngettext("Send to %(count)d person", "Send to %(count)d people",
                              audience.reachable) % {"count": audience.reachable}
        markup = InlineKeyboardMarkup([[
            InlineKeyboardButton(send_label, callback_data=f"{CONFIRM}{draft.pk}:send"),
            InlineKeyboardButton(_("Cancel"), callback_data=f"{CONFIRM}{draft.pk}:cancel"),
        ]])
        await announcements.preview(self.engine, message.chat_id, draft.text, markup)

    async def pressed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        pk_text, _sep, verb = (query.data or "")[len(CONFIRM):].partition(":")
        if not is_superadmin(user) or not pk_text.isdigit():
            # Someone else pressing a forwarded preview: nothing tells them what it was.
            await actions.answer(self.engine, query.id)
            return
        with languages.speaking(_language(user)):
            answer = await self._decide(int(pk_text), verb, user)
        await actions.answer(self.engine, query.id, answer)
        if query.message is not None:
            # The buttons go: a second press would find nothing to do anyway.
            await announcements.drop_buttons(self.engine, query.message.chat.id,
                                             query.message.message_id)

    async def _decide(self, pk: int, verb: str, user: User) -> str:
        if verb == "cancel":
            if await broadcasts.acancel(pk, user.id):
                return _("Cancelled: nothing was sent.")
            return _("This broadcast is not waiting any more.")
        actor = Actor(AuditLog.Source.TELEGRAM, name=user.full_name, telegram_id=user.id)
        broadcast = await broadcasts.aconfirm(pk, actor)
        if broadcast is None:
            return _("This broadcast is not waiting any more.")
        self.engine.broadcasts_due.set()
        logger.info("broadcast.confirmed", bot=self.engine.bot_pk, broadcast=pk,
                    audience=broadcast.audience)
        return _("Sending now, at the lowest priority. Progress: the dashboard's "
                 "Broadcasts page.")


def _text_after_command(message: Message) -> str:
    """What follows "/broadcast [audience]", with the sender's own line breaks kept
    (`context.args` splits on any whitespace)."""
    match = COMMAND_TEXT.match(message.text or "")
    return match.group("text").strip() if match else ""
