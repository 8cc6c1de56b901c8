"""`/login` in a private chat with the bot: answers with a one-time dashboard link.

`install(application)` adds the handler to a bot's Application; runbot calls it
for every bot it runs (the engine does not import the dashboard, so the
runtime wires this in beside `verification.handlers.install`).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from telegram import LinkPreviewOptions, Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from dashboard import auth
from groups import languages

# Before the engine's command group, so nothing else answers /login.
LOGIN_GROUP = -2


async def login_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or user.is_bot:
        return
    # A private chat: the answer is in the person's own Telegram language.
    language = languages.for_person(user.language_code)
    if not await auth.login_bots().filter(telegram_id=context.bot.id).aexists():
        # An owner who added this bot holds its token and could read (forward, copy)
        # the link it sends: only bots the operator runs hand out logins.
        with languages.speaking(language):
            text = _("This bot cannot log you in to the dashboard. "
                     "Use the bot your Nezuko operator named for it.")
        await message.reply_text(text)
        return
    identity = auth.TelegramIdentity(
        telegram_id=user.id, first_name=user.first_name or "", last_name=user.last_name or "",
        username=user.username or "",
    )
    token = await sync_to_async(auth.create_login_link)(identity)
    with languages.speaking(language):
        text = render_to_string("dashboard/telegram/login.html", {
            "name": user.first_name, "url": auth.login_url(token),
        })
    # No preview: a preview fetch would show the link to Telegram's servers.
    await message.reply_text(text, link_preview_options=LinkPreviewOptions(is_disabled=True))


def install(application: Application, *args: object) -> None:
    application.add_handler(
        CommandHandler("login", login_command, filters=filters.ChatType.PRIVATE), group=LOGIN_GROUP
    )
