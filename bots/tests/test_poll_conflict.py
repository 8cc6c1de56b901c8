"""One getUpdates at a time per token: the emulator answers as Telegram does, and the
runtime never runs two.

Telegram lets one long poll run per token: a newer getUpdates ends the one
waiting, which gets 409 "Conflict: terminated by other getUpdates request;
make sure that only one bot instance is running", and the newer one gets the
updates. The runtime hands a token from process to process (the lock) and
restarts bots; none of that may leave two polls running.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from telegram.error import Conflict

from bots.emulator import TelegramEmulator
from bots.emulator.scene import Scene
from bots.models import BotInstance
from bots.supervisor import Supervisor
from bots.tests.runtime_support import close_db_threads, make_bot  # noqa: F401
from bots.tests.test_emulator_updates import drain
from bots.tests.test_supervisor import options, ping

CONFLICT = "Conflict: terminated by other getUpdates request"


async def test_the_newer_poll_gets_the_updates_and_the_older_one_a_409(scene: Scene) -> None:
    async with scene.ptb_bot() as first, scene.ptb_bot() as second:
        await drain(first)
        older = asyncio.create_task(first.get_updates(timeout=30))
        await scene.emulator.wait_for_poll(scene.bot)
        newer = asyncio.create_task(second.get_updates(timeout=30))
        with pytest.raises(Conflict, match=CONFLICT):
            await asyncio.wait_for(older, 5)
        scene.emulator.send_message(scene.group, scene.bob, "after the switch")
        updates = await asyncio.wait_for(newer, 5)
    assert [u.effective_message.text for u in updates] == ["after the switch"]
    [refused] = scene.emulator.calls_named("getUpdates", error_code=409)
    assert refused.description.startswith(CONFLICT)


def conflicts(emulator: TelegramEmulator) -> list:
    return emulator.calls_named("getUpdates", error_code=409)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_handing_a_token_between_processes_never_runs_two_polls(
    emulator: TelegramEmulator, tmp_path
) -> None:
    bot = emulator.create_bot(username="handed_bot")
    row = await sync_to_async(make_bot)(bot.token, username="handed_bot")
    first, second = Supervisor(options(tmp_path)), Supervisor(options(tmp_path))
    assert await first.reconcile() is True
    assert await second.reconcile() is False
    await ping(emulator, bot)

    # The holder stops (a deploy); the other process takes the token over...
    await first.shutdown()
    await first.locks.close()
    assert await second.reconcile() is True
    await ping(emulator, bot)

    # ...and a bot disabled and enabled again in admin restarts in place.
    await BotInstance.objects.filter(pk=row.pk).aupdate(is_active=False)
    await second.reconcile()
    await BotInstance.objects.filter(pk=row.pk).aupdate(is_active=True)
    assert await second.reconcile() is True
    await ping(emulator, bot)
    await second.shutdown()
    await second.locks.close()

    assert len(emulator.calls_named("getUpdates")) >= 3
    assert conflicts(emulator) == []


# --- the poller's own getUpdates client ---------------------------------------------------


async def test_the_pollers_client_answers_and_fails_as_ptbs_own(scene: Scene) -> None:
    """PollRequest (aiohttp) replaces PTB's httpx client for getUpdates only: the same
    raw updates, and Telegram's errors as the same PTB exceptions the poller acts on."""
    from telegram.error import InvalidToken, NetworkError, RetryAfter, TimedOut

    from bots.application import build_application
    from bots.updatesource import Poller
    from verification import ALLOWED_UPDATES

    emu = scene.emulator
    application = build_application(scene.bot.token, api_url=emu.api_url, with_updater=False)
    poller = Poller(application, None, stop=asyncio.Event(),  # type: ignore[arg-type]
                    allowed_updates=ALLOWED_UPDATES, max_pending=10)
    try:
        while earlier := await poller._get_updates(0):  # the scene's own joins
            poller.offset = earlier[-1]["update_id"] + 1
        emu.send_message(scene.group, scene.bob, "one")
        emu.send_message(scene.group, scene.bob, "two")
        batch = await poller._get_updates(0)
        assert [raw["message"]["text"] for raw in batch] == ["one", "two"]
        poller.offset = batch[-1]["update_id"] + 1
        assert await poller._get_updates(0) == []  # the offset confirmed them

        emu.fail("getUpdates", error_code=429, retry_after=7)
        with pytest.raises(RetryAfter) as retry:
            await poller._get_updates(0)
        assert retry.value._retry_after.total_seconds() == 7
        emu.fail("getUpdates", error_code=401, description="Unauthorized")
        with pytest.raises(InvalidToken):
            await poller._get_updates(0)
        emu.drop("getUpdates")
        with pytest.raises(NetworkError) as failed:
            await poller._get_updates(0)
        assert scene.bot.token not in str(failed.value)  # the URL holds it: never logged
        emu.delay("getUpdates", 1.0)
        with pytest.raises(TimedOut):  # an answer slower than the read timeout
            await poller.request.post(f"{application.bot.base_url}/getUpdates",
                                      read_timeout=0.2)
    finally:
        emu.clear_faults()
        await poller.request.shutdown()


async def test_the_pollers_client_goes_through_the_proxy_the_environment_names(
        scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is read once (not in a thread per request) yet still honoured, and
    NO_PROXY still exempts a host, as in PTB's own client."""
    from bots.updatesource import PollRequest

    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readline())  # e.g. b"POST http://127.0.0.1:.../getUpdates"
        body = b'{"ok":true,"result":[]}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"{scene.emulator.api_url}/bot{scene.bot.token}/getUpdates"
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    through_proxy, direct = PollRequest(), PollRequest()
    try:
        assert await through_proxy.post(url) == []
        assert await through_proxy.post(url) == []
        assert len(seen) == 2 and seen[0].startswith(b"POST http://127.0.0.1:")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert [update["update_id"] for update in await direct.post(url)]  # the scene's joins
        assert len(seen) == 2
    finally:
        await through_proxy.shutdown()
        await direct.shutdown()
        server.close()
        await server.wait_closed()


def test_the_pollers_client_answers_invalid_json_as_ptb_does() -> None:
    """ujson parses getUpdates' answer now; bad JSON is still PTB's TelegramError."""
    from telegram.error import TelegramError

    from bots.updatesource import PollRequest

    assert PollRequest.parse_json_payload(b'{"ok":true,"result":[{"update_id":1}]}') == {
        "ok": True, "result": [{"update_id": 1}]}
    with pytest.raises(TelegramError, match="Invalid server response"):
        PollRequest.parse_json_payload(b'{"ok":true,"result":[')
