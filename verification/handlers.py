"""python-telegram-bot callbacks: translate, decide, act.

`install(application, bot_instance)` registers everything one bot needs and
returns its `Engine`. Each callback builds a value from the update
(`verification.updates`), asks a `decide_*` function, and hands the decision
to `actions.apply`. The flows (DESIGN.md, "The enforcement engine") are
numbered in the docstrings.
"""

from __future__ import annotations

import time
import weakref

import structlog
from django.utils.html import escape
from telegram import ChatMemberUpdated, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots import metrics
from bots.heartbeat import describe_error, is_network_error
from bots.models import BotInstance
from bots.spool import is_outage
from groups import rights, services
from groups.config import GroupConfig, agroups_for_channel
from verification import actions, commands, joinrequests
from verification.decisions import (
    Allow,
    ApproveJoin,
    Check,
    NotOurs,
    Restrict,
    StillMissing,
    Unmute,
    decide_join_request,
    decide_membership,
    decide_unmute,
    screen_message,
    screen_person,
)
from verification.engine import Engine
from verification.recorder import EventRecorder
from verification.recorder import recorder as default_recorder
from verification.updates import ButtonPress, IncomingMessage, JoinRequest, MemberChange, Person

logger = structlog.get_logger(__name__)

# Handler groups: enforcement runs first and stops a restricted sender's command.
ENFORCE, COMMANDS, SERVICE = -1, 0, 1


# Which engine serves which Application, for callers that only hold the
# Application (the runtime's command queue). Weak: a stopped bot is forgotten.
_engines: weakref.WeakKeyDictionary[Application, Engine] = weakref.WeakKeyDictionary()


def engine_of(application: Application) -> Engine:
    """The Engine `install` put on this Application; KeyError if none."""
    return _engines[application]


