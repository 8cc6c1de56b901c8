"""The group's action setting (mute, kick, delete only), edits, and warning expiry."""

import pytest
from telegram import Message

from verification.commands import _forwarded_channel
from verification.flows import sweeps

pytestmark = pytest.mark.django_db(transaction=True)


async def test_kick_removes_the_user_without_banning_them(world):
    s = world.scene
    await world.protect(action="kick")
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("unbanChatMember", user_id=s.carol.id)
    await world.settle()
    assert world.calls("banChatMember", user_id=s.carol.id)
    # Out, but free to come back once subscribed; nobody to warn.
    assert s.emulator.member(s.group, s.carol)["status"] == "left"
    assert not world.calls("sendMessage", chat_id=s.group.id)


async def test_delete_only_deletes_and_warns_but_never_restricts(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect(action="delete")
    msg = s.emulator.send_message(s.group, s.carol, "hello")
    await world.emu.wait_for_call("deleteMessage", message_id=msg["message_id"])
    await world.settle()
    assert not world.calls("restrictChatMember")
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1


async def test_an_edited_message_is_held_to_the_same_rules(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    msg = s.emulator.send_message(s.group, s.carol, "innocent")
    await world.settle()
    await world.protect()
    s.emulator.edit_message(s.group, msg["message_id"], "now with spam")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    assert world.calls("deleteMessage", message_id=msg["message_id"])


async def test_the_warning_removes_itself_after_the_groups_delay(world):
    s = world.scene
    await world.protect(warning_delete_after=1)
    s.emulator.join(s.group, s.carol)
    sent = await world.emu.wait_for_call("sendMessage", chat_id=s.group.id)
    await world.emu.wait_for_call("deleteMessage", message_id=sent.result["message_id"])
    # The restriction stays; only the message goes.
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


def test_protect_accepts_a_reply_to_a_post_forwarded_from_the_channel():
    message = Message.de_json({
        "message_id": 1, "date": 0, "chat": {"id": -100, "type": "supergroup"},
        "forward_origin": {"type": "channel", "date": 0, "message_id": 7,
                           "chat": {"id": -1009, "type": "channel", "title": "News"}},
    }, None)
    assert _forwarded_channel(message) == -1009
    assert _forwarded_channel(None) is None


async def test_a_warning_left_behind_by_a_restart_is_still_removed(world):
    import datetime

    from django.utils import timezone

    from groups.models import GroupMember

    s = world.scene
    await world.protect(warning_delete_after=120)
    s.emulator.join(s.group, s.carol)
    sent = await world.emu.wait_for_call("sendMessage", chat_id=s.group.id)
    await world.settle()
    # A restart: the board (and the warning's timer) is gone; the delay has passed.
    world.engine.board.forget(world.engine.board.of_user(s.group.id, s.carol.id))
    await GroupMember.objects.filter(user_id=s.carol.id).aupdate(
        restricted_at=timezone.now() - datetime.timedelta(seconds=121))
    # One sweep step removes it.
    assert await sweeps.sweep_warnings(world.engine) == 1
    assert world.calls("deleteMessage", message_id=sent.result["message_id"])
    assert await sweeps.sweep_warnings(world.engine) == 0
