"""The raw-JSON fast path: True only when the handlers would do nothing.

It holds no rule of its own (it asks `decisions`), so these tests check its
routing and its memory-only contract; the rules are tested as values in
test_decisions.py, the raw reading in test_updates_from_raw.py.
"""

import itertools

import pytest
from asgiref.sync import async_to_sync
from telegram import Bot

from groups.config import configs
from groups.models import GroupAdmin
from tests.factories import fake_token, make_bot, make_channel, make_group
from verification.engine import Engine
from verification.fastpath import fast_path
from verification.membership import memberships

pytestmark = pytest.mark.django_db

SUBSCRIBER, STRANGER, ADMIN = 11, 12, 13
_ids = itertools.count(1)


@pytest.fixture
def setup():
    configs.clear()
    memberships.clear_local()
    bot_row = make_bot()
    channel = make_channel(bot_row)
    group = make_group(bot_row, channels=[channel])
    GroupAdmin.objects.create(group=group, user_id=ADMIN)
    bot = Bot(fake_token(bot_row.telegram_id), base_url="http://127.0.0.1:9/bot")
    engine = Engine(bot_pk=bot_row.pk, bot_telegram_id=bot_row.telegram_id, bot=bot)
    memberships.remember((bot_row.telegram_id, channel.chat_id, SUBSCRIBER), True)
    memberships.remember((bot_row.telegram_id, channel.chat_id, STRANGER), False)
    configs.get(bot_row.pk, group.chat_id)  # loaded, as after the first message
    engine._known.add((group.chat_id, SUBSCRIBER))
    yield engine, group, channel
    configs.clear()
    memberships.clear_local()


def raw(chat_id: int, user_id: int | None = SUBSCRIBER, **message) -> dict:
    n = next(_ids)
    message.setdefault("text", "hello")
    body = {"message_id": n, "date": 0, "chat": {"id": chat_id, "type": "supergroup"},
            **message}
    if user_id is not None:
        body.setdefault("from", {"id": user_id, "is_bot": False, "first_name": "U"})
    return {"update_id": n, "message": body}


def run(engine, data) -> bool:
    async def go() -> bool:
        return fast_path(engine, data)

    return async_to_sync(go)()


def test_it_decides_the_common_cases(setup, django_assert_num_queries):
    engine, group, channel = setup
    with django_assert_num_queries(0):
        # A known subscriber, an admin, a bot, the linked channel, an anonymous admin.
        assert run(engine, raw(group.chat_id))
        assert run(engine, raw(group.chat_id, ADMIN))
        assert run(engine, raw(group.chat_id, 99, **{"from": {"id": 99, "is_bot": True,
                                                              "first_name": "B"}}))
        assert run(engine, raw(group.chat_id, 136817688,
                               sender_chat={"id": channel.chat_id, "type": "channel"}))
        assert run(engine, raw(group.chat_id, 1087968824,
                               sender_chat={"id": group.chat_id, "type": "supergroup"}))
        assert run(engine, {"update_id": 1, "edited_message": raw(group.chat_id)["message"]})


def test_it_leaves_everything_else_to_the_handlers(setup):
    engine, group, _channel = setup
    # Not a subscriber, unknown user, a command, a join, a foreign channel, a private chat.
    assert not run(engine, raw(group.chat_id, STRANGER))
    assert not run(engine, raw(group.chat_id, 777))
    assert not run(engine, raw(group.chat_id, ADMIN, text="/status"))
    assert not run(engine, raw(group.chat_id, new_chat_members=[{"id": 5, "is_bot": False,
                                                                  "first_name": "N"}]))
    assert not run(engine, raw(group.chat_id, 136817688,
                               sender_chat={"id": -100777, "type": "channel"}))
    private = raw(SUBSCRIBER)
    private["message"]["chat"] = {"id": SUBSCRIBER, "type": "private"}
    assert not run(engine, private)
    # A chat whose configuration is not loaded yet: the handlers load it.
    assert not run(engine, raw(-100123456))
    assert not run(engine, {"update_id": 5, "callback_query": {}})


def test_a_member_posting_as_their_own_channel_or_a_malformed_sender_goes_to_the_handlers(setup):
    engine, group, _channel = setup
    # A foreign sender chat is a restriction to make: the handlers act on it.
    assert not run(engine, raw(group.chat_id, SUBSCRIBER,
                               sender_chat={"id": -100777, "type": "channel"}))
    # A sender it cannot read (no integer id) is never guessed at.
    assert not run(engine, raw(group.chat_id, None, **{"from": {"id": "11"}}))
    assert not run(engine, raw(group.chat_id, None, **{"from": "bob"}))


def test_an_unprotected_chat_is_decided_once_known(setup):
    engine, _group, _channel = setup
    configs.get(engine.bot_pk, -100555)
    assert run(engine, raw(-100555, STRANGER))


def test_a_member_first_seen_here_is_noted_with_their_name(setup):
    from groups.models import GroupMember

    engine, group, channel = setup
    # Known from a channel join event, never seen in the group by the handlers.
    memberships.remember((engine.bot_telegram_id, channel.chat_id, 21), True)
    data = raw(group.chat_id, 21, **{"from": {"id": 21, "is_bot": False, "first_name": "Dora",
                                              "last_name": "Lee", "username": "dora"}})

    async def go() -> bool:
        passed = fast_path(engine, data)
        await engine.idle()
        return passed

    assert async_to_sync(go)()
    member = GroupMember.objects.get(group=group, user_id=21)
    assert (member.first_name, member.username) == ("Dora Lee", "dora")
