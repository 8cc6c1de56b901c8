"""Where the engine meets people, for the directory (issue 16; docs/people.md); /forget.

`install(application, engine)` adds two handlers to a bot:

* an observer in its own handler group, before every other, that notes each
  person an update brings (`note`) into the engine's `PeopleWriter`: a
  private message or command but /forget (a `/start <payload>` with its referral), a
  button press, a join request, a message or member change in a group the
  fast path did not settle (the engine decides on them), and the bot's own
  standing in a private chat (kicked: the person blocked the bot; member:
  unblocked). It costs a dict store per update and makes no query; updates
  the raw-JSON fast path decides never reach it.
* `/forget` in a private chat: the person's directory rows are deleted and
  their names blanked wherever Nezuko stored them (the member ledger, admin
  lists, events, pending join requests); the ids enforcement needs stay.
"""

from __future__ import annotations

import structlog
from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _
from telegram import Update, User
from telegram.ext import Application, CommandHandler, ContextTypes, TypeHandler, filters

from bots import referrals
from bots.people import PeopleWriter
from bots.spool import is_outage
from bots.throttle import PersonThrottle
from groups import languages
from groups.services import people as group_people
from verification import actions
from verification.engine import Engine
from verification.models import PendingJoinRequest, VerificationEvent

logger = structlog.get_logger(__name__)

# Before the dashboard's /login (-2) and enforcement (-1): noting stops nothing,
# and a restricted sender's message is still a sighting.
PEOPLE_GROUP = -3
GROUP_CHATS = frozenset({"group", "supergroup"})
# /forget scans the events by user id: one a minute per person is plenty.
FORGET_INTERVAL = 60.0


def install(application: Application, engine: Engine) -> None:
    throttle = PersonThrottle("forget")

    async def observe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        note(engine.people, engine.bot_pk, update)

    async def forget_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is not None and throttle.allow(user.id, user.id, FORGET_INTERVAL):
            await forget(engine, update)

    application.add_handler(TypeHandler(Update, observe), group=PEOPLE_GROUP)
    application.add_handler(
        CommandHandler("forget", forget_command, filters=filters.ChatType.PRIVATE)
    )


def note(people: PeopleWriter, bot_pk: int, update: Update) -> None:
    """Note the people in one update (see the module docstring). No await, no query."""
    message = update.message or update.edited_message
    if message is not None:
        _note_message(people, bot_pk, message)
    elif update.callback_query is not None:
        _seen(people, bot_pk, update.callback_query.from_user)
    elif update.chat_join_request is not None:
        _seen(people, bot_pk, update.chat_join_request.from_user)
    elif update.my_chat_member is not None:
        cmu = update.my_chat_member
        if cmu.chat.type == "private":
            status = cmu.new_chat_member.status
            blocked = True if status == "kicked" else False if status == "member" else None
            _seen(people, bot_pk, cmu.from_user, blocked=blocked)
    elif update.chat_member is not None:
        cmu = update.chat_member
        if cmu.chat.type in GROUP_CHATS:
            _seen(people, bot_pk, cmu.new_chat_member.user)


def _note_message(people: PeopleWriter, bot_pk: int, message) -> None:
    chat_type = message.chat.type
    if chat_type == "private":
        if _is_forget(message.text):
            # Asking to be forgotten is no sighting: a throttled second /forget
            # would otherwise write the person back right after the first.
            return
        payload = referrals.start_payload(message.text)
        referral = referrals.read(payload) if payload else None
        if payload and referral is None:
            # A stale or hand-made link: /start still answers; only the referral is ignored.
            logger.debug("people.referral_ignored", user_id=message.chat.id)
        _seen(people, bot_pk, message.from_user, started=payload is not None,
              referral=referral)
    elif chat_type in GROUP_CHATS:
        _seen(people, bot_pk, message.from_user)
        for member in message.new_chat_members or ():
            _seen(people, bot_pk, member)


def _is_forget(text: str | None) -> bool:
    command = (text or "").partition(" ")[0].lower()  # as CommandHandler matches it
    return command == "/forget" or command.startswith("/forget@")


def _seen(people: PeopleWriter, bot_pk: int, user: User | None, **kwargs) -> None:
    if user is not None and not user.is_bot:
        people.seen(bot_pk, user, **kwargs)


# --- /forget ----------------------------------------------------------------------------


async def forget(engine: Engine, update: Update) -> None:
    """Forget the person who asked, and tell them in their language."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or user.is_bot:
        return
    try:
        # Events and members seen carry names: what is buffered is written first,
        # so the blanking below covers it.
        await engine.recorder.aflush()
        await engine.people.aforget(user.id)
        await aforget_elsewhere(user.id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        logger.warning("people.forget_failed", user_id=user.id)
        forgotten = False
    else:
        logger.info("people.forgotten", user_id=user.id)
        forgotten = True
    with languages.speaking(languages.for_person(user.language_code)):
        text = _forgotten_text() if forgotten else _(
            "I could not do that just now. Please send /forget again in a few minutes."
        )
    await actions.reply(engine, message.chat_id, text)


def _forgotten_text() -> str:
    return _(
        "Done: I have deleted what I knew about you (your name, username, language and "
        "who invited you) and removed your name from the groups' records. I keep only your "
        "Telegram id where a group's protection needs it, for example to lift a restriction "
        "I placed. If you write to me again, I will see you again."
    )


def forget_elsewhere(user_id: int) -> int:
    """Names blanked outside the directory; returns the rows changed."""
    changed = group_people.forget_names(user_id)
    changed += VerificationEvent.objects.filter(user_id=user_id).exclude(user_name="").update(
        user_name=""
    )
    changed += PendingJoinRequest.objects.filter(user_id=user_id).exclude(user_name="").update(
        user_name=""
    )
    return changed


aforget_elsewhere = sync_to_async(forget_elsewhere)
