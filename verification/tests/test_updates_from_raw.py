"""Raw JSON read into the same values PTB objects give (`from_raw` beside `from_message`).

The fast path reads updates with these constructors and hands the values to
the rulebook, so a value that differed here would be a rule applied twice
differently. Each case builds the value both ways and compares.
"""

import pytest
from telegram import Bot, Message, User

from verification.updates import IncomingMessage, Person

BOT = Bot("123:abc")


def via_ptb(data: dict, *, is_edit: bool = False) -> IncomingMessage:
    return IncomingMessage.from_message(Message.de_json(data, BOT), is_edit=is_edit)


def message(**fields) -> dict:
    fields.setdefault("message_id", 10)
    fields.setdefault("date", 0)
    fields.setdefault("chat", {"id": -100500, "type": "supergroup"})
    fields.setdefault("text", "hello")
    return fields


PEOPLE = [
    {"id": 42, "is_bot": False, "first_name": "Carol", "last_name": "Lee", "username": "carol"},
    {"id": 42, "is_bot": False, "first_name": "Carol"},
    # The blank first name once lived only in the fast path's copy of the rule.
    {"id": 42, "is_bot": False, "first_name": "", "last_name": "Lee"},
    {"id": 42, "is_bot": False, "first_name": "", "username": "carol"},
    {"id": 42, "is_bot": False, "first_name": ""},
    {"id": 42, "is_bot": False, "first_name": "Ca\x00rol", "last_name": "\udc00"},
    {"id": 5, "is_bot": True, "first_name": "Helper", "username": "helper_bot"},
]


@pytest.mark.parametrize("user", PEOPLE)
def test_a_person_reads_the_same_from_raw_json(user):
    assert Person.from_raw(user) == Person.from_user(User.de_json(user, BOT))


@pytest.mark.parametrize(("tag", "read"), [
    ("fa", "fa"), ("pt-br", "pt-br"), ("en-GB", "en-GB"), (None, ""), ("", ""),
    ("x" * 36, ""), ("es;drop", ""),
])
def test_a_persons_language_reads_the_same_from_raw_json(tag, read):
    """The language their app speaks (what texts to them are written in), both ways."""
    user = {"id": 42, "is_bot": False, "first_name": "Carol"}
    if tag is not None:
        user["language_code"] = tag
    assert Person.from_raw(user).language_code == read
    assert Person.from_user(User.de_json(user, BOT)).language_code == read


@pytest.mark.parametrize("data", [
    message(**{"from": PEOPLE[0]}),
    # An anonymous admin, the linked channel's automatic forward, a foreign channel.
    message(**{"from": {"id": 1087968824, "is_bot": True, "first_name": "Group"}},
            sender_chat={"id": -100500, "type": "supergroup"}),
    message(**{"from": {"id": 136817688, "is_bot": True, "first_name": "Telegram"}},
            sender_chat={"id": -1001, "type": "channel"}, is_automatic_forward=True),
    message(**{"from": {"id": 136817688, "is_bot": True, "first_name": "Telegram"}},
            sender_chat={"id": -100777, "type": "channel"}),
    # A forum topic keeps its thread; a reply in an ordinary group does not need one.
    message(**{"from": PEOPLE[1]}, message_thread_id=7, is_topic_message=True),
    message(**{"from": PEOPLE[1]}, message_thread_id=7),
    message(),
])
def test_a_message_reads_the_same_from_raw_json(data):
    assert IncomingMessage.from_raw(data) == via_ptb(data)
    assert IncomingMessage.from_raw(data, is_edit=True) == via_ptb(data, is_edit=True)


@pytest.mark.parametrize("data", [
    None, "text", message(chat="x"), message(chat={"id": "-100500", "type": "supergroup"}),
    message(message_id=None), message(**{"from": {"first_name": "No id"}}),
    message(**{"from": {"id": True, "first_name": "Bool"}}), message(sender_chat={"id": None}),
])
def test_what_it_cannot_read_it_does_not_guess(data):
    assert IncomingMessage.from_raw(data) is None
