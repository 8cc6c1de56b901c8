"""Telegram's error answers, raised by python-telegram-bot as its matching exceptions."""

from __future__ import annotations

import httpx
import pytest
from telegram import Bot, ChatPermissions
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, NetworkError

from bots.emulator import TelegramEmulator
from bots.testing import Scene

MUTE = ChatPermissions.no_permissions()


async def test_an_unknown_token_is_unauthorized(emulator: TelegramEmulator) -> None:
    bot = Bot("123456:unknown-token", base_url=f"{emulator.api_url}/bot")
    with pytest.raises(InvalidToken):
        await bot.initialize()
    # A malformed token is 404 Not Found; a well-formed unknown one 401 Unauthorized.
    async with httpx.AsyncClient() as client:
        malformed = await client.post(f"{emulator.api_url}/botnonsense/getMe")
        unknown = await client.post(f"{emulator.api_url}/bot123:abc/getMe")
    assert malformed.status_code == 404 and malformed.json()["description"] == "Not Found"
    assert unknown.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_an_unknown_method_is_not_found(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")


async def test_method_names_are_case_insensitive(scene: Scene) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{scene.emulator.api_url}/bot{scene.bot.token}/getme")
    assert answer.json()["result"]["id"] == scene.bot.id


async def test_restricting_without_the_right_fails(scene: Scene) -> None:
    emu = scene.emulator
    emu.promote(scene.group, scene.bot, by=scene.alice, can_delete_messages=True)
    async with scene.ptb_bot() as bot:
        with pytest.raises(
            BadRequest, match="(?i)not enough rights to restrict/unrestrict chat member"
        ):
            await bot.restrict_chat_member(scene.group.id, scene.bob.id, MUTE)
        emu.demote(scene.group, scene.bot, by=scene.alice)
        with pytest.raises(BadRequest, match="(?i)not enough rights to restrict/unrestrict"):
            await bot.ban_chat_member(scene.group.id, scene.bob.id)
    # Nothing changed for bob.
    assert emu.member(scene.group, scene.bob)["status"] == "member"
    assert [c.error_code for c in emu.calls_named("restrictChatMember")] == [400]


async def test_owner_and_admins_cannot_be_restricted(scene: Scene) -> None:
    scene.emulator.promote(scene.group, scene.bob, by=scene.alice, can_delete_messages=True)
    async with scene.ptb_bot() as bot:
        with pytest.raises(BadRequest, match="(?i)can't remove chat owner"):
            await bot.restrict_chat_member(scene.group.id, scene.alice.id, MUTE)
        with pytest.raises(BadRequest, match="(?i)user is an administrator of the chat"):
            await bot.restrict_chat_member(scene.group.id, scene.bob.id, MUTE)


async def test_unknown_chats_and_users(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.get_chat_member(-1009999999999, scene.bob.id)
        with pytest.raises(BadRequest, match="(?i)user not found"):
            await bot.get_chat_member(scene.group.id, 42)
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message("@nobody_here", "hi")


async def test_channel_members_are_only_visible_to_admins(emulator: TelegramEmulator) -> None:
    alice, carol = emulator.create_user("Alice"), emulator.create_user("Carol")
    public = emulator.create_channel("Public", creator=alice, username="publicnews")
    private = emulator.create_channel("Private", creator=alice)
    bot_user = emulator.create_bot(username="outsider_bot")
    async with Bot(bot_user.token, base_url=f"{emulator.api_url}/bot") as bot:
        with pytest.raises(BadRequest, match="(?i)member list is inaccessible"):
            await bot.get_chat_member(public.id, carol.id)
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.get_chat_member(private.id, carol.id)
        emulator.promote(public, bot_user, by=alice)
        emulator.ban(public, bot_user, by=alice)
        with pytest.raises(Forbidden, match="(?i)bot was kicked from the channel chat"):
            await bot.get_chat_member(public.id, carol.id)


async def test_sending_where_the_bot_cannot(scene: Scene) -> None:
    emu = scene.emulator
    lonely = emu.create_supergroup("Elsewhere", creator=scene.alice)
    async with scene.ptb_bot() as bot:
        with pytest.raises(Forbidden, match="(?i)bot can't initiate conversation with a user"):
            await bot.send_message(scene.carol.id, "hi")
        with pytest.raises(Forbidden, match="(?i)bot is not a member of the supergroup chat"):
            await bot.send_message(lonely.id, "hi")
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(scene.group.id, " ")
        # Once carol starts the bot it may answer, until she blocks it.
        emu.send_message(scene.bot, scene.carol, "/start")
        reply = await bot.send_message(scene.carol.id, "welcome")
        emu.block(scene.carol, scene.bot)
        with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
            await bot.send_message(scene.carol.id, "still there?")
    assert reply.chat.type == "private"


async def test_bad_html_is_a_parse_error(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):
            await bot.send_message(scene.group.id, "<b>open", parse_mode="HTML")


async def test_a_bad_parameter_is_a_bad_request_not_a_crash(scene: Scene) -> None:
    url = f"{scene.emulator.api_url}/bot{scene.bot.token}"
    async with httpx.AsyncClient() as client:
        bad_int = await client.post(f"{url}/getChatMember", data={"chat_id": "x", "user_id": "1"})
        bad_json = await client.post(
            f"{url}/restrictChatMember",
            data={"chat_id": scene.group.id, "user_id": scene.bob.id, "permissions": "{"},
        )
        bad_body = await client.post(
            f"{url}/getMe", content=b"[1", headers={"Content-Type": "application/json"}
        )
    assert (bad_int.status_code, bad_int.json()["description"]) == (
        400,
        "Bad Request: chat not found",
    )
    assert bad_json.json()["description"] == "Bad Request: can't parse permissions JSON object"
    assert bad_body.status_code == 400


async def test_json_bodies_work_like_forms(scene: Scene) -> None:
    url = f"{scene.emulator.api_url}/bot{scene.bot.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, json={"chat_id": scene.group.id, "text": "123"})
    # A numeric text stays a string.
    assert answer.json()["result"]["text"] == "123"


async def test_a_dropped_connection_is_a_network_error(scene: Scene) -> None:
    scene.emulator.drop("getChat")
    async with scene.ptb_bot() as bot:
        with pytest.raises(NetworkError):
            await bot.get_chat(scene.group.id)
        # Only the next call was dropped.
        assert (await bot.get_chat(scene.group.id)).id == scene.group.id


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"chat_id": "-1001000000001", "user_id": "1000000002", "message_id": "1"},
        {
            "chat_id": "-1001000000001",
            "user_id": "1000000002",
            "permissions": "[1]",
            "reply_markup": '"x"',
            "message_ids": '"x"',
            "allowed_updates": '{"a": 1}',
            "commands": "[1]",
            "scope": "[]",
            "text": "",
            "url": "ftp://x",
            "limit": "-5",
        },
    ],
    ids=["empty", "ids-only", "wrong-types"],
)
async def test_no_method_answers_500_to_odd_input(scene: Scene, body: dict[str, str]) -> None:
    from bots.emulator.api import METHODS

    base = f"{scene.emulator.api_url}/bot{scene.bot.token}"
    async with httpx.AsyncClient() as client:
        for name, _handler, _is_async in METHODS.values():
            if name == "getUpdates":
                continue
            answer = await client.post(f"{base}/{name}", data=body)
            # Telegram's answer shape, and a client error rather than a crash.
            assert answer.status_code < 500, (name, answer.text)
            assert "ok" in answer.json(), name
