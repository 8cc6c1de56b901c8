"""Warnings under a burst: one message names several users and is edited."""

import pytest

from verification import warnings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quick_edits(monkeypatch):
    monkeypatch.setattr(warnings, "EDIT_DELAY", 0.05)


async def test_a_raid_of_joins_gets_one_warning_that_names_them(world):
    s = world.scene
    await world.protect()
    raiders = [s.emulator.create_user(f"Raider {i}") for i in range(30)]
    for raider in raiders:
        s.emulator.join(s.group, raider)
    for raider in raiders:
        await world.emu.wait_for_call("restrictChatMember", user_id=raider.id)
    await world.settle()
    # Thirty restrictions, but one warning message, edited as they arrived.
    assert len(world.calls("restrictChatMember", chat_id=s.group.id)) == 30
    (sent,) = world.calls("sendMessage", chat_id=s.group.id)
    edits = world.calls("editMessageText", chat_id=s.group.id)
    assert edits and len(edits) < 30
    final = edits[-1].params["text"]
    # Joins are handled concurrently, so which fifteen are named depends on the
    # order their restrictions finished; that fifteen are and the rest are counted does not.
    named = [r for r in raiders if f"tg://user?id={r.id}" in final]
    assert len(named) == 15 and "+15 more" in final
    del sent


async def test_a_user_who_complies_is_taken_off_a_shared_warning(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    dave = s.emulator.create_user("Dave")
    s.emulator.join(s.group, dave)
    await world.emu.wait_for_call("restrictChatMember", user_id=dave.id)
    await world.settle()
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", since=0, user_id=s.carol.id)
    await world.settle()
    final = world.calls("editMessageText", chat_id=s.group.id)[-1].params["text"]
    # Carol is gone from the warning, Dave is still on it.
    assert "Dave" in final and "Carol" not in final
    assert not world.calls("deleteMessage", chat_id=s.group.id)


async def test_names_in_warnings_are_escaped(world):
    s = world.scene
    await world.protect()
    mallory = s.emulator.create_user("<b>Mallory</b> & co")
    s.emulator.join(s.group, mallory)
    await world.emu.wait_for_call("restrictChatMember", user_id=mallory.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    assert "&lt;b&gt;Mallory&lt;/b&gt; &amp; co" in warning.params["text"]


async def test_anyone_named_on_a_shared_warning_may_press_its_button(world):
    from verification.updates import callback_data

    s = world.scene
    await world.protect()
    dave = s.emulator.create_user("Dave")
    s.emulator.join(s.group, s.carol)
    s.emulator.join(s.group, dave)
    await world.emu.wait_for_call("restrictChatMember", user_id=dave.id)
    await world.emu.wait_for_call("editMessageText", chat_id=s.group.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    # Carol presses the shared button and is told what is missing.
    query = world.emu.press_button(s.group, warning.result["message_id"], s.carol,
                                   callback_data("joined", 0))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert "Cat News" in world.emu.callback_answer(query)["text"]
    # Bob, who is on no warning, may not.
    query = world.emu.press_button(s.group, warning.result["message_id"], s.bob,
                                   callback_data("joined", 0))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert "member named" in world.emu.callback_answer(query)["text"]
