"""Registration: the engine's flows as python-telegram-bot handlers on one bot.

`install(application, bot_instance)` builds the bot's `Engine`, registers a
callback per flow (`verification.flows`) and the Telegram commands, and
returns the engine. Each callback is a closure over that engine, so nothing
module-level maps Applications to engines; callers that only hold the
Application (the runtime's command queue) use `engine_of(application)`, which
reads the one reference `install` put in the Application's `bot_data`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.heartbeat import describe_error, is_network_error
from bots.models import BotInstance
from bots.people import PeopleWriter
from bots.spool import is_outage
from verification import broadcasts, commands, people, superadmin
from verification.engine import Engine
from verification.flows import bot_rights, button, captcha, join_requests, joins, messages
from verification.recorder import EventRecorder
from verification.recorder import recorder as default_recorder

logger = structlog.get_logger(__name__)

# Handler groups, run in this order: enforcement first, so a restricted sender's
# command is stopped (ApplicationHandlerStop) before it runs; commands next;
# membership, join requests and buttons last.
ENFORCE, COMMANDS, SERVICE = -1, 0, 1
# The key of the engine in `Application.bot_data`.
ENGINE_KEY = "nezuko.engine"

Flow = Callable[[Engine, Update], Awaitable[None]]
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def engine_of(application: Application) -> Engine:
    """The Engine `install` put on this Application; KeyError if none."""
    return application.bot_data[ENGINE_KEY]


def install(application: Application, bot_instance: BotInstance, *,
            recorder: EventRecorder = default_recorder,
            people_writer: PeopleWriter | None = None) -> Engine:
    """Register the engine's handlers on a bot's Application; returns its Engine.

    `recorder`: where its events go; `people_writer`: the people directory's
    buffer (runbot's composition root passes its own of each).
    """
    engine = Engine(bot_pk=bot_instance.pk, bot_telegram_id=bot_instance.telegram_id,
                    bot=application.bot, recorder=recorder,
                    people=people_writer if people_writer is not None else PeopleWriter())
    application.bot_data[ENGINE_KEY] = engine

    def on(flow: Flow) -> Callback:
        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await flow(engine, update)

        callback.__name__ = flow.__name__
        return callback

    groups_only = filters.ChatType.GROUPS
    application.add_handlers([
        MessageHandler(filters.StatusUpdate.MIGRATE, on(bot_rights.on_migration)),
        MessageHandler(groups_only & filters.StatusUpdate.NEW_CHAT_MEMBERS,
                       on(joins.on_new_members)),
        MessageHandler(groups_only & ~filters.StatusUpdate.ALL, on(messages.on_message)),
    ], group=ENFORCE)
    application.add_handlers([
        ChatMemberHandler(on(joins.on_chat_member), ChatMemberHandler.CHAT_MEMBER),
        ChatMemberHandler(on(bot_rights.on_my_chat_member), ChatMemberHandler.MY_CHAT_MEMBER),
        ChatJoinRequestHandler(on(join_requests.on_join_request)),
        CallbackQueryHandler(on(button.on_button), pattern=r"^nz:[jr]:"),
        CallbackQueryHandler(on(captcha.on_answer), pattern=r"^nz:h:"),
        CallbackQueryHandler(on(broadcasts.on_opt_out), pattern=rf"^{broadcasts.OPT_OUT}$"),
    ], group=SERVICE)
    commands.install(application, engine)
    superadmin.install(application, engine)
    people.install(application, engine)
    application.add_error_handler(on_error)
    return engine


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Logged first; never echoed into a chat. Telegram or the database being away
    # is expected (the runtime retries such updates): one line, no traceback.
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    if error is not None and (is_network_error(error) or is_outage(error)):
        logger.warning("update.failed", update_id=update_id, error=describe_error(error))
        return
    logger.error("update.failed", update_id=update_id, exc_info=error)