def install(application: Application, bot_instance: BotInstance, *,
            recorder: EventRecorder = default_recorder) -> Engine:
    """Register the engine's handlers on a bot's Application; returns its Engine.

    `recorder`: where its events go (runbot's composition root passes its own).
    """
    engine = Engine(bot_pk=bot_instance.pk, bot_telegram_id=bot_instance.telegram_id,
                    bot=application.bot, recorder=recorder)
    _engines[application] = engine
    h = engine.handlers = Handlers(engine)
    groups_only = filters.ChatType.GROUPS
    application.add_handlers([
        MessageHandler(filters.StatusUpdate.MIGRATE, h.on_migration),
        MessageHandler(groups_only & filters.StatusUpdate.NEW_CHAT_MEMBERS, h.on_new_members),
        MessageHandler(groups_only & ~filters.StatusUpdate.ALL, h.on_message),
    ], group=ENFORCE)
    application.add_handlers([
        ChatMemberHandler(h.on_chat_member, ChatMemberHandler.CHAT_MEMBER),
        ChatMemberHandler(h.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        ChatJoinRequestHandler(h.on_join_request),
        CallbackQueryHandler(h.on_button, pattern=r"^nz:[jr]:"),
    ], group=SERVICE)
    engine.commands = commands.install(application, engine)
    application.add_error_handler(h.on_error)
    return engine


class Handlers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- flow 1: a message in a protected group ---------------------------------

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        message = update.effective_message
        incoming = IncomingMessage.from_message(message, is_edit=update.edited_message is not None)
        config = await self.engine.config(incoming.chat_id)
        decision = screen_message(incoming, config)
        hit = None
        if isinstance(decision, Check):
            decision, hit = await self._verify(decision, config, reason="message",
                                               message=incoming)
        metrics.record_decision(outcome_label(decision), time.perf_counter() - started)
        await actions.apply(self.engine, decision, config, started=started, cache_hit=hit)
        if config is not None and config.protecting and self.engine.admins_stale(config):
            # Every few minutes, not per message: at most one call a minute per group.
            self.engine.refresh_admins_soon(config)
        if not isinstance(decision, Allow):
            # The sender may not speak: no command of theirs runs either.
            raise ApplicationHandlerStop

    async def _verify(self, check: Check, config: GroupConfig, *, reason: str,
                      message: IncomingMessage | None = None,
                      ) -> tuple[Allow | Restrict, bool]:
        """Membership of every linked channel; memory first, zero calls when known."""
        answers = self.engine.peek(check.person.id, check.channels)
        hit = answers is not None
        if answers is None:
            answers, hit = await self.engine.check(check.person.id, check.channels)
        decision = decide_membership(check, config, answers, reason=reason, message=message)
        if isinstance(decision, Restrict):
            # Never restrict on a stale admin list: refresh it first (one call per 10 min).
            fresh = await self.engine.ensure_admins(config)
            if fresh is not config and isinstance(screen_person(check.person, fresh), Allow):
                return Allow("admin"), hit
        elif not hit:
            self.engine.record("verified", config, check.person, cache_hit=False)
        self.engine.seen(config, check.person)
        return decision, hit

    # --- flow 2: joins ------------------------------------------------------------

    async def on_new_members(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        for user in message.new_chat_members or ():
            await self._joined(message.chat_id, Person.from_user(user))

    async def _joined(self, chat_id: int, person: Person) -> None:
        if not self.engine.first_join(chat_id, person.id):
            return
        started = time.perf_counter()
        config = await self.engine.config(chat_id)
        decision = screen_person(person, config)
        if isinstance(decision, Check):
            decision, hit = await self._verify(decision, config, reason="join")
            metrics.record_decision(outcome_label(decision), time.perf_counter() - started)
            if isinstance(decision, Allow):
                await self._welcome_back(config, person)
            await actions.apply(self.engine, decision, config, started=started, cache_hit=hit)

    async def _welcome_back(self, config: GroupConfig, person: Person) -> None:
        """Telegram keeps a restriction through a leave: someone Nezuko muted who
        subscribed while away comes back muted, unless Nezuko lifts it now."""
        entry = await services.aledger_entry(config.pk, person.id)
        if entry is not None and entry.restricted_by_nezuko:
            await actions.unmute(self.engine, Unmute(config.chat_id, person, "rejoined"), config)

    async def on_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._admin_standing(update.chat_member)
        change = MemberChange.from_update(update.chat_member)
        if change is None:
            return
        if change.chat_type == "channel":
            await self._channel_member(change)
            return
        config = await self.engine.config(change.chat_id)
        if config is None:
            return
        if change.restriction_changed and change.actor_id != self.engine.bot_telegram_id:
            await self._restriction_by_someone_else(config, change)
        if change.joined:
            await self._joined(change.chat_id, change.person)
        elif change.left:
            self.engine.forget_join(change.chat_id, change.person.id)
            status = "kicked" if change.new_status == "kicked" else "left"
            await services.aset_member_status(config.pk, change.person.id, status)
            warning = self.engine.board.of_user(change.chat_id, change.person.id)
            if warning is not None:
                await actions.unwarn(self.engine, config, change.person.id)

    async def _admin_standing(self, cmu: ChatMemberUpdated | None) -> None:
        """Rights follow Telegram at once: an admin demoted, stripped of a right,
        banned or gone loses their admin row (and the dashboard) now; the forced
        refresh then confirms the whole list. Ordinary joins and leaves cost nothing."""
        if cmu is None or cmu.chat.type == "channel":
            return
        old, new = cmu.old_chat_member, cmu.new_chat_member
        before = rights.AdminStanding.of(old.status, old.to_dict())
        after = rights.AdminStanding.of(new.status, new.to_dict())
        if before == after:
            return
        user = new.user
        await rights.anote_standing(self.engine.bot_pk, cmu.chat.id, user.id, after,
                                    username=user.username or "", first_name=user.first_name)
        config = await self.engine.config(cmu.chat.id)
        if config is not None:
            self.engine.refresh_admins_soon(config, force=True)

    async def _restriction_by_someone_else(self, config: GroupConfig,
                                           change: MemberChange) -> None:
        """An admin (a person or another bot) restricted or freed someone: the ledger
        must not claim the restriction is Nezuko's, so Nezuko never lifts it."""
        self.engine.restricted.discard((change.chat_id, change.person.id))
        if change.new_status == "restricted":
            await services.ahand_over_restriction(config.pk, change.person.id)
        else:
            await services.aclear_restriction(config.pk, change.person.id)
            if self.engine.board.of_user(change.chat_id, change.person.id) is not None:
                await actions.unwarn(self.engine, config, change.person.id)

    # --- flows 4 and 5: someone left or joined a linked channel ---------------------

    async def _channel_member(self, change: MemberChange) -> None:
        if change.was_member == change.is_member:
            return
        if not await agroups_for_channel(self.engine.bot_pk, change.chat_id):
            return
        # The event is the answer: no getChatMember needed.
        key = (self.engine.bot_telegram_id, change.chat_id, change.person.id)
        self.engine.memberships.remember(key, change.is_member)
        if change.left:
            await self._left_channel(change)
        else:
            await self._joined_channel(change)

    async def _left_channel(self, change: MemberChange) -> None:
        chat_ids = await services.aknown_groups_for_channel(
            self.engine.bot_pk, change.chat_id, change.person.id)
        for chat_id in chat_ids:
            config = await self.engine.config(chat_id)
            decision = screen_person(change.person, config)
            if not isinstance(decision, Check):
                continue
            answers, hit = await self.engine.check(change.person.id, decision.channels)
            decision = decide_membership(decision, config, answers, reason="left_channel")
            await actions.apply(self.engine, decision, config, cache_hit=hit)

    async def _joined_channel(self, change: MemberChange) -> None:
        restricted = await services.aknown_groups_for_channel(
            self.engine.bot_pk, change.chat_id, change.person.id, restricted_only=True)
        for chat_id in restricted:
            config = await self.engine.config(chat_id)
            if config is None or not config.protecting:
                continue
            answers, _ = await self.engine.check(change.person.id, config.channels)
            decision = decide_unmute(config, change.person, answers, restricted_by_nezuko=True,
                                     reason="channel_join")
            if isinstance(decision, Unmute):
                await actions.apply(self.engine, decision, config)
        for chat_id in await joinrequests.apending_groups_of_user(self.engine.bot_pk,
                                                                  change.person.id):
            await self._retry_join_request(chat_id, change.person)

    # --- flow 3: join requests ------------------------------------------------------

    async def on_join_request(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        cjr = update.chat_join_request
        request = JoinRequest.from_request(cjr.chat, cjr.from_user, cjr.user_chat_id)
        config = await self.engine.config(request.chat_id)
        answers: dict = {}
        if config is not None and config.protecting:
            answers, _ = await self.engine.check(request.person.id, config.channels)
        decision = decide_join_request(config, request.person, request.user_chat_id, answers)
        await actions.apply(self.engine, decision, config, started=started)

    async def _retry_join_request(self, chat_id: int, person: Person,
                                  fresh: tuple[int, ...] = (),
                                  level: str = "P1") -> StillMissing | None:
        """Approve a pending request if every channel is now satisfied."""
        config = await self.engine.config(chat_id)
        if config is None:
            return None
        answers, _ = await self.engine.check(person.id, config.channels, fresh=fresh,
                                             level=level)
        decision = decide_join_request(config, person, person.id, answers)
        if not isinstance(decision, ApproveJoin):
            missing = getattr(decision, "missing", ())
            return StillMissing(chat_id, person, missing)
        request = await joinrequests.aclaim_request(config.pk, person.id)
        if request is None:
            return None
        await actions.approve_join(self.engine, decision, config)
        if request.message_id:
            await actions.edit_private(self.engine, request.user_chat_id, request.message_id,
                                       f"You're in! Welcome to <b>{escape(config.title)}</b>.")
        return None

    async def sweep_join_requests(self) -> int:
        """Decline requests that waited too long; returns how many."""
        expired = await joinrequests.aclaim_expired(self.engine.bot_pk)
        for chat_id, _group_pk, user_id, name in expired:
            config = await self.engine.config(chat_id)
            if config is not None:
                await actions.decline_join(self.engine, config, Person(user_id, name))
        return len(expired)

    async def sweep_warnings(self) -> int:
        """Delete warnings a restart left past their delay; returns how many."""
        removed = 0
        for chat_id, message_id in await services.aoverdue_warnings(self.engine.bot_pk):
            if self.engine.board.of_message(chat_id, message_id) is not None:
                continue  # alive here, with its own timer
            await actions.delete_message(self.engine, chat_id, message_id)
            await services.aforget_warning(chat_id, message_id)
            removed += 1
        return removed

    # --- flow 6: "I've joined" --------------------------------------------------------

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        press = ButtonPress.parse(query.id, query.data, query.from_user, query.message)
        if press is None:
            await actions.answer(self.engine, query.id)
            return
        if not self.engine.may_press(press.presser.id):
            await actions.answer(self.engine, press.query_id, "One moment, checking…")
            return
        if press.kind == "request":
            await self._request_pressed(press)
        else:
            await self._joined_pressed(press)

    async def _joined_pressed(self, press: ButtonPress) -> None:
        started = time.perf_counter()
        config = await self.engine.config(press.chat_id)
        if config is None or not config.protecting:
            await actions.answer(self.engine, press.query_id, "Protection is off here.")
            return
        warning = self.engine.board.of_message(press.chat_id, press.message_id)
        entry = await services.aledger_entry(config.pk, press.presser.id)
        warned = warning.user_ids if warning else frozenset(
            {press.presser.id} if entry and entry.warning_message_id == press.message_id
            else ())
        if press.presser.id not in warned and press.target != press.presser.id:
            await actions.answer(self.engine, press.query_id,
                                 "This button is for the member named in the warning.",
                                 alert=True)
            return
        missing = warning.users.get(press.presser.id, (None, config.channels))[1] \
            if warning else config.channels
        # A person is waiting for the answer: their checks go first (P0).
        answers, _ = await self.engine.check(press.presser.id, config.channels,
                                             fresh=tuple(c.chat_id for c in missing),
                                             level="P0")
        # The ledger decides; memory only covers a row not written yet.
        restricted = entry.restricted_by_nezuko if entry is not None else (
            config.chat_id, press.presser.id) in self.engine.restricted
        # In delete-only groups nobody is restricted; the button just clears the warning.
        ours = restricted or (config.action == "delete" and warning is not None)
        decision = decide_unmute(config, press.presser, answers, restricted_by_nezuko=ours,
                                 reason="button")
        await self._answer_unmute(press, decision, config, started, restore=restricted)

    async def _answer_unmute(self, press: ButtonPress,
                             decision: Unmute | StillMissing | NotOurs, config: GroupConfig,
                             started: float, *, restore: bool) -> None:
        if isinstance(decision, Unmute):
            done = await actions.unmute(self.engine, decision, config, started=started,
                                        restore=restore)
            text = "Thanks! You can write again." if done else "Something went wrong; try again."
            await actions.answer(self.engine, press.query_id, text)
        elif isinstance(decision, StillMissing):
            await actions.answer(self.engine, press.query_id, _missing_text(decision), alert=True)
        else:
            await actions.answer(self.engine, press.query_id,
                                 "An admin of this group restricted you; only they can lift it.",
                                 alert=True)

    async def _request_pressed(self, press: ButtonPress) -> None:
        config = await self.engine.config(press.target)
        request = await joinrequests.apending_request(config.pk, press.presser.id) \
            if config else None
        if request is None:
            await actions.answer(self.engine, press.query_id, "This request is no longer open.")
            return
        still = await self._retry_join_request(
            press.target, press.presser, fresh=tuple(c.chat_id for c in config.channels),
            level="P0")
        if still is None:
            await actions.answer(self.engine, press.query_id, "You're in!")
        else:
            await actions.answer(self.engine, press.query_id, _missing_text(still), alert=True)

    # --- flow 7: the bot's own membership -----------------------------------------------

    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        cmu = update.my_chat_member
        new = cmu.new_chat_member
        rights = {k: v for k, v in new.to_dict().items() if k.startswith("can_") and v}
        await services.arecord_bot_rights(self.engine.bot_pk, cmu.chat.id, cmu.chat.type,
                                          new.status, rights)
        logger.info("bot.rights_changed", chat_id=cmu.chat.id, status=new.status,
                    rights=sorted(rights))

    # --- supergroup migration -----------------------------------------------------------

    async def on_migration(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message.migrate_to_chat_id:
            old, new = message.chat_id, message.migrate_to_chat_id
        else:
            old, new = message.migrate_from_chat_id, message.chat_id
        if await services.amigrate_chat(self.engine.bot_pk, old, new):
            self.engine.board.move_chat(old, new)
            logger.info("group.migrated", old_chat_id=old, new_chat_id=new)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Logged first; never echoed into a chat. Telegram or the database being away
        # is expected (the runtime retries such updates): one line, no traceback.
        update_id = update.update_id if isinstance(update, Update) else None
        error = context.error
        if error is not None and (is_network_error(error) or is_outage(error)):
            logger.warning("update.failed", update_id=update_id, error=describe_error(error))
            return
        logger.error("update.failed", update_id=update_id, exc_info=error)


def outcome_label(decision: object) -> str:
    """A bounded label for metrics: allow reasons, or the decision's kind."""
    if isinstance(decision, Allow):
        return f"allow_{decision.reason}"
    return type(decision).__name__.lower()


def _missing_text(decision: StillMissing) -> str:
    if decision.unknown:
        return "Telegram did not answer just now. Please try again in a minute."
    names = ", ".join(c.label for c in decision.missing)
    return f"You still need to join: {names}"
