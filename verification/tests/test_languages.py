"""Every Telegram text in its reader's language (issue 14), through the runbot runtime.

Expected wording comes from the catalogs under `speaking(language)`, and must
differ from the English, so a missing translation fails here rather than passing
in English. A message's fixed words (the translated sentence without its
placeholders) must all appear in what the emulator received.
"""

from __future__ import annotations

import asyncio
import html
import re

import pytest
from django.utils.translation import gettext, ngettext, pgettext

from groups import languages
from groups.models import ProtectedGroup
from verification.updates import callback_data
from verification.warnings import EDIT_DELAY

pytestmark = pytest.mark.django_db(transaction=True)

WARNING = ("%(names)s, to speak in <b>%(group)s</b> please join %(channels)s.\n"
           "Then press “%(button)s”.")
STILL_MISSING = "You still need to join: %(channels)s"


def translated(language: str, text, *, english_too: bool = True) -> str:
    """`text()` in `language`, checked to differ from the English."""
    with languages.speaking(language):
        theirs = text()
    with languages.speaking(languages.DEFAULT):
        english = text()
    if english_too:
        assert theirs != english, f"{language}: not translated: {english!r}"
    return theirs


def assert_says(sent: str, wording: str) -> None:
    """Every fixed part of `wording` (around its placeholders) is in `sent`."""
    sent = html.unescape(sent)
    for part in re.split(r"%\(\w+\)s", wording):
        part = part.strip(" ,.\n")
        if part:
            assert part in sent, f"{part!r} not in {sent!r}"


def warning_text(language: str, people: int) -> str:
    return translated(language, lambda: ngettext(WARNING, WARNING, people))


