"""The live feed on the production shape: runbot's daphne, channels-redis, real Redis.

channels-redis waits on Redis with BZPOPMIN for 5 s at a time; redis-py 6+
also gives up reading after 5 s by default. When those two race, the idle
consumer's receive raises TimeoutError and daphne closes the socket with 1011,
logging an ERROR, every ~5 s. This test keeps a socket idle longer than
several of those rounds, then expects an event on the same socket.

Runs on the PostgreSQL + Redis pass (skipped without REDIS_URL): the runbot
child must see the test database, and the layer must be the real one.
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from analytics.tests.factory import event
from bots.tests.runtime_support import Child, child_env, close_db_threads, database_url, free_port
from dashboard import live

__all__ = ["close_db_threads"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)"),
]

# Six of channels-redis's 5 s BZPOPMIN rounds.
IDLE_SECONDS = 30.0
# A console log line at error level or worse, from any logger (daphne's included).
ERROR_LINE = re.compile(r"\[(error|critical)\s*\]", re.IGNORECASE)


def staff_session_cookie() -> str:
    user = User.objects.create(username="watcher", is_staff=True)
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def test_an_idle_live_feed_stays_open_on_redis_and_then_gets_an_event():
    cookie = await sync_to_async(staff_session_cookie)()
    # No bot in the database: this runbot only serves the web application.
    env = child_env(DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL, BOT_TOKEN="")
    port = free_port()
    runbot = await Child.start("runbot", "--host", "127.0.0.1", "--port", str(port), env=env)
    try:
        await runbot.wait_for_output("runbot.web_listening", within=60)
        async with aiohttp.ClientSession(cookies={settings.SESSION_COOKIE_NAME: cookie}) as http:
            async with http.ws_connect(
                f"ws://127.0.0.1:{port}/ws/feed/", origin=f"http://127.0.0.1:{port}"
            ) as ws:
                opened = time.monotonic()
                # Idle: nothing should arrive, and above all no close frame.
                # (Not receive(timeout=): daphne pings every 20 s and aiohttp
                # restarts that timeout after answering each ping.)
                try:
                    early = await asyncio.wait_for(ws.receive(), IDLE_SECONDS)
                except TimeoutError:
                    early = None
                idle_for = time.monotonic() - opened
                # It should then deliver an event published on the same Redis.
                frame = ""
                if early is None:
                    await live.send(event(None, "restricted", user_name="After the quiet"))
                    frame = await asyncio.wait_for(ws.receive_str(), timeout=10)
        assert await runbot.stop() == 0
    finally:
        if runbot.process.returncode is None:
            await runbot.stop(9)
    errors = [line for line in runbot.output if ERROR_LINE.search(line)]
    print(f"live feed idle for {idle_for:.1f} s, first message: {early}; "
          f"error lines logged: {len(errors)}")
    # The socket should have stayed open, then carried the event...
    assert early is None, f"after {idle_for:.1f} s idle: {early}"
    assert "After the quiet" in frame
    # ...and nothing should have been logged as an error (each one is a Sentry event).
    assert errors == [], "".join(errors)
