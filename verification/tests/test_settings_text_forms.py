"""`/settings <name> <value>` for every option (issue 15), and the same options in
the settings service, the dashboard form and the API."""

import pytest
from django.core.exceptions import ValidationError

from bots.models import AuditLog
from groups.models import ProtectedGroup
from groups.services.settings import OPTIONS, parse_option
from verification.tests.test_commands import say

# (typed, field, stored value, the reply's "name: value")
VALID = [
    ("action kick", "action", "kick", "action: <b>kick</b>"),
    ("action delete", "action", "delete", "action: <b>delete</b>"),
    ("action observe", "action", "observe", "action: <b>observe</b>"),
    ("action mute", "action", "mute", "action: <b>mute</b>"),
    ("policy any", "policy", "any", "policy: <b>any</b> (members need any one channel)"),
    ("policy 2", "policy", "2", "policy: <b>2</b> (members need at least 2 channels)"),
    ("policy all", "policy", "all", "policy: <b>all</b> (members need every channel)"),
    ("captcha on", "captcha", True, "captcha: <b>on</b>"),
    ("captcha off", "captcha", False, "captcha: <b>off</b>"),
    ("captcha_timeout 300", "captcha_timeout", 300, "captcha_timeout: <b>300</b>"),
    ("warning_delay 60", "warning_delete_after", 60, "warning_delay: <b>60</b>"),
    ("warning_delay 0", "warning_delete_after", 0, "warning_delay: <b>0</b>"),
    ("fail open", "fail_mode", "open", "fail: <b>open</b>"),
    ("fail closed", "fail_mode", "closed", "fail: <b>closed</b>"),
    # (auto is the default: set another language first, so each form is a change.)
    ("language pt-BR", "language", "pt-br", "language: <b>pt-br</b>"),
    ("language auto", "language", "auto", "language: <b>auto</b>"),
    ("throttle 30", "throttle", 30, "throttle: <b>30</b>"),
]

# (typed, what the error must name)
INVALID = [
    ("action ban", "use mute, kick, delete or observe"),
    ("policy some", "use all, any, or a number of channels from 2 to 10"),
    ("policy 0", "use all, any, or a number of channels from 2 to 10"),
    ("policy 11", "use all, any, or a number of channels from 2 to 10"),
    ("captcha maybe", "use on or off"),
    ("captcha_timeout 5", "use seconds from 30 to 3600"),
    ("captcha_timeout soon", "use seconds from 30 to 3600"),
    ("warning_delay -1", "use seconds from 0 (keep) to 86400"),
    ("warning_delay 100000", "use seconds from 0 (keep) to 86400"),
    ("fail sometimes", "use open or closed"),
    ("language klingon!", "use auto or one of en, es, pt-br, ru, uk, id, hi, fa, ar, tr"),
    ("language de", "use auto or one of en, es, pt-br, ru, uk, id, hi, fa, ar, tr"),
    ("throttle 9999", "use seconds from 0 (answer every command) to 3600"),
    ("colour blue", "There is no setting “colour”. Settings: action, policy, captcha, "
                    "captcha_timeout, warning_delay, fail, language, throttle."),
]


@pytest.mark.parametrize("typed,field,value,_reply", VALID)
def test_every_valid_form_parses_to_its_field(typed, field, value, _reply):
    option, parsed = parse_option(*typed.split())
    assert (option.field, parsed) == (field, value)


@pytest.mark.parametrize("typed,error", INVALID)
def test_every_wrong_value_names_the_allowed_ones(typed, error):
    with pytest.raises(ValidationError) as caught:
        parse_option(*typed.split())
    assert error in caught.value.messages[0]


def test_every_option_has_a_valid_and_a_wrong_form_here():
    assert {t.split()[0] for t, *_ in VALID} == set(OPTIONS)
    assert {t.split()[0] for t, _ in INVALID} >= set(OPTIONS)


e2e = pytest.mark.django_db(transaction=True)


@e2e
async def test_each_form_answers_with_the_new_value_and_is_saved_and_audited(world):
    s = world.scene
    group = await world.protect(channels=[s.channel])
    for typed, field, value, reply in VALID:
        text = await say(world, s.group, s.alice, f"/settings {typed}")
        assert reply in text, typed
        fresh = await ProtectedGroup.objects.aget(pk=group.pk)
        assert getattr(fresh, field) == value, typed
    # One audit row per change (each form above changes the value it sets).
    assert await AuditLog.objects.filter(action="group.settings_changed").acount() == len(VALID)


@e2e
async def test_each_wrong_form_is_refused_with_the_allowed_values(world):
    s = world.scene
    group = await world.protect()
    for typed, error in INVALID:
        text = await say(world, s.group, s.alice, f"/settings {typed}")
        assert text.startswith("❌") and error in text.replace("&quot;", '"'), typed
    # Without a value, the usage and every setting's name.
    text = await say(world, s.group, s.alice, "/settings policy")
    assert "Usage: /settings" in text and "captcha_timeout" in text
    # Nothing changed, nothing audited.
    assert not await AuditLog.objects.filter(action="group.settings_changed").aexists()
    assert (await ProtectedGroup.objects.aget(pk=group.pk)).policy == "all"


@e2e
async def test_a_member_without_the_ban_right_cannot_set_anything(world):
    s = world.scene
    await world.protect()
    s.emulator.promote(s.group, s.bob, by=s.alice, can_pin_messages=True)
    await world.settle()
    text = await say(world, s.group, s.bob, "/settings action kick")
    assert "Ban users" in text
    assert (await ProtectedGroup.objects.aget(chat_id=s.group.id)).action == "mute"


@e2e
async def test_the_settings_message_lists_every_option_as_typed(world):
    s = world.scene
    await world.protect(policy="any", captcha=True)
    text = await say(world, s.group, s.alice, "/settings")
    for name in OPTIONS:
        assert f"<code>/settings {name} " in text
    assert "<code>/settings policy any</code>" in text
    assert "<code>/settings captcha on</code>" in text
