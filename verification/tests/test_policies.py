"""Channel policies (issue 15): all, any, at least N, as values and end to end."""

import dataclasses
import re

import pytest
from django.core.exceptions import ValidationError

from groups.config import ChannelConfig
from groups.models import ProtectedGroup, required_channels
from verification.decisions import (
    Allow,
    Check,
    Restrict,
    StillMissing,
    Unmute,
    decide_membership,
    decide_unmute,
    known_enough,
)
from verification.flows.button import missing_text
from verification.models import VerificationEvent
from verification.tests.test_decisions import CAROL, NEWS, PICS, make_config

ART = ChannelConfig(3, -1003, "Cat Art", "catart", "https://t.me/catart")


def plain(text: str) -> str:
    """The words a person reads: without bold tags and the isolates around names."""
    return re.sub("</?b>|[\u2068\u2069]", "", text)


def decide(policy: str, answers: dict, channels=(NEWS, PICS, ART), **fields):
    config = make_config(policy=policy, channels=channels, **fields)
    return decide_membership(Check(CAROL, channels), config, answers, reason="message")


# --- the rule as values --------------------------------------------------------------


def test_required_channels_follow_the_policy():
    assert required_channels("all", 3) == 3
    assert required_channels("any", 3) == 1
    assert required_channels("2", 3) == 2
    # More than are linked asks for every one: unlinking never makes a group impossible.
    assert required_channels("5", 3) == 3
    assert required_channels("any", 0) == 0


def test_any_lets_a_member_of_one_channel_speak():
    assert decide("any", {NEWS.chat_id: False, PICS.chat_id: True, ART.chat_id: False}) \
        == Allow("subscribed")


def test_any_names_every_channel_to_someone_in_none():
    decision = decide("any", {NEWS.chat_id: False, PICS.chat_id: False, ART.chat_id: False})
    assert isinstance(decision, Restrict)
    assert decision.missing == (NEWS, PICS, ART) and decision.short == 1
    # The recorded reason says the policy.
    assert decision.detail == "message (policy any: 1 more of 3)"


def test_at_least_two_names_only_the_channels_that_would_help():
    decision = decide("2", {NEWS.chat_id: True, PICS.chat_id: False, ART.chat_id: False})
    assert isinstance(decision, Restrict)
    # News is already joined: one more of Pics or Art satisfies the policy.
    assert decision.missing == (PICS, ART) and decision.short == 1
    assert decide("2", {NEWS.chat_id: True, PICS.chat_id: False, ART.chat_id: True}) \
        == Allow("subscribed")


def test_all_is_unchanged_and_says_nothing_more():
    decision = decide("all", {NEWS.chat_id: True, PICS.chat_id: False, ART.chat_id: True})
    assert decision.missing == (PICS,) and decision.detail == "message"


def test_unknown_answers_follow_the_fail_mode_only_when_they_could_matter():
    # Any: one unknown, the rest missing: the unknown could satisfy it.
    unknown = {NEWS.chat_id: None, PICS.chat_id: False, ART.chat_id: False}
    assert decide("any", unknown, fail_mode="open") == Allow("fail_open")
    assert decide("any", unknown).reason == "unknown"
    # At least 3 of 3 with one missing: no unknown answer can help, fail open or not.
    assert decide("3", unknown, fail_mode="open").reason == "message"


def test_a_channel_never_asked_is_not_counted_as_joined():
    # Under `all`, an answer that is absent must not read as a subscription.
    decision = decide("all", {NEWS.chat_id: True, PICS.chat_id: True})
    assert isinstance(decision, Restrict) and decision.missing == (ART,)


def test_memory_decides_any_from_one_known_subscription():
    config = make_config(policy="any", channels=(NEWS, PICS, ART))
    assert known_enough(config, config.channels, {PICS.chat_id: True})
    assert not known_enough(config, config.channels, {PICS.chat_id: False})
    assert not known_enough(make_config(channels=(NEWS, PICS)), (NEWS, PICS),
                            {NEWS.chat_id: True})


