"""A known subscriber's message costs no database query and no Telegram call.

The handler runs under `async_to_sync`, so anything it sends through
`sync_to_async` runs in this test's thread, on the connection that
`django_assert_num_queries` watches.
"""

import itertools

import pytest
from asgiref.sync import async_to_sync
from telegram import Bot, Update

from groups.config import configs
from tests.factories import fake_token, make_bot, make_channel, make_group
from verification.engine import Engine
from verification.flows.messages import on_message
from verification.membership import memberships

pytestmark = pytest.mark.django_db

BOB = 4242
_ids = itertools.count(1)


def message_update(chat_id: int, user_id: int) -> dict:
    n = next(_ids)
    return {
        "update_id": n,
        "message": {
            "message_id": n, "date": 0, "text": "hi",
            "chat": {"id": chat_id, "type": "supergroup", "title": "Cats"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Bob"},
        },
    }


@pytest.fixture
def hot():
    configs.clear()
    memberships.clear_local()
    bot_row = make_bot()
    channel = make_channel(bot_row)
    group = make_group(bot_row, channels=[channel])
    # No HTTP is possible at this address: any Bot API call would fail the test.
    bot = Bot(fake_token(bot_row.telegram_id), base_url="http://127.0.0.1:9/bot")
    engine = Engine(bot_pk=bot_row.pk, bot_telegram_id=bot_row.telegram_id, bot=bot)
    memberships.remember((bot_row.telegram_id, channel.chat_id, BOB), True)
    yield engine, group, bot
    configs.clear()
    memberships.clear_local()


def handle(engine: Engine, bot: Bot, data: dict) -> None:
    async def run() -> None:
        await on_message(engine, Update.de_json(data, bot))
        await engine.idle()

    async_to_sync(run)()


def test_a_known_subscribers_message_costs_no_query(hot, django_assert_num_queries):
    engine, group, bot = hot
    # The first message loads the group's configuration and notes bob as a member.
    handle(engine, bot, message_update(group.chat_id, BOB))
    # Every later one is decided from memory.
    with django_assert_num_queries(0):
        for _ in range(100):
            handle(engine, bot, message_update(group.chat_id, BOB))


def test_an_unprotected_chat_costs_no_query_after_the_first_message(
    hot, django_assert_num_queries
):
    engine, _group, bot = hot
    handle(engine, bot, message_update(-100999, BOB))
    with django_assert_num_queries(0):
        handle(engine, bot, message_update(-100999, BOB))
