"""Flow 6: the "I've joined" button."""

import pytest
from django.core.cache import cache

from groups.models import GroupMember
from verification.membership import memberships
from verification.updates import callback_data

pytestmark = pytest.mark.django_db(transaction=True)


async def warned(world, group=None, user=None):
    """Protect the group, let `user` join unsubscribed; returns their warning message id."""
    s = world.scene
    group, user = group or s.group, user or s.carol
    await world.protect(group=group)
    s.emulator.join(group, user)
    await world.emu.wait_for_call("restrictChatMember", user_id=user.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=group.id)
    return warning.result["message_id"]


async def press(world, group, message_id, user, target) -> dict:
    query = world.emu.press_button(group, message_id, user, callback_data("joined", target.id))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    await world.settle()
    return world.emu.callback_answer(query)


async def test_it_only_lets_the_warned_user_press_the_button(world):
    s = world.scene
    message_id = await warned(world)
    s.emulator.join(s.channel, s.bob)
    answer = await press(world, s.group, message_id, s.bob, s.carol)
    # Bob is told off; carol stays muted.
    assert answer["show_alert"] and "member named" in answer["text"]
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


async def test_it_names_what_is_still_missing(world):
    s = world.scene
    message_id = await warned(world)
    answer = await press(world, s.group, message_id, s.carol, s.carol)
    assert answer["show_alert"] and "Cat News" in answer["text"]
    # The check was fresh: a getChatMember for the missing channel at press time.
    assert len(world.calls("getChatMember", chat_id=s.channel.id, user_id=s.carol.id)) == 2


async def test_it_unmutes_with_the_groups_own_default_permissions(world):
    s = world.scene
    strict = s.emulator.create_supergroup(
        "Strict Cats", creator=s.alice, permissions={"can_send_photos": False})
    s.emulator.promote(strict, s.bot, by=s.alice)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    memberships.clear_local()
    cache.clear()
    # Telegram fails when she joins the group: the group fails closed.
    world.emu.fail("getChatMember", chat_id=s.channel.id, error_code=502)
    message_id = await warned(world, group=strict)
    answer = await press(world, strict, message_id, s.carol, s.carol)
    # Her press re-checks and lets her speak.
    assert not answer.get("show_alert")
    unmute = world.calls("restrictChatMember", chat_id=strict.id, user_id=s.carol.id)[-1]
    # The group's defaults, not a fixed list: photos stay forbidden.
    assert unmute.params["permissions"]["can_send_photos"] is False
    assert unmute.params["permissions"]["can_send_messages"] is True
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    assert not member.restricted_by_nezuko
    # And the warning is gone.
    assert world.calls("deleteMessage", chat_id=strict.id, message_id=message_id)


async def test_a_member_muted_by_an_admin_stays_muted_whatever_they_press(world):
    s = world.scene
    message_id = await warned(world)
    await GroupMember.objects.filter(user_id=s.carol.id).aupdate(restricted_by_nezuko=False)
    # Subscribed, but the channel join event must not lift a human's mute either.
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    answer = await press(world, s.group, message_id, s.carol, s.carol)
    assert answer["show_alert"] and "admin" in answer["text"]
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


async def test_presses_are_throttled_per_user(world):
    s = world.scene
    message_id = await warned(world)
    first = await press(world, s.group, message_id, s.carol, s.carol)
    second = await press(world, s.group, message_id, s.carol, s.carol)
    assert "still need" in first["text"]
    assert "moment" in second["text"]
    # The throttled press cost no membership call.
    assert len(world.calls("getChatMember", chat_id=s.channel.id, user_id=s.carol.id)) == 2