def test_unmute_follows_the_policy_and_says_how_many_more():
    config = make_config(policy="2", channels=(NEWS, PICS, ART))
    still = decide_unmute(config, CAROL, {NEWS.chat_id: True, PICS.chat_id: False,
                                          ART.chat_id: False},
                          restricted_by_nezuko=True, reason="button")
    assert still == StillMissing(config.chat_id, CAROL, (PICS, ART), short=1)
    assert missing_text(still) == ("You still need to join 1 of: "
                                  "\u2068Cat Pics\u2069 or \u2068Cat Art\u2069")
    assert isinstance(decide_unmute(config, CAROL, {NEWS.chat_id: True, PICS.chat_id: True,
                                                    ART.chat_id: False},
                                    restricted_by_nezuko=True, reason="button"), Unmute)


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["", "none", "0", "11", "-1", "2.5", "ALL"])
def test_the_model_refuses_other_policies(value):
    group = ProtectedGroup(policy=value)
    with pytest.raises(ValidationError) as caught:
        group.clean_fields(exclude=[f.name for f in ProtectedGroup._meta.fields
                                    if f.name != "policy"])
    assert "policy" in caught.value.message_dict


def test_config_carries_the_policy():
    assert dataclasses.replace(make_config(), policy="any").required == 1


# --- end to end ----------------------------------------------------------------------

e2e = pytest.mark.django_db(transaction=True)


def buttons(call) -> list[dict]:
    return [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


def _pics(world):
    s = world.scene
    pics = s.emulator.create_channel("Cat Pics", creator=s.alice, username="catpics")
    s.emulator.promote(pics, s.bot, by=s.alice)
    return pics


@e2e
async def test_any_never_mutes_a_member_of_one_channel_and_warns_others_with_both(world):
    s = world.scene
    pics = _pics(world)
    s.emulator.join(s.group, s.carol)
    s.emulator.join(pics, s.bob)
    await world.settle()
    await world.protect(channels=[s.channel, pics], policy="any")
    s.emulator.send_message(s.group, s.bob, "I follow Cat Pics only")
    s.emulator.send_message(s.group, s.carol, "I follow nothing")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    # Bob, in one of the two, is never muted nor named.
    assert not world.calls("restrictChatMember", user_id=s.bob.id)
    assert s.emulator.member(s.group, s.bob)["status"] == "member"
    # Carol is warned with both channels' buttons, and told one of them is enough.
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    assert [plain(b["text"]) for b in buttons(warning)] == ["Join Cat News", "Join Cat Pics",
                                                             "I've joined"]
    assert "please join one of Cat News or Cat Pics." in plain(warning.params["text"])
    # The event's reason names the policy.
    await world.recorder.aflush()
    event = await VerificationEvent.objects.aget(user_id=s.carol.id, outcome="restricted")
    assert "policy any" in event.detail


@e2e
async def test_at_least_two_of_three_tells_a_member_of_one_which_would_do(world):
    s = world.scene
    pics = _pics(world)
    art = s.emulator.create_channel("Cat Art", creator=s.alice, username="catart")
    s.emulator.promote(art, s.bot, by=s.alice)
    s.emulator.join(s.group, s.carol)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    await world.protect(channels=[s.channel, pics, art], policy="2")
    s.emulator.send_message(s.group, s.carol, "hi")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    # Only the channels that would satisfy it, and how many more.
    assert [plain(b["text"]) for b in buttons(warning)] == ["Join Cat Pics", "Join Cat Art",
                                                             "I've joined"]
    text = plain(warning.params["text"])
    assert "please join one more of Cat Pics or Cat Art" in text
    assert "at least 2 of its channels" in text
    # Joining one of them is enough: she is unmuted without pressing anything.
    s.emulator.join(art, s.carol)
    await world.settle()
    assert s.emulator.member(s.group, s.carol)["can_send_messages"]


@e2e
async def test_the_fast_path_lets_a_known_subscriber_of_one_channel_through(world):
    s = world.scene
    pics = _pics(world)
    await world.protect(channels=[s.channel, pics], policy="any")
    s.emulator.join(pics, s.bob)  # the channel event puts him in memory
    await world.settle()
    for i in range(50):
        s.emulator.send_message(s.group, s.bob, f"message {i}")
    await world.settle()
    # Cat News is never asked about: Cat Pics alone satisfies `any`.
    assert not world.calls("getChatMember", user_id=s.bob.id)
    assert not world.calls("restrictChatMember", user_id=s.bob.id)
