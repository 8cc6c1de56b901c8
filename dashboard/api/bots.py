"""/bots: list, add by token (validated with getMe, never returned), enable/disable."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from bots import registration
from bots.models import AuditLog, BotInstance
from dashboard import access
from dashboard.api.schemas import BotIn, BotOut
from dashboard.services import ServiceError, actor_for

router = Router(tags=["bots"])
SOURCE = AuditLog.Source.API


def _out(bot: BotInstance, owned: bool = True) -> dict:
    status = _status_of(bot)
    return {
        "id": bot.pk, "telegram_id": bot.telegram_id, "username": bot.username,
        "display_name": bot.display_name, "is_active": bot.is_active,
        "status": None if status is None else {
            "state": status.state, "heartbeat_at": status.heartbeat_at,
            "updates_handled": status.updates_handled,
            "last_error": status.last_error if owned else "",
            "fresh": status.is_fresh(),
        },
    }


def _status_of(bot: BotInstance):
    try:
        return bot.status
    except BotInstance.status.RelatedObjectDoesNotExist:
        return None


@router.get("/bots", response=list[BotOut])
def list_bots(request: HttpRequest):
    bots = access.visible_bots(request.auth).select_related("status").order_by("pk")
    owned = access.owned_bot_ids(request.auth)
    return [_out(bot, owned is None or bot.pk in owned) for bot in bots]


@router.get("/bots/{bot_id}", response=BotOut)
def get_bot(request: HttpRequest, bot_id: int):
    owned = access.owned_bot_ids(request.auth)
    return _out(access.get_bot_for(request.auth, bot_id), owned is None or bot_id in owned)


@router.post("/bots", response={201: BotOut})
def add_bot(request: HttpRequest, payload: BotIn):
    access.require_change(request.auth)
    try:
        bot = registration.register_bot(payload.token, owner=request.auth,
                                        actor=actor_for(request.auth, SOURCE))
    except registration.TokenRejected as exc:
        raise ServiceError(str(exc)) from None
    return Status(201, _out(bot))


@router.post("/bots/{bot_id}/disable", response=BotOut)
def disable_bot(request: HttpRequest, bot_id: int):
    bot = access.get_bot_for_change(request.auth, bot_id)
    return _out(registration.set_bot_active(bot.pk, False, actor=actor_for(request.auth, SOURCE)))


@router.post("/bots/{bot_id}/enable", response=BotOut)
def enable_bot(request: HttpRequest, bot_id: int):
    bot = access.get_bot_for_change(request.auth, bot_id)
    return _out(registration.set_bot_active(bot.pk, True, actor=actor_for(request.auth, SOURCE)))
