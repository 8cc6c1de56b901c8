"""The webhook route refuses what is not Telegram's before it costs memory or an ERROR.

An unauthenticated 300 MiB chunked POST grew runbot by ~300 MiB (daphne read
all of it, then the app read 1 MiB of it to answer 403); a path of 5,000 digits
logged an ERROR and answered 200.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from bots import webhook
from bots.tests.runtime_support import child_env, close_db_threads, eventually, free_port
from bots.tests.test_webhook import BOT_ID, received, receivers, update  # noqa: F401
from tests.factories import fake_token, make_bot

__all__ = ["close_db_threads"]

MIB = 1 << 20
CHUNK = 64 * 1024


class Upload:
    """An ASGI `receive` for a body of `total` bytes in chunks; counts what was taken."""

    def __init__(self, total: int | None, body: bytes = b"") -> None:
        self.total = total  # None: a chunked upload that never ends
        self.body = body
        self.consumed = 0

    async def __call__(self) -> dict[str, Any]:
        if self.body:
            chunk, self.body = self.body, b""
            self.consumed += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": False}
        left = CHUNK if self.total is None else min(CHUNK, self.total - self.consumed)
        self.consumed += left
        more = self.total is None or self.consumed < self.total
        return {"type": "http.request", "body": b"x" * left, "more_body": more}


async def call(
    path: str, upload: Upload, secret: str | None = None, length: int | None = None
) -> tuple[int, bytes]:
    headers = []
    if secret is not None:
        headers.append((webhook.SECRET_HEADER, secret.encode()))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await webhook.asgi_router(None, receivers)(scope, upload, send)  # type: ignore[arg-type]
    return sent[0]["status"], sent[1]["body"]


async def test_an_endless_chunked_body_is_refused_after_the_limit(received):  # noqa: F811
    upload = Upload(total=None)
    status, _ = await call(webhook.webhook_path(BOT_ID), upload, webhook.webhook_secret(BOT_ID))
    print(f"endless body: {status} after reading {upload.consumed / MIB:.2f} MiB")
    # It should answer 413 having read just past the limit, never the rest.
    assert status == 413
    assert upload.consumed <= webhook.MAX_BODY_BYTES + CHUNK
    assert received == []


async def test_a_declared_length_over_the_limit_is_refused_unread(received):  # noqa: F811
    upload = Upload(total=300 * MIB)
    status, _ = await call(
        webhook.webhook_path(BOT_ID), upload, webhook.webhook_secret(BOT_ID), length=300 * MIB
    )
    assert (status, upload.consumed) == (413, 0)


async def test_the_secret_is_checked_before_the_body_is_read(received):  # noqa: F811
    for secret in (None, "wrong"):
        upload = Upload(total=None)
        status, _ = await call(webhook.webhook_path(BOT_ID), upload, secret)
        assert (status, upload.consumed) == (403, 0), secret


async def test_a_body_just_under_the_limit_still_arrives(received):  # noqa: F811
    import json

    body = json.dumps({**update(9), "padding": "x" * 1000}).encode()
    body += b" " * (webhook.MAX_BODY_BYTES - len(body))
    status, _ = await call(webhook.webhook_path(BOT_ID), Upload(None, body),
                           webhook.webhook_secret(BOT_ID), length=len(body))
    assert status == 200
    assert [u["update_id"] for u in received] == [9]


@pytest.mark.parametrize(
    "path_id", ["9" * 5_000, "-2", "12x", "１２３", "\u0661\u0662", "99999999999999999999"]
)
async def test_a_path_that_is_not_a_bot_id_is_404_without_an_error(
    received, caplog, path_id  # noqa: F811
):
    upload = Upload(total=None)
    status, _ = await call(webhook.WEBHOOK_PREFIX + path_id, upload, "anything")
    # It should be a plain 404, unread, and nothing logged as an error.
    assert (status, upload.consumed) == (404, 0)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_an_id_no_bot_has_is_404_and_a_bot_running_elsewhere_503(received):  # noqa: F811
    configured = 5_550_001
    await sync_to_async(make_bot)(token=fake_token(configured))
    for telegram_id, expected in ((5_550_002, 404), (configured, 503)):
        status, _ = await call(webhook.webhook_path(telegram_id), Upload(None, b'{"update_id": 1}'),
                               webhook.webhook_secret(telegram_id))
        assert status == expected, telegram_id


def rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_daphne_stops_reading_a_huge_unauthenticated_upload(tmp_path):
    total = 128 * MIB
    port = free_port()
    env = child_env(
        WEBHOOK_SECRET="webhook-secret-for-tests", WEBHOOK_URL="https://nezuko.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}", REDIS_URL="",
    )
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
        "nezuko.asgi:application", env=env, cwd=os.getcwd(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: listening(port), within=60)
        before = rss_mib(server.pid)
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            while sent < total:
                sent += CHUNK
                yield b"x" * CHUNK

        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://127.0.0.1:{port}{webhook.webhook_path(BOT_ID)}",
                                     data=body()) as response:
                    answer: Any = response.status
        except aiohttp.ClientError as exc:
            # The server may close while the client is still writing.
            answer = repr(exc)
        grew = rss_mib(server.pid) - before
        print(f"{total // MIB} MiB chunked upload: answer {answer}, client sent "
              f"{sent / MIB:.0f} MiB, server RSS +{grew} MiB")
        # It should refuse early: the client could not send most of it...
        assert sent < total // 4, answer
        # ...and the server did not hold it.
        assert grew < 32
    finally:
        server.terminate()
        await server.wait()


async def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_twisteds_content_type_answers_are_remembered_and_unchanged():
    """Under daphne each POST's Content-Type is parsed once per distinct header value."""
    from twisted.web import http

    original = getattr(http._parseContentType, "__wrapped__", http._parseContentType)
    webhook.limit_daphne_request_bodies()
    line = b"application/json; charset=utf-8"
    assert http._parseContentType(line) == original(line) == b"application/json"
    form = b"multipart/form-data; boundary=x"
    assert http._parseContentType(form) == original(form) == b"multipart/form-data"
    before = http._parseContentType.cache_info().hits
    http._parseContentType(line)
    assert http._parseContentType.cache_info().hits == before + 1