async def warned(world, user, **group_fields) -> dict:
    """`user` joins the protected group unsubscribed: their warning."""
    s = world.scene
    await world.protect(**group_fields)
    s.emulator.join(s.group, user)
    await world.emu.wait_for_call("restrictChatMember", user_id=user.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    return warning


@pytest.mark.parametrize("language", ["es", "fa", "pt-br"])
async def test_a_person_is_warned_and_answered_in_their_language(world, language):
    s = world.scene
    user = s.emulator.create_user("Zoë", language_code=language)
    warning = await warned(world, user)
    assert_says(warning.params["text"], warning_text(language, 1))
    # Their buttons too.
    labels = [b["text"] for row in warning.params["reply_markup"]["inline_keyboard"]
              for b in row]
    assert translated(language, lambda: pgettext("button", "I've joined")) in labels
    # Pressing "I've joined" still unsubscribed: the alert names what is missing, in
    # their language.
    query = world.emu.press_button(s.group, warning.result["message_id"], user,
                                   callback_data("joined", user.id))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    await world.settle()
    answer = world.emu.callback_answer(query)
    assert answer["show_alert"]
    assert_says(answer["text"], translated(
        language, lambda: pgettext("alert", STILL_MISSING)))
    assert "Cat News" in answer["text"]


async def test_someone_elses_press_is_refused_in_the_pressers_language(world):
    s = world.scene
    warning = await warned(world, s.carol)  # Carol's app speaks English
    presser = s.emulator.create_user("Ali", language_code="fa")
    query = world.emu.press_button(s.group, warning.result["message_id"], presser,
                                   callback_data("joined", s.carol.id))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    answer = world.emu.callback_answer(query)
    assert answer["text"] == translated("fa", lambda: pgettext(
        "alert", "This button is for the member named in the warning."))
    # The warning itself stays in Carol's language.
    assert_says(warning.params["text"], WARNING)


async def test_a_person_without_a_shipped_language_reads_the_groups(world):
    s = world.scene
    user = s.emulator.create_user("Jan", language_code="nl")
    warning = await warned(world, user, language="es")
    assert_says(warning.params["text"], warning_text("es", 1))


async def test_a_coalesced_raid_warning_speaks_the_groups_language(world):
    s = world.scene
    await world.protect(language="pt-br")
    raiders = [s.emulator.create_user(f"Raider {n}", language_code=code)
               for n, code in enumerate(["es", "fa", "en", "es", "fa"])]
    for raider in raiders:
        s.emulator.join(s.group, raider)
    for raider in raiders:
        await world.emu.wait_for_call("restrictChatMember", user_id=raider.id)
    await world.settle()
    await asyncio.sleep(EDIT_DELAY)
    await world.settle()
    # One warning; with several people named, its last text is in the group's language.
    (sent,) = world.calls("sendMessage", chat_id=s.group.id)
    edits = world.calls("editMessageText", chat_id=s.group.id)
    last = edits[-1].params["text"] if edits else sent.params["text"]
    assert all(f"Raider {n}" in last for n in range(len(raiders)))
    assert_says(last, warning_text("pt-br", len(raiders)))


async def test_an_auto_group_speaks_its_members_most_common_language(world):
    s = world.scene
    await world.protect()  # language: auto, the default
    speakers = [s.emulator.create_user(f"Member {n}", language_code="fa") for n in range(6)]
    for speaker in speakers:
        s.emulator.join(s.channel, speaker)
        s.emulator.join(s.group, speaker)
    await world.settle()
    for speaker in speakers:
        s.emulator.send_message(s.group, speaker, "سلام")
    await world.settle()
    config = await world.engine.config(s.group.id)
    assert world.engine.group_language(config) == "fa"
    # Written down for the next start (what auto meant), without a query per message.
    from verification.maintenance import write_member_languages
    assert await write_member_languages(world.engine) == 1
    assert await write_member_languages(world.engine) == 0
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert (group.language, group.members_language) == ("auto", "fa")


async def test_a_custom_warning_is_chosen_by_the_readers_language(world):
    s = world.scene
    user = s.emulator.create_user("Zoë", language_code="es")
    warning = await warned(world, user, warning_text="Join {channels}, {mention}!",
                           warning_texts={"es": "¡Únete a {channels}, {mention}!"})
    assert warning.params["text"].startswith("¡Únete a \u2068Cat News\u2069")
    other = s.emulator.create_user("Jo", language_code="tr")
    s.emulator.join(s.group, other)
    await world.settle()
    assert s.emulator.member(s.group, other)["status"] == "restricted"


async def test_commands_are_answered_in_the_senders_language(world):
    s = world.scene
    await world.protect()
    user = s.emulator.create_user("Zoë", language_code="es")
    since = len(world.emu.calls)
    world.emu.send_message(s.bot, user, "/start")
    start = await world.emu.wait_for_call("sendMessage", since=since, chat_id=user.id)
    assert_says(start.params["text"], translated(
        "es", lambda: gettext("2. Add me to each channel as an admin.")))
    labels = [b["text"] for row in start.params["reply_markup"]["inline_keyboard"]
              for b in row]
    assert labels == [translated("es", lambda: pgettext("button", "Add me to a group"))]
    # In the group: an admin whose app speaks Persian sets the group's language to
    # Spanish, and is still answered in Persian.
    admin = s.emulator.create_user("Dariush", language_code="fa")
    s.emulator.join(s.group, admin)
    s.emulator.promote(s.group, admin, by=s.alice)
    await world.settle()
    since = len(world.emu.calls)
    world.emu.send_message(s.group, admin, "/settings language es")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    assert reply.params["text"].startswith("✅ language")
    since = len(world.emu.calls)
    world.emu.send_message(s.group, admin, "/settings language xx")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    # A clear error naming the languages, in the sender's language.
    assert_says(reply.params["text"], translated("fa", lambda: gettext(
        "“%(value)s” is not a value for %(name)s: use %(allowed)s.")))
    assert "auto" in reply.params["text"] and "pt-br" in reply.params["text"]
    assert (await ProtectedGroup.objects.aget(chat_id=s.group.id)).language == "es"
