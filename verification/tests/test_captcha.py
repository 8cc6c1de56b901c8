"""The human check for newcomers (issue 15): one message, one mute; answered in time
they are let in (then held to the subscription rule); otherwise removed."""

import re

import pytest

from groups.models import GroupMember
from verification import captcha
from verification.decisions import (
    Allow,
    Challenge,
    Restrict,
    Unmute,
    decide_after_check,
    decide_answer,
    decide_newcomer,
)
from verification.tests.test_decisions import CAROL, NEWS, PICS, make_config

# --- the rules as values --------------------------------------------------------------


def test_a_newcomer_is_challenged_only_when_the_group_asks():
    config = make_config(captcha=True, captcha_timeout=90)
    assert decide_newcomer(config, CAROL, Allow("subscribed")) == Challenge(
        config.chat_id, CAROL, (), 0, 90)
    assert decide_newcomer(make_config(), CAROL, Allow("subscribed")) == Allow("subscribed")
    # An admin after all, or observe mode: nobody is asked.
    assert decide_newcomer(config, CAROL, Allow("admin")) == Allow("admin")
    observing = make_config(captcha=True, action="observe")
    restrict = Restrict(config.chat_id, CAROL, (NEWS,), "observe", "join")
    assert decide_newcomer(observing, CAROL, restrict) is restrict


def test_the_challenge_carries_what_the_policy_still_needs():
    config = make_config(captcha=True, policy="any")
    restrict = Restrict(config.chat_id, CAROL, (NEWS, PICS), "mute", "join", short=1,
                        policy="any")
    assert decide_newcomer(config, CAROL, restrict) == Challenge(
        config.chat_id, CAROL, (NEWS, PICS), 1, 120)
    # A kick removes them anyway: no question.
    kick = Restrict(config.chat_id, CAROL, (NEWS,), "kick", "join")
    assert decide_newcomer(make_config(captcha=True, action="kick"), CAROL, kick) is kick


def test_answers():
    assert decide_answer(7, 7, 0).passed
    assert not decide_answer(7, 8, 0).passed and not decide_answer(7, 8, 0).removed
    assert decide_answer(7, 8, 1).removed
    # Asked before a restart: the newcomer's press counts.
    assert decide_answer(None, 3, 0).passed


def test_after_the_check_the_subscription_rule_alone():
    config = make_config(captcha=True)
    assert decide_after_check(config, CAROL, {NEWS.chat_id: True, PICS.chat_id: True}) \
        == Unmute(config.chat_id, CAROL, "captcha")
    held = decide_after_check(config, CAROL, {NEWS.chat_id: True, PICS.chat_id: False})
    assert isinstance(held, Restrict) and held.missing == (PICS,) and held.warn
    # Delete-only groups mute nobody for a missing channel.
    assert isinstance(decide_after_check(make_config(captcha=True, action="delete"), CAROL,
                                         {NEWS.chat_id: False, PICS.chat_id: False}), Unmute)


def test_the_question_changes_and_its_answer_is_among_the_buttons():
    questions = {captcha.Question.new() for _ in range(30)}
    assert len(questions) > 1
    for q in questions:
        assert q.answer in q.options and len(set(q.options)) == 3
    data = captcha.callback_data(42, 7)
    assert captcha.parse_callback_data(data) == (42, 7)
    assert captcha.parse_callback_data("nz:j:42") is None


# --- end to end ------------------------------------------------------------------------

e2e = pytest.mark.django_db(transaction=True)


def question_of(call) -> int:
    a, b = re.search(r"<b>(\d+) \+ (\d+)</b>", call.params["text"]).groups()
    return int(a) + int(b)


def buttons(call) -> list[dict]:
    return [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


async def _newcomer(world, person):
    """`person` joins; returns the one message the group got."""
    s = world.scene
    s.emulator.join(s.group, person)
    call = await world.emu.wait_for_call("sendMessage", chat_id=s.group.id)
    await world.settle()
    return call


async def _press(world, call, person, option: int) -> str:
    s = world.scene
    since = len(world.emu.calls)
    query = s.emulator.press_button(s.group, call.result["message_id"], person,
                                    captcha.callback_data(person.id, option))
    await world.emu.wait_for_call("answerCallbackQuery", since=since, callback_query_id=query)
    await world.settle()
    return world.emu.callback_answer(query)["text"]


@e2e
async def test_a_subscriber_who_answers_in_time_is_let_in(world):
    s = world.scene
    await world.protect(captcha=True)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    call = await _newcomer(world, s.carol)
    # One message, one mute.
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1
    assert len(world.calls("restrictChatMember", user_id=s.carol.id)) == 1
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]
    assert await _press(world, call, s.carol, question_of(call)) == "Thanks!"
    # Let in: the group's own permissions back, the question gone.
    assert s.emulator.member(s.group, s.carol)["can_send_messages"]
    assert world.calls("deleteMessage", message_id=call.result["message_id"])
    assert not (await GroupMember.objects.aget(user_id=s.carol.id)).restricted_by_nezuko


