"""Telegram commands: /start, /protect, /unprotect, /status, /settings, /unmute, /ban,
/help, /doctor.

Group admins set a group up from inside Telegram. Every command checks where
it was sent and who sent it first; replies in groups remove themselves after
`REPLY_TTL` seconds so setup chatter does not stay in the group.

Members who are not admins get one answer per `throttle` seconds (a group
setting, 60 by default) in a group; their other commands are ignored without
a Telegram call (`bots.throttle`), and answers to them go after
`MEMBER_REPLY_TTL` seconds: each answer spends the group's messages a minute,
which warnings need.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import html
import re
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext, pgettext_lazy
from telegram import (
    CallbackQuery,
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginChannel,
    Update,
    User,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bots.audit import Actor
from bots.models import AuditLog
from bots.throttle import PersonThrottle
from groups import languages, rights
from groups.config import GroupConfig, aget_group_config
from groups.models import FunnelDay, ProtectedGroup
from groups.services import health, ledger_reads, members, protection
from groups.services import settings as group_settings
from verification import actions, impact, telegram_reads, wording
from verification.engine import Engine
from verification.flows import invite_links
from verification.updates import ADMIN_STATUSES, GROUP_ANONYMOUS_BOT_ID, display_name

logger = structlog.get_logger(__name__)

REPLY_TTL = 60
MEMBER_REPLY_TTL = 15  # answers to members who are not admins go sooner
# Unprotected groups have no setting yet: ProtectedGroup.throttle's default.
DEFAULT_THROTTLE = ProtectedGroup._meta.get_field("throttle").default
MAX_CHANNELS = 10
CHANNEL_REF = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-100\d{5,15})$")
INVITE_RIGHTS = "restrict_members+delete_messages+invite_users"
# /status shows the growth funnel of journeys begun this many days back.
FUNNEL_DAYS = 30

# The keyboard's rows: option names and values as `/settings <name> <value>` takes them.
# Translators: the /settings keyboard's buttons; four share a row, keep them short.
SETTING_CHOICES: dict[str, list[tuple[str, str]]] = {
    "action": [("mute", pgettext_lazy("settings button", "Mute")),
               ("kick", pgettext_lazy("settings button", "Kick")),
               ("delete", pgettext_lazy("settings button", "Delete only")),
               ("observe", pgettext_lazy("settings button", "Observe"))],
    "policy": [("all", pgettext_lazy("settings button", "All channels")),
               ("any", pgettext_lazy("settings button", "Any channel"))],
    "warning_delay": [("30", pgettext_lazy("settings button", "30 s")),
                      ("120", pgettext_lazy("settings button", "2 min")),
                      ("600", pgettext_lazy("settings button", "10 min")),
                      ("0", pgettext_lazy("settings button", "Keep"))],
    "fail": [("closed", pgettext_lazy("settings button", "Fail closed")),
             ("open", pgettext_lazy("settings button", "Fail open"))],
    "captcha": [("off", pgettext_lazy("settings button", "No captcha")),
                ("on", pgettext_lazy("settings button", "Captcha"))],
}
# /unmute and /ban: how to use them, and the answer once queued (name: the member's).
USAGE = {
    "unmute": gettext_lazy("Usage: reply to the member's message with /unmute, or /unmute "
                           "followed by their user id."),
    "ban": gettext_lazy("Usage: reply to the member's message with /ban, or /ban followed by "
                        "their user id."),
}
WILL_DO = {
    "unmute": gettext_lazy("OK: I will unmute %(name)s in a moment."),
    "ban": gettext_lazy("OK: I will ban %(name)s in a moment."),
}
# /doctor's lines on the group rights Nezuko needs: (right, what, the fix).
GROUP_RIGHTS = (
    ("can_restrict_members", gettext_lazy("Group: can restrict members"),
     # Translators: "Ban users" is the right's name in Telegram's admin settings.
     gettext_lazy("give me the “Ban users” right")),
    ("can_delete_messages", gettext_lazy("Group: can delete messages"),
     # Translators: "Delete messages" is the right's name in Telegram's admin settings.
     gettext_lazy("give me the “Delete messages” right")),
)
# Keyboards sent before the options had names used the field names.
OLD_CHOICE_NAMES = {"warning_delete_after": "warning_delay", "fail_mode": "fail"}


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    what: str
    fix: str
    ok: bool = False
    info: bool = False  # worth knowing, but nothing to flag the group for


def install(application: Application, engine: Engine) -> Commands:
    c = Commands(engine)
    application.add_handlers([
        CommandHandler("start", c.start),
        CommandHandler("help", c.help),
        CommandHandler("protect", c.protect),
        CommandHandler("unprotect", c.unprotect),
        CommandHandler("status", c.status),
        CommandHandler("settings", c.settings),
        CommandHandler("doctor", c.doctor),
        CommandHandler("unmute", c.unmute),
        CommandHandler("ban", c.ban),
        CallbackQueryHandler(c.setting_pressed, pattern=r"^nz:s:"),
    ])
    return c


Handler = Callable[["Commands", Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def throttled(handler: Handler) -> Handler:
    """Ignore the command when its sender, not an admin, was answered too recently;
    else answer it in the sender's language."""
    @functools.wraps(handler)
    async def gate(self: Commands, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if await self._throttled(message):
            return
        with languages.speaking(await self._language(message.chat, message.from_user)):
            await handler(self, update, context)
    return gate


class Commands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.throttle = PersonThrottle("command")
        # (chat, user) Telegram just stated to be an admin where the cached list
        # does not know them yet (an unprotected group): never throttled.
        self._admins: set[tuple[int, int]] = set()

    # --- anyone ----------------------------------------------------------------------

    @throttled
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message.chat.type != "private":
            await self._reply(message, _("Send /help to see what I can do here."))
            return
        username = context.bot.username
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(
            # Translators: a button under /start's answer (under 30 characters).
            pgettext("button", "Add me to a group"),
            url=f"https://t.me/{username}?startgroup=true&admin={INVITE_RIGHTS}",
        )]])
        await actions.reply(self.engine, message.chat_id,
                            render_to_string("verification/telegram/start.html").strip(),
                            markup=markup)

    @throttled
    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update.effective_message,
                          render_to_string("verification/telegram/help.html").strip())

    # --- group admins ------------------------------------------------------------------

    @throttled
    async def protect(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        actor = await self._admin_in_group(message, "protect")
        if actor is None:
            return
        refs = [a for a in context.args or [] if a.strip()]
        forwarded = _forwarded_channel(message.reply_to_message)
        if forwarded is not None:
            refs.append(str(forwarded))
        if not refs:
            await self._reply(message, _("Usage: /protect @channel [@channel …] (or reply to "
                                         "a post forwarded from the channel)."))
            return
        bad = [r for r in refs if not CHANNEL_REF.match(r)]
        if bad:
            # Translators: refs: what was typed instead of channels; max: up to 10.
            await self._reply(message, _("Not a channel: %(refs)s. Use @username or the id "
                                         "(-100…), up to %(max)s channels.")
                              % {"refs": escape(", ".join(bad)), "max": MAX_CHANNELS})
            return
        if len(refs) > MAX_CHANNELS:
            await self._reply(message, _("At most %(max)s channels per command.")
                              % {"max": MAX_CHANNELS})
            return
        if message.chat.type == "group":
            # Telegram lets bots restrict members only in supergroups.
            await self._reply(message, _("This is a basic group, where I cannot mute anyone. "
                                         "Upgrade it to a supergroup (for example: make chat "
                                         "history visible to new members), then send /protect "
                                         "again."))
            return
        problems, channels = await self._check_setup(message.chat_id, refs)
        if problems:
            lines = "\n".join(f"❌ {escape(p.what)} — {escape(p.fix)}" for p in problems)
            # Translators: followed by one line per problem, each with its fix.
            await self._reply(message, _("I can't protect this group yet:") + "\n" + lines)
            return
        chat = await telegram_reads.get_chat(self.engine, message.chat_id)
        group = await protection.aprotect(
            self.engine.bot_pk, message.chat_id, title=message.chat.title or "",
            username=message.chat.username or "", is_forum=bool(message.chat.is_forum),
            channels=channels, actor=actor,
            linked_chat_id=getattr(chat, "linked_chat_id", None))
        config = await aget_group_config(self.engine.bot_pk, message.chat_id)
        await telegram_reads.fetch_admins(self.engine, config)
        # The group's own link per channel: Join buttons use it, and joins through it
        # are attributed to this group.
        await invite_links.ensure_invite_links(self.engine, config)
        names = wording.joined([wording.name_html(c.title or c.username) for c in channels])
        # Offer shadow mode first: the owner sees the impact before anyone is muted.
        observe = InlineKeyboardMarkup([[InlineKeyboardButton(
            # Translators: a button (under 40 characters).
            pgettext("button", "Observe first (mute nobody)"),
            callback_data="nz:s:action:observe")]])
        # Translators: group: the group's title; channels: the channels now required.
        # "/settings action mute" is a command: keep it as it is.
        await self._reply(message, _(
            "✅ <b>%(group)s</b> now requires: %(channels)s.\n"
            "Members who are not subscribed will be muted until they join. Not sure yet? "
            "Observe first: I only record what I would do (/status shows it), and "
            "<code>/settings action mute</code> starts enforcing.")
            % {"group": wording.name_html(group.title), "channels": names}, markup=observe)

    @throttled
    async def unprotect(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        found = await self._protected_group(message, "unprotect")
        if found is None:
            return
        config, actor = found
        channel_id = None
        if context.args:
            channel_id = _match_channel(config, context.args[0])
            if channel_id is None:
                # Translators: channel: what was typed after /unprotect.
                await self._reply(message, _("%(channel)s is not linked to this group.")
                                  % {"channel": escape(context.args[0])})
                return
        links = await protection.ainvite_links(config.pk, channel_id)
        off = await protection.aunprotect(config.pk, channel_chat_id=channel_id,
                                          actor=actor)
        await invite_links.revoke_invite_links(self.engine, config.pk, links)
        if off:
            config = await aget_group_config(self.engine.bot_pk, message.chat_id)
            user_ids = await ledger_reads.arestricted_user_ids(config.pk)
            lifted = await actions.lift_all(self.engine, config, user_ids)
            text = ngettext("Protection is off. I lifted %(count)s restriction I had placed.",
                            "Protection is off. I lifted %(count)s restrictions I had placed.",
                            lifted) % {"count": lifted}
        else:
            text = _("Channel removed; the others are still required.")
        await self._reply(message, text)

    @throttled
    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        found = await self._protected_group(message, "view")
        if found is None:
            return
        config, _actor = found
        context_data = await health.agroup_status(config.pk)
        context_data["funnel"] = await _afunnel_lines(config)
        context_data["impact"] = await impact.apreview(context_data["group"])
        group = context_data["group"]
        context_data["group_name"] = wording.isolate(group.title or str(group.chat_id))
        context_data["missing_rights_text"] = ", ".join(context_data["missing_rights"])
        await self._reply(message, render_to_string("verification/telegram/status.html",
                                                    context_data).strip())

    @throttled
    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The keyboard; or `/settings <name> <value>`, answered with the new value or
        an error naming the allowed values."""
        message = update.effective_message
        args = context.args or []
        if args:
            await self._set_option(message, args)
            return
        found = await self._protected_group(message, "view")
        if found is None:
            return
        config, _actor = found
        group = await ProtectedGroup.objects.aget(pk=config.pk)
        await actions.reply(self.engine, message.chat_id, _settings_text(group),
                            markup=_settings_keyboard(group), thread_id=_thread(message),
                            delete_after=REPLY_TTL * 5)

    async def _set_option(self, message: Message, args: list[str]) -> None:
        found = await self._protected_group(message, "settings")
        if found is None:
            return
        config, actor = found
        if len(args) != 2:
            names = ", ".join(group_settings.OPTIONS)
            # Translators: names: the settings' names, typed in English.
            await self._reply(message, _("Usage: /settings &lt;name&gt; &lt;value&gt;, for "
                                         "example <code>/settings action mute</code>. "
                                         "Settings: %(names)s.") % {"names": names})
            return
        try:
            option, value = group_settings.parse_option(*args)
            group = await group_settings.aupdate_settings(config.pk, {option.field: value},
                                                          actor=actor)
        except ValidationError as exc:
            await self._reply(message, "❌ " + _text(" ".join(exc.messages)))
            return
        except PermissionDenied as exc:
            await self._reply(message, _text(str(exc)))
            return
        await self._reply(message, f"✅ {option.name}: <b>{escape(option.show(value))}</b>"
                          f"{_meaning(group, option.name)}")

    async def setting_pressed(self, update: Update,
                              context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        chat = query.message.chat if query.message is not None else None
        with languages.speaking(await self._language(chat, query.from_user)):
            await self._setting_pressed(query)

    async def _setting_pressed(self, query: CallbackQuery) -> None:
        parts = (query.data or "").split(":")
        name = OLD_CHOICE_NAMES.get(parts[2], parts[2]) if len(parts) == 4 else ""
        choices = dict(SETTING_CHOICES.get(name, []))
        if not choices or parts[3] not in choices or query.message is None:
            await actions.answer(self.engine, query.id)
            return
        chat_id = query.message.chat_id
        config = await self.engine.config(chat_id)
        if config is None:
            await actions.answer(self.engine, query.id)
            return
        refusal, standing = await self._check(chat_id, config.title, query.from_user.id,
                                              "settings")
        if refusal is not None:
            await actions.answer(self.engine, query.id, refusal.message, alert=True)
            return
        option, value = group_settings.parse_option(name, parts[3])
        actor = _telegram_actor(query.from_user.id, display_name(query.from_user), standing)
        group = await group_settings.aupdate_settings(config.pk, {option.field: value},
                                                      actor=actor)
        await actions.edit(self.engine, chat_id, query.message.message_id,
                           _settings_text(group), _settings_keyboard(group))
        # Translators: a short notice after pressing a /settings button.
        await actions.answer(self.engine, query.id, pgettext("alert", "Saved."))

    @throttled
    async def unmute(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._member_change(update.effective_message, context.args or [], "unmute")

    @throttled
    async def ban(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._member_change(update.effective_message, context.args or [], "ban")

    async def _member_change(self, message: Message, args: list[str], kind: str) -> None:
        """/unmute or /ban, as a reply to the member's message or with their user id.

        The same service as the dashboard's buttons: it queues the change for the
        command queue, which carries it out in a moment.
        """
        found = await self._protected_group(message, kind)
        if found is None:
            return
        config, actor = found
        target = _target(message, args)
        if target is None:
            await self._reply(message, str(USAGE[kind]))
            return
        user_id, name = target
        try:
            await sync_to_async(members.CHANGES[kind])(config.pk, user_id, actor=actor)
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            await self._reply(message, _text(text))
            return
        await self._reply(message, str(WILL_DO[kind]) % {"name": wording.name_html(name)})

    @throttled
    async def doctor(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        found = await self._protected_group(message, "view")
        if found is None:
            return
        config, _actor = found
        lines = await self.diagnose(config)
        await self._reply(message, render_to_string("verification/telegram/doctor.html", {
            "group": wording.isolate(config.title), "lines": lines}).strip())

    # --- checks ------------------------------------------------------------------------

    async def checkup(self) -> int:
        """/doctor on a schedule for every enabled group; returns how many need attention."""
        flagged = 0
        for chat_id in await health.aenabled_group_chat_ids(self.engine.bot_pk):
            config = await self.engine.config(chat_id)
            if config is None:
                continue
            problems = [p.what for p in await self.diagnose(config) if not p.ok]
            await health.aset_attention(config.pk, problems)
            flagged += bool(problems)
        return flagged

    async def diagnose(self, config: GroupConfig) -> list[Problem]:
        """/doctor: one line per thing that must hold, with a fix for each failure."""
        lines = list(await self._group_rights(config.chat_id, ok_lines=True))
        # Retried here: the scheduled check-up runs this every 15 minutes.
        if await invite_links.ensure_invite_links(self.engine, config):
            config = await aget_group_config(self.engine.bot_pk, config.chat_id) or config
        for channel in config.channels:
            lines += await self._channel_rights(channel.chat_id, channel.label, ok_lines=True)
            if not channel.username:
                lines.append(await self._invite_link_line(channel))
            lines.append(_own_link_line(channel))
        return lines

    async def _invite_link_line(self, channel) -> Problem:
        """A private channel's stored link must be its current primary link (a revoked
        link stops working, and getChat then shows a different one)."""
        label = {"channel": wording.isolate(channel.label)}
        what = _("Channel %(channel)s: invite link") % label
        fix = _("run /protect again to store a fresh one (I need the right to invite users)")
        if not channel.channel_url:
            return Problem(what, fix)
        chat = await telegram_reads.get_chat(self.engine, channel.chat_id)
        current = getattr(chat, "invite_link", None) if chat else None
        if current and current != channel.channel_url:
            return Problem(_("Channel %(channel)s: invite link was revoked or replaced") % label,
                           fix)
        return Problem(what, fix, ok=True)

    async def _check_setup(self, group_chat_id: int, refs: list[str],
                           ) -> tuple[list[Problem], list[protection.ChannelInfo]]:
        """The rights /protect needs: problems, and the channels when there are none."""
        problems = list(await self._group_rights(group_chat_id))
        channels = []
        for ref in refs:
            chat = await telegram_reads.get_chat(self.engine,
                                                 int(ref) if ref.startswith("-") else ref)
            if chat is None or chat.type != "channel":
                problems.append(Problem(_("%(channel)s: not a channel I can see") % {
                    "channel": ref}, _("add me to the channel as an admin, then try again")))
                continue
            label = chat.title or ref
            channel_problems = await self._channel_rights(chat.id, label)
            problems += channel_problems
            if channel_problems:
                continue
            link = "" if chat.username else await telegram_reads.invite_link(
                self.engine, chat.id, chat.invite_link)
            if not chat.username and not link:
                problems.append(Problem(
                    _("%(channel)s: no invite link") % {"channel": wording.isolate(label)},
                    _("give me the right to invite users in the channel")))
                continue
            channels.append(protection.ChannelInfo(chat.id, chat.title or "", chat.username or "",
                                                   link))
        return problems, channels

    async def _group_rights(self, chat_id: int, *, ok_lines: bool = False) -> list[Problem]:
        member = await telegram_reads.get_member(self.engine, chat_id, self.engine.bot_telegram_id)
        if member is None or member.status not in ADMIN_STATUSES:
            return [Problem(_("Group: I am not an admin"), _("promote me to admin in this group"))]
        lines = []
        for right, what, fix in GROUP_RIGHTS:
            held = bool(getattr(member, right, False))
            if not held or ok_lines:
                lines.append(Problem(str(what), str(fix), ok=held))
        return lines

    async def _channel_rights(self, chat_id: int, label: str, *,
                              ok_lines: bool = False) -> list[Problem]:
        member = await telegram_reads.get_member(self.engine, chat_id, self.engine.bot_telegram_id)
        channel = {"channel": wording.isolate(label)}
        if member is None:
            return [Problem(_("Channel %(channel)s: I cannot see it (deleted, or I was "
                              "removed)") % channel, _("add me to the channel as an admin"))]
        if member.status != ChatMember.ADMINISTRATOR:
            return [Problem(_("Channel %(channel)s: I am not an admin, so I cannot read its "
                              "members") % channel, _("promote me to admin in the channel"))]
        return [Problem(_("Channel %(channel)s: admin, can read members") % channel, "",
                        ok=True)] if ok_lines else []

    async def _check(self, chat_id: int, title: str, user_id: int, action: str
                     ) -> tuple[rights.Refusal | None, rights.AdminStanding | None]:
        """The same rule as the dashboard's (`groups.rights.may`), on the person's rights
        as Telegram states them right now: (why not, or None; their standing)."""
        if user_id == GROUP_ANONYMOUS_BOT_ID:
            return _anonymous(action, title), None
        standing = await self._standing(chat_id, user_id)
        return rights.may(action, standing, group_title=wording.isolate(title)), standing

    async def _standing(self, chat_id: int, user_id: int) -> rights.AdminStanding | None:
        """The person's admin standing as Telegram states it now; None: not an admin."""
        member = await telegram_reads.get_member(self.engine, chat_id, user_id)
        if member is None or member.status not in ADMIN_STATUSES:
            self._admins.discard((chat_id, user_id))
            return None
        if len(self._admins) > 10_000:
            self._admins.clear()
        self._admins.add((chat_id, user_id))
        self.throttle.forget(chat_id, user_id)  # an admin's next command is answered
        return rights.AdminStanding.of(member.status, member.to_dict())

    async def _language(self, chat: Chat | None, user: User | None) -> str:
        """The language of an answer to `user`: theirs, else their group's."""
        config = None
        if chat is not None and chat.type in ("group", "supergroup"):
            config = await self.engine.config(chat.id)
        return self.engine.language_of(config, user.language_code if user else None)

    # --- the throttle ------------------------------------------------------------------

    async def _is_admin(self, message: Message) -> bool:
        """From what is known without a call: the cached admin list, or Telegram's
        word earlier in this process; anonymous admins speak as the group."""
        if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
            return True
        user = message.from_user
        if user is None:
            return False
        config = await self.engine.config(message.chat_id)
        return ((config is not None and user.id in config.admin_ids)
                or (message.chat_id, user.id) in self._admins)

    async def _throttled(self, message: Message) -> bool:
        if message.chat.type not in ("group", "supergroup") or message.from_user is None:
            return False
        if await self._is_admin(message):
            return False
        config = await self.engine.config(message.chat_id)
        interval = config.throttle if config is not None else DEFAULT_THROTTLE
        allowed = self.throttle.allow(message.chat_id, message.from_user.id, interval)
        if not allowed:
            logger.info("command.throttled", chat_id=message.chat_id,
                        user_id=message.from_user.id)
        return not allowed

    async def _admin_in_group(self, message: Message, action: str) -> Actor | None:
        """In a group, sent by an admin holding the right `action` needs: who they are,
        with the standing the services check the change against; else say why not."""
        if message.chat.type not in ("group", "supergroup"):
            await self._reply(message, _("Use this command in the group you want to protect."))
            return None
        if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
            refusal = _anonymous(action, message.chat.title or "")
            if refusal is not None:
                await self._reply(message, _text(refusal.message) + " " + _(
                    "Anonymous admins cannot be checked for it: send the command as yourself."))
                return None
            return _telegram_actor(message.chat_id, "anonymous admin", None)
        user = message.from_user
        if user is None:
            refusal, standing = rights.Refusal(action, rights.ADMIN,
                                               wording.isolate(message.chat.title or "")), None
        else:
            refusal, standing = await self._check(message.chat_id, message.chat.title or "",
                                                  user.id, action)
        if refusal is not None:
            await self._reply(message, _text(refusal.message))
            return None
        return _telegram_actor(user.id, display_name(user), standing)

    async def _protected_group(self, message: Message, action: str
                               ) -> tuple[GroupConfig, Actor] | None:
        actor = await self._admin_in_group(message, action)
        if actor is None:
            return None
        config = await aget_group_config(self.engine.bot_pk, message.chat_id)
        if config is None:
            await self._reply(message, _("This group is not set up yet: /protect @channel"))
            return None
        return config, actor

    async def _reply(self, message: Message, text: str, *,
                     markup: InlineKeyboardMarkup | None = None) -> None:
        ttl = 0
        if message.chat.type in ("group", "supergroup"):
            ttl = REPLY_TTL if await self._is_admin(message) else MEMBER_REPLY_TTL
        await actions.reply(self.engine, message.chat_id, text, thread_id=_thread(message),
                            markup=markup, delete_after=ttl)


def _own_link_line(channel) -> Problem:
    """Informational: without the group's own link, joins count as "likely" only."""
    label = {"channel": wording.isolate(channel.label)}
    if channel.has_own_link:
        return Problem(_("Channel %(channel)s: this group's own invite link") % label, "",
                       ok=True)
    return Problem(_("Channel %(channel)s: no invite link for this group yet, so joins count "
                     "as likely only") % label, _("give me the “Invite users” right there"),
                   ok=True, info=True)


@sync_to_async
def _afunnel_lines(config: GroupConfig) -> list[dict]:
    """/status: the growth funnel of the last 30 days, one line per channel."""
    today = timezone.now().date()
    rows = FunnelDay.objects.filter(group_id=config.pk).days(
        today - datetime.timedelta(days=FUNNEL_DAYS - 1), today).by_channel(today)
    by_channel = {row["channel_chat_id"]: row for row in rows}
    return [{"channel": wording.isolate(channel.label), **row,
             "joined_total": row["joined_exact"] + row["joined_likely"]}
            for channel in config.channels if (row := by_channel.get(channel.chat_id))]


def _forwarded_channel(message: Message | None) -> int | None:
    if message is None:
        return None
    origin = message.forward_origin
    if isinstance(origin, MessageOriginChannel):
        return origin.chat.id
    return None


def _target(message: Message, args: list[str]) -> tuple[int, str] | None:
    """The member a /unmute or /ban is about: the replied-to sender, or a user id."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.sender_chat is None:
        return replied.from_user.id, display_name(replied.from_user)
    if args and args[0].isdigit():
        return int(args[0]), args[0]
    return None


def _match_channel(config: GroupConfig, ref: str) -> int | None:
    ref = ref.strip()
    for channel in config.channels:
        if ref.lstrip("@").lower() == channel.username.lower() and channel.username:
            return channel.chat_id
        if ref == str(channel.chat_id):
            return channel.chat_id
    return None


def _telegram_actor(telegram_id: int, name: str,
                    standing: rights.AdminStanding | None) -> Actor:
    return Actor(AuditLog.Source.TELEGRAM, name=name, telegram_id=telegram_id,
                 standing=standing)


def _thread(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def _settings_text(group: ProtectedGroup) -> str:
    return render_to_string("verification/telegram/settings.html", {
        "group": group, "group_name": wording.isolate(group.title or str(group.chat_id)),
        "language_name": group_settings.language_name(group.language),
        "options": group_settings.shown(group)}).strip()


def _meaning(group: ProtectedGroup, name: str) -> str:
    """What a just-set value means, where the value alone does not say it."""
    if name == "policy":
        # Translators: after a policy was set; policy: e.g. "any one channel".
        return " " + _("(members need %(policy)s)") % {"policy": escape(group.policy_label)}
    if name == "action" and group.action == ProtectedGroup.Action.OBSERVE:
        return " " + _("(I record what I would do and change nothing; /status shows it)")
    return ""


def _settings_keyboard(group: ProtectedGroup) -> InlineKeyboardMarkup:
    rows = []
    current = dict(group_settings.shown(group))
    for name, choices in SETTING_CHOICES.items():
        rows.append([
            InlineKeyboardButton(("• " if value == current[name] else "") + str(label),
                                 callback_data=f"nz:s:{name}:{value}")
            for value, label in choices
        ])
    return InlineKeyboardMarkup(rows)


def _anonymous(action: str, title: str) -> rights.Refusal | None:
    """An anonymous admin: Telegram hides who is speaking, so which rights they hold is
    unknown. Any admin may look; changing anything needs someone whose rights are known."""
    if rights.ACTIONS[action] == rights.ADMIN:
        return None
    return rights.Refusal(action, rights.RESTRICT, wording.isolate(title or ""))


def _text(plain: str) -> str:
    """Plain text for an HTML reply: <, > and & escaped (a group title may hold any)."""
    return html.escape(plain, quote=False)
