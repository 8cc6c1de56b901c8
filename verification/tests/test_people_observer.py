"""Which people an update brings to the directory (`verification.people.note`), no I/O."""

from __future__ import annotations

from telegram import Update

from bots import referrals
from bots.people import PeopleWriter
from verification.people import note

CAROL = {"id": 501, "is_bot": False, "first_name": "Carol", "language_code": "pt-br"}
HELPER_BOT = {"id": 900, "is_bot": True, "first_name": "Helper"}
ME = {"id": 7000, "is_bot": True, "first_name": "Nezuko"}
GROUP = {"id": -1001, "type": "supergroup", "title": "Cats"}
CHANNEL = {"id": -1002, "type": "channel", "title": "Cat News"}
PRIVATE = {"id": 501, "type": "private", "first_name": "Carol"}


def noted(*updates: dict) -> dict[int, object]:
    writer = PeopleWriter()
    for n, fields in enumerate(updates):
        note(writer, 1, Update.de_json({"update_id": n, **fields}, None))
    return {user: sighting for (_bot, user), sighting in writer._entries.items()}


def message(chat: dict, sender: dict, text: str = "hi", **fields) -> dict:
    return {"message": {"message_id": 1, "date": 0, "chat": chat, "from": sender,
                        "text": text, **fields}}


def standing(chat: dict, status: str, old: str = "member") -> dict:
    return {"chat": chat, "from": CAROL, "date": 0,
            "old_chat_member": {"status": old, "user": ME, "until_date": 0},
            "new_chat_member": {"status": status, "user": ME, "until_date": 0}}


def test_a_private_start_with_a_valid_referral():
    payload = referrals.payload(referrals.GROUP, 3)
    [carol] = noted(message(PRIVATE, CAROL, f"/start {payload}")).values()
    assert carol.started is not None and carol.referral[:2] == ("g", 3)
    assert carol.raw == ("Carol", None, None, "pt-br")


def test_a_private_message_that_is_not_start_is_seen_but_not_started():
    [carol] = noted(message(PRIVATE, CAROL, "hello")).values()
    assert carol.started is None and carol.referral is None


def test_buttons_join_requests_and_group_messages_bring_their_person():
    people = noted(
        {"callback_query": {"id": "1", "from": CAROL, "chat_instance": "1", "data": "nz:j:0"}},
        {"chat_join_request": {"chat": GROUP, "from": {**CAROL, "id": 502}, "user_chat_id": 502,
                               "date": 0}},
        message(GROUP, {**CAROL, "id": 503}),
        message(GROUP, {**CAROL, "id": 504}, new_chat_members=[{**CAROL, "id": 505},
                                                                HELPER_BOT]),
    )
    assert set(people) == {501, 502, 503, 504, 505}


def test_bots_and_channel_member_changes_are_not_people_here():
    assert noted(
        message(GROUP, HELPER_BOT),
        {"chat_member": {"chat": CHANNEL, "from": CAROL, "date": 0,
                         "old_chat_member": {"status": "left", "user": CAROL},
                         "new_chat_member": {"status": "member", "user": CAROL}}},
        {"my_chat_member": standing(GROUP, "kicked")},  # removed from a group: not a block
    ) == {}


def test_the_bots_standing_in_a_private_chat_is_a_block_or_an_unblock():
    [blocked] = noted({"my_chat_member": standing(PRIVATE, "kicked")}).values()
    assert blocked.blocked is True
    [unblocked] = noted({"my_chat_member": standing(PRIVATE, "kicked")},
                        {"my_chat_member": standing(PRIVATE, "member", old="kicked")}).values()
    assert unblocked.blocked is False