@e2e
async def test_one_message_asks_the_question_and_names_the_channel_then_the_rule_holds(world):
    s = world.scene
    await world.protect(captcha=True)
    call = await _newcomer(world, s.carol)
    # The question and the channel to join, in one message; one mute.
    assert [b["text"] for b in buttons(call)][0] == "Join \u2068Cat News\u2069"
    assert "Cat News" in call.params["text"] and "within 120 seconds" in call.params["text"]
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1
    assert len(world.calls("restrictChatMember", user_id=s.carol.id)) == 1
    # Joining the channel before answering lifts nothing: the question comes first.
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]
    s.emulator.leave(s.channel, s.carol)
    await world.settle()
    # She answers; not subscribed, she stays muted and gets the usual warning.
    await _press(world, call, s.carol, question_of(call))
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]
    warning = world.calls("sendMessage", chat_id=s.group.id)[-1]
    assert "I've joined" in [b["text"] for b in buttons(warning)]
    # Joining the channel now lets her speak, no click needed.
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    assert s.emulator.member(s.group, s.carol)["can_send_messages"]


@e2e
async def test_a_newcomer_who_does_not_answer_is_removed_not_banned(world):
    s = world.scene
    await world.protect(captcha=True, captcha_timeout=1)
    s.emulator.join(s.channel, s.carol)
    call = await _newcomer(world, s.carol)
    await world.emu.wait_for_call("unbanChatMember", user_id=s.carol.id)
    await world.settle()
    # Kicked (ban, then unban at once): out of the group, free to come back.
    assert world.calls("banChatMember", user_id=s.carol.id)
    assert s.emulator.member(s.group, s.carol)["status"] == "left"
    assert world.calls("deleteMessage", message_id=call.result["message_id"])
    assert (await GroupMember.objects.aget(user_id=s.carol.id)).status == "kicked"


@e2e
async def test_a_wrong_answer_may_be_corrected_once(world):
    s = world.scene
    await world.protect(captcha=True)
    dan = s.emulator.create_user("Dan", username="dan")
    s.emulator.join(s.channel, s.carol)
    s.emulator.join(s.channel, dan)
    await world.settle()
    call = await _newcomer(world, s.carol)
    wrong = next(b for b in buttons(call) if b.get("callback_data")
                 and int(b["text"]) != question_of(call))
    assert await _press(world, call, s.carol, int(wrong["text"])) == "Not quite: try again."
    world.engine._presses.clear()  # the press throttle (3 s) is not under test here
    assert await _press(world, call, s.carol, question_of(call)) == "Thanks!"
    assert s.emulator.member(s.group, s.carol)["can_send_messages"]
    # Dan gets it wrong twice: removed.
    since = len(world.emu.calls)
    s.emulator.join(s.group, dan)
    call = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.settle()
    wrong = next(int(b["text"]) for b in buttons(call) if b.get("callback_data")
                 and int(b["text"]) != question_of(call))
    await _press(world, call, dan, wrong)
    world.engine._presses.clear()
    assert await _press(world, call, dan, wrong) == "Wrong answer."
    await world.emu.wait_for_call("unbanChatMember", user_id=dan.id)
    assert s.emulator.member(s.group, dan)["status"] == "left"


@e2e
async def test_only_the_newcomer_may_answer_and_members_are_never_asked(world):
    s = world.scene
    s.emulator.join(s.channel, s.bob)
    await world.settle()
    await world.protect(captcha=True)
    # Bob was a member before: he speaks and is never asked.
    s.emulator.send_message(s.group, s.bob, "hello")
    await world.settle()
    assert not world.calls("sendMessage", chat_id=s.group.id)
    call = await _newcomer(world, s.carol)
    since = len(world.emu.calls)
    query = s.emulator.press_button(s.group, call.result["message_id"], s.bob,
                                    captcha.callback_data(s.carol.id, question_of(call)))
    await world.emu.wait_for_call("answerCallbackQuery", since=since, callback_query_id=query)
    answer = world.emu.callback_answer(query)
    assert answer["text"] == "This question is for the newcomer it names."
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]
