"""A bot's registration: the one way a token gets in, a new token, on and off.

runbot's `BOT_TOKEN`, the dashboard's "Add a bot", the API's `POST /bots` and
Django admin's bot form all call `register_bot`: it checks the token's shape,
asks Telegram who the bot is (getMe against `TELEGRAM_API_URL`) and stores the
token encrypted on a `BotInstance`, audited as `bot.registered` (a new bot) or
`bot.retokened` (a known bot's token replaced). Every refusal is a
`TokenRejected` whose message is safe to show and to log: it never contains
the token. `set_bot_active` switches a bot on or off (`bot.enabled`,
`bot.disabled`) for the dashboard, the API and admin alike.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError

from bots import audit, crypto
from bots.application import api_base_url
from bots.audit import Actor, AuditAction
from bots.models import BotInstance

ALREADY_REGISTERED = "This bot is already registered."


class TokenRejected(Exception):
    """A token that cannot be registered; the message never contains the token.

    `transient`: Telegram could not be asked (network, 5xx, flood control); the
    token may well be fine, and trying again later is the answer.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def register_bot(
    token: str,
    *,
    api_url: str | None = None,
    bot: BotInstance | None = None,
    again: bool = False,
    owner: Any = None,
    actor: Actor | None = None,
    commit: bool = True,
) -> BotInstance:
    """Validate `token` with getMe and store it on a BotInstance.

    bot: the row that gets the token (admin's form); by default a new row.
    again: a row that already has this bot's Telegram id is updated, not refused
        (runbot: a restart with the same BOT_TOKEN, or a token re-issued by @BotFather).
    owner: set on a new row.
    actor: who brings the token; their change is audited in the same transaction
        (None: runbot's own BOT_TOKEN at start, not audited).
    commit: False only validates: the caller saves through `store` (admin's
        ModelForm saves its instance after the other fields are clean).
    """
    if actor is not None and actor.read_only:
        raise PermissionDenied("Your role is read-only.")
    token = (token or "").strip()
    if not crypto.is_token_format(token):
        raise TokenRejected("This does not look like a Telegram bot token (123456:ABC-…).")
    telegram_id = crypto.bot_id_from_token(token)
    others = BotInstance.objects.filter(telegram_id=telegram_id)
    if bot is not None and bot.pk is not None:
        others = others.exclude(pk=bot.pk)
    existing = others.first()
    # Telegram first: only someone holding a valid token learns whether its bot is
    # registered here (asked first, any id was an oracle for the bots Nezuko serves).
    me = _get_me(token, api_url)
    if existing is not None and not again:
        raise TokenRejected(ALREADY_REGISTERED)
    if not me.get("is_bot", True):
        raise TokenRejected("This token does not belong to a bot.")
    instance = bot or existing or BotInstance(owner=_user(owner))
    _require_owner(actor, instance)
    instance.set_token(token)
    instance.username = me.get("username") or instance.username
    instance.display_name = (me.get("first_name") or instance.display_name)[:128]
    if not commit:
        return instance
    return store(instance, actor=actor)


aregister_bot = sync_to_async(register_bot)


def store(instance: BotInstance, *, actor: Actor | None) -> BotInstance:
    """Save a bot `register_bot` accepted, auditing the registration or new token."""
    is_new = instance.pk is None
    old = None if is_new else (BotInstance.objects.filter(pk=instance.pk)
                               .values_list("token_fingerprint", flat=True).first())
    try:
        with transaction.atomic():
            instance.save()
            if actor is not None and (is_new or old != instance.token_fingerprint):
                audit.record(AuditAction.BOT_REGISTERED if is_new else AuditAction.BOT_RETOKENED,
                             instance, by=actor,
                             after={"telegram_id": instance.telegram_id,
                                    "username": instance.username})
    except IntegrityError:
        # Another request registered the same bot between the check and the save.
        raise TokenRejected(ALREADY_REGISTERED) from None
    return instance


def set_bot_active(bot_pk: int, active: bool, *, actor: Actor) -> BotInstance:
    """Switch a bot on or off; runbot starts or stops it at its next reconcile."""
    with transaction.atomic():
        bot = BotInstance.objects.select_for_update().get(pk=bot_pk)
        _require_owner(actor, bot)
        if bot.is_active == active:
            return bot
        bot.is_active = active
        bot.save(update_fields=["is_active", "updated_at"])
        audit.record(AuditAction.BOT_ENABLED if active else AuditAction.BOT_DISABLED, bot,
                     by=actor, before={"is_active": not active}, after={"is_active": active})
    return bot


def _require_owner(actor: Actor | None, bot: BotInstance) -> None:
    """Only the person who added a bot, or staff, changes it (one bot serves many owners)."""
    if actor is None or actor.staff:
        return
    if actor.read_only:
        raise PermissionDenied("Your role is read-only.")
    if bot.pk is not None and (actor.user is None or bot.owner_id != actor.user.pk):
        raise PermissionDenied("Only the bot's owner or staff can change this bot.")


def _get_me(token: str, api_url: str | None) -> dict[str, Any]:
    async def get_me() -> dict[str, Any]:
        # Bot.initialize() is the getMe call; `bot.bot` is its answer.
        async with Bot(token, base_url=api_base_url(api_url)) as bot:
            return bot.bot.to_dict()

    try:
        return async_to_sync(get_me)()
    except InvalidToken:
        raise TokenRejected("Telegram rejected this token. Check it with @BotFather.") from None
    except BadRequest as exc:  # a NetworkError in PTB's tree, but our request was wrong
        raise TokenRejected(f"Telegram refused the token: {_without(token, exc)}") from None
    except (NetworkError, RetryAfter) as exc:
        raise TokenRejected(
            f"Could not reach the Telegram Bot API; try again. ({_without(token, exc)})",
            transient=True,
        ) from None
    except TelegramError as exc:
        raise TokenRejected(f"Telegram refused the token: {_without(token, exc)}") from None


def _without(token: str, exc: TelegramError) -> str:
    """The error's text with the token taken out (a URL in an HTTP error carries it)."""
    text = getattr(exc, "message", "") or str(exc)
    for secret in (token, token.split(":", 1)[-1]):
        text = text.replace(secret, "…")
    return text


def _user(owner: Any) -> Any:
    return owner if owner is not None and getattr(owner, "is_authenticated", False) else None
