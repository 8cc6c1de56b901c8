"""Bot API methods about chats and members: reading them, restricting, banning, admitting."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from bots.emulator.api import (
    Params,
    find_chat,
    member_list_chat,
    method,
    need,
    target_user,
    visible_chat,
)
from bots.emulator.errors import EmulatorError, bad_request
from bots.emulator.state import (
    MEDIA_PERMISSIONS,
    PERMISSION_FIELDS,
    UNRESTRICTING_PERMISSIONS,
    Chat,
    Member,
    User,
    now,
)

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

NOT_ENOUGH_RIGHTS = "not enough rights to restrict/unrestrict chat member"
# until_date closer than this or further than a year means "forever", as in Telegram.
MIN_TIMED, MAX_TIMED = 30, 366 * 86400


@method("getChat")
def get_chat(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    chat, _me = visible_chat(emu, bot, need(params, "chat_id"))
    return chat.full_json()


@method("getChatMember")
def get_chat_member(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    chat_id = need(params, "chat_id")
    user = target_user(emu, params)
    # A bot may always ask about itself; about others, channels need it to be an admin.
    if user.id == bot.id:
        chat, _me = visible_chat(emu, bot, chat_id)
    else:
        chat, _me = member_list_chat(emu, bot, chat_id)
    return chat.member(user).to_json(chat.type)


@method("getChatAdministrators")
def get_chat_administrators(
    emu: TelegramEmulator, bot: User, params: Params
) -> list[dict[str, Any]]:
    chat, _me = member_list_chat(emu, bot, need(params, "chat_id"))
    admins = [m for m in chat.members.values() if m.is_admin]
    admins.sort(key=lambda m: m.status != "creator")
    return [m.to_json(chat.type) for m in admins]


@method("getChatMemberCount")
def get_chat_member_count(emu: TelegramEmulator, bot: User, params: Params) -> int:
    chat, _me = visible_chat(emu, bot, need(params, "chat_id"))
    return sum(1 for m in chat.members.values() if m.in_chat)


def _restrictable(
    emu: TelegramEmulator, bot: User, params: Params, *, supergroup_only: bool
) -> tuple[Chat, User, Member]:
    """Chat, target and its record, once the bot may restrict or ban that target."""
    chat, me = visible_chat(emu, bot, need(params, "chat_id"))
    if chat.type == "private" or (supergroup_only and chat.type != "supergroup"):
        raise bad_request("method is available only for supergroups")
    if not me.has_right("can_restrict_members"):
        raise bad_request(NOT_ENOUGH_RIGHTS)
    user = target_user(emu, params)
    target = chat.member(user)
    if user.id == bot.id:
        raise bad_request("can't restrict self")
    if target.status == "creator":
        raise bad_request("can't remove chat owner")
    if target.status == "administrator":
        raise bad_request("user is an administrator of the chat")
    return chat, user, target


def _until(params: Params) -> int:
    until = params.get("until_date") or 0
    if until and not MIN_TIMED <= until - now() <= MAX_TIMED:
        return 0
    return until


def requested_permissions(params: Params) -> dict[str, bool]:
    """ChatPermissions as Telegram applies them: omitted means False, some imply others."""
    raw = need(params, "permissions")
    if not isinstance(raw, dict):
        raise bad_request("can't parse permissions JSON object")
    perms = {name: bool(raw.get(name, False)) for name in PERMISSION_FIELDS}
    if not params.get("use_independent_chat_permissions"):
        if perms["can_send_other_messages"] or perms["can_add_web_page_previews"]:
            perms.update(dict.fromkeys(MEDIA_PERMISSIONS + ("can_send_messages",), True))
        if perms["can_send_polls"]:
            perms["can_send_messages"] = True
    return perms


@method("restrictChatMember")
def restrict_chat_member(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, user, _target = _restrictable(emu, bot, params, supergroup_only=True)
    perms = requested_permissions(params)
    until = _until(params)
    unrestricted = all(
        perms[name]
        for name in UNRESTRICTING_PERMISSIONS
        if name != "can_manage_topics" or chat.is_forum
    )

    def restrict(m: Member) -> None:
        in_chat = m.in_chat
        if unrestricted:
            # Everything allowed again: a plain member (or nobody, if they had left).
            m.status = "member" if in_chat else "left"
            m.permissions, m.until_date, m.is_member = {}, 0, False
        else:
            m.status, m.is_member, m.permissions, m.until_date = "restricted", in_chat, perms, until

    emu.change_member(chat, user, restrict, actor=bot)
    return True


@method("banChatMember")
def ban_chat_member(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, user, target = _restrictable(emu, bot, params, supergroup_only=False)
    if target.status == "kicked":
        return True
    # revoke_messages only hides history from the removed user: nothing to model here.
    emu._exit(chat, user, bot, ban_until=_until(params))
    return True


@method("unbanChatMember")
def unban_chat_member(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, user, target = _restrictable(emu, bot, params, supergroup_only=False)
    if target.status != "kicked" and params.get("only_if_banned"):
        return True
    if target.in_chat:
        # Without only_if_banned Telegram guarantees the user is out afterwards.
        emu._exit(chat, user, bot)

    def unban(m: Member) -> None:
        m.status, m.until_date, m.permissions, m.is_member = "left", 0, {}, False

    emu.change_member(chat, user, unban, actor=bot)
    return True


def _join_request(emu: TelegramEmulator, bot: User, params: Params) -> tuple[Chat, User]:
    chat, me = visible_chat(emu, bot, need(params, "chat_id"))
    if not me.has_right("can_invite_users"):
        raise bad_request("CHAT_ADMIN_REQUIRED")
    user = target_user(emu, params)
    if chat.member(user).in_chat:
        raise bad_request("USER_ALREADY_PARTICIPANT")
    if user.id not in chat.join_requests:
        raise bad_request("HIDE_REQUESTER_MISSING")
    return chat, user


@method("approveChatJoinRequest")
def approve_chat_join_request(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, user = _join_request(emu, bot, params)
    try:
        emu._enter(chat, user, bot, via_join_request=True, announcer=user)
    except EmulatorError as exc:  # banned meanwhile
        raise bad_request("USER_BANNED_IN_CHANNEL") from exc
    return True


@method("declineChatJoinRequest")
def decline_chat_join_request(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, user = _join_request(emu, bot, params)
    del chat.join_requests[user.id]
    return True


def _invite_admin(emu: TelegramEmulator, bot: User, params: Params) -> Chat:
    chat = find_chat(emu, bot, need(params, "chat_id"))
    if chat.type == "private" or not chat.member(bot).has_right("can_invite_users"):
        raise bad_request("not enough rights to manage chat invite link")
    return chat


def new_invite_link(chat: Chat, creator: User, **fields: Any) -> dict[str, Any]:
    link = {
        "invite_link": f"https://t.me/+{secrets.token_urlsafe(12)}",
        "creator": creator.to_json(),
        "creates_join_request": False,
        "is_primary": False,
        "is_revoked": False,
        **{k: v for k, v in fields.items() if v is not None},
    }
    chat.invite_links[link["invite_link"]] = link
    return link


@method("createChatInviteLink")
def create_chat_invite_link(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    chat = _invite_admin(emu, bot, params)
    name = params.get("name")
    if name is not None and len(str(name)) > 32:
        raise bad_request("invite link name is too long")
    member_limit = params.get("member_limit")
    if member_limit is not None and not 1 <= member_limit <= 99999:
        raise bad_request("member_limit must be between 1 and 99999")
    creates_join_request = bool(params.get("creates_join_request"))
    if creates_join_request and member_limit:
        raise bad_request(
            "member_limit can't be specified for links requiring administrator approval"
        )
    return new_invite_link(
        chat,
        bot,
        creates_join_request=creates_join_request,
        name=name,
        expire_date=params.get("expire_date"),
        member_limit=member_limit,
    )


@method("exportChatInviteLink")
def export_chat_invite_link(emu: TelegramEmulator, bot: User, params: Params) -> str:
    chat = _invite_admin(emu, bot, params)
    # A new primary link revokes the previous one.
    for link in chat.invite_links.values():
        if link["is_primary"]:
            link["is_primary"], link["is_revoked"] = False, True
    return new_invite_link(chat, bot, is_primary=True)["invite_link"]


@method("revokeChatInviteLink")
def revoke_chat_invite_link(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    chat = _invite_admin(emu, bot, params)
    link = chat.invite_links.get(str(need(params, "invite_link")))
    if link is None:
        raise bad_request("INVITE_HASH_EXPIRED")
    link["is_revoked"] = True
    return link


@method("leaveChat")
def leave_chat(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, me = visible_chat(emu, bot, need(params, "chat_id"))
    if not me.in_chat:
        raise bad_request("USER_NOT_PARTICIPANT")
    emu._exit(chat, bot, bot)
    return True


@method("setChatPermissions")
def set_chat_permissions(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat, me = visible_chat(emu, bot, need(params, "chat_id"))
    if not chat.is_group:
        raise bad_request("method is available only for supergroups")
    if not me.has_right("can_restrict_members"):
        raise bad_request("not enough rights to change chat permissions")
    chat.permissions = requested_permissions(params)
    return True
