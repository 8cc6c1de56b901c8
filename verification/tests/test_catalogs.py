"""The catalogs (locale/<lang>/LC_MESSAGES/django.po) and the Telegram texts they make.

Every shipped language but English must translate every message, with nothing
fuzzy, the same placeholders as the English (a missing or extra `%(name)s`
breaks the text or loses the name), and as many plural forms as the language
has (Django's own catalog for that language says how many). And every Telegram
text, in every language, must stay within Telegram's limits with the longest
names Telegram allows. Until the translators deliver, the catalog checks fail:
that is the point of them.
"""

from __future__ import annotations

import ast
import dataclasses
import gettext
import html
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation import to_locale

from groups import languages
from groups.config import ChannelConfig
from verification import captcha, command_menus, commands, warnings, wording
from verification.decisions import StillMissing
from verification.flows import button
from verification.updates import Person

TRANSLATED = [code for code in languages.shipped() if code != languages.DEFAULT]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")
TELEGRAM_TEXT = 4096  # sendMessage / editMessageText
TELEGRAM_ALERT = 200  # answerCallbackQuery
TELEGRAM_COMMAND = 256  # a command's description in setMyCommands
BUTTON = 64  # a button's text: Nezuko cuts "Join <channel>" here, the rest must fit


# --- reading .po files --------------------------------------------------------------


@dataclasses.dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = dataclasses.field(default_factory=dict)
    fuzzy: bool = False

    @property
    def where(self) -> str:
        return f"{self.msgctxt + ' | ' if self.msgctxt else ''}{self.msgid[:60]!r}"


def read_po(path: Path) -> list[Entry]:
    """The live entries of a .po file (obsolete `#~` ones are not messages)."""
    entries, entry, field = [], Entry(), None

    def close() -> None:
        nonlocal entry
        if entry.msgid or entry.msgstr:
            entries.append(entry)
        entry = Entry()

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            close()
            field = None
        elif line.startswith("#,"):
            if entry.msgid or entry.msgstr:
                close()
            entry.fuzzy = "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            _append(entry, field, ast.literal_eval(line))
        else:
            keyword, _, value = line.partition(" ")
            if keyword in ("msgctxt", "msgid") and field is not None and field.startswith("msgstr"):
                close()
            field = keyword
            _append(entry, field, ast.literal_eval(value))
    close()
    return entries


def _append(entry: Entry, field: str | None, text: str) -> None:
    if field == "msgid":
        entry.msgid += text
    elif field == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    elif field == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    elif field == "msgstr":
        entry.msgstr[0] = entry.msgstr.get(0, "") + text
    elif field and field.startswith("msgstr["):
        index = int(field[7:-1])
        entry.msgstr[index] = entry.msgstr.get(index, "") + text


def plural_forms(entries: list[Entry]) -> int | None:
    header = next((e for e in entries if e.msgid == ""), None)
    found = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr.get(0, "")) if header else None
    return int(found.group(1)) if found else None


def catalog_path(code: str, root: Path) -> Path:
    return root / to_locale(code) / "LC_MESSAGES" / "django.po"


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


# --- the catalogs -----------------------------------------------------------------------

LOCALE = Path(settings.LOCALE_PATHS[0])


def load(code: str) -> tuple[str, list[Entry]]:
    path = catalog_path(code, LOCALE)
    assert path.exists(), f"{code}: no catalog at {path} (makemessages -l {to_locale(code)})"
    return code, read_po(path)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_and_none_is_fuzzy(language):
    code, entries = load(language)
    messages = [e for e in entries if e.msgid]
    assert messages, f"{code}: the catalog holds no message"
    untranslated = [e.where for e in messages if not all(e.msgstr.values()) or not e.msgstr]
    fuzzy = [e.where for e in messages if e.fuzzy]
    assert not untranslated, f"{code}: {len(untranslated)} untranslated: {untranslated[:5]}"
    assert not fuzzy, f"{code}: {len(fuzzy)} fuzzy: {fuzzy[:5]}"


def single_number_forms(code: str) -> set[int]:
    """The plural forms the language uses for one number only (English's "one" is n == 1;
    Russian's also serves 21, 31...; Arabic has three: zero, one and two)."""
    formula = languages.PLURAL_FORMS[to_locale(code)].split("plural=", 1)[1].rstrip(";")
    form_of = gettext.c2py(formula)
    numbers: dict[int, set[int]] = {}
    for n in range(1000):
        numbers.setdefault(form_of(n), set()).add(n)
    return {form for form, served in numbers.items() if len(served) == 1}


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders_of_the_english(language):
    code, entries = load(language)
    wrong = []
    for e in entries:
        if not e.msgid:
            continue
        english = placeholders(e.msgid) | placeholders(e.msgid_plural or "")
        for form, text in e.msgstr.items():
            if not text:
                continue
            found = placeholders(text)
            # A form serving one number alone may say it in words ("one", Arabic's "two")
            # and so drop the number's placeholder; a form that also serves 21 may not.
            may_drop = e.msgid_plural is not None and form in single_number_forms(code)
            if not (english <= found or may_drop and len(english - found) == 1) \
                    or not found <= english:
                wrong.append(f"{e.where}[{form}]: {sorted(found)} != {sorted(english)}")
    assert not wrong, f"{code}: placeholders differ from the English: {wrong[:5]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_plural_messages_have_the_languages_number_of_forms(language):
    code, entries = load(language)
    declared = languages.PLURAL_FORMS[to_locale(code)]
    expected = int(re.search(r"nplurals=(\d+)", declared).group(1))
    forms = plural_forms(entries)
    assert forms == expected, f"{code}: {forms} plural forms, the language has {expected}"
    header = next(e for e in entries if e.msgid == "")
    assert declared in header.msgstr[0], f"{code}: Plural-Forms is not {declared!r}"
    wrong = [f"{e.where}: {len(e.msgstr)}" for e in entries
             if e.msgid_plural is not None and sorted(e.msgstr) != list(range(forms))]
    assert not wrong, f"{code}: plural entries without {forms} forms: {wrong[:5]}"


def test_the_reader_checks_catch_what_they_must(tmp_path):
    """The checks above, on a small catalog with each fault."""
    po = tmp_path / "django.po"
    po.write_text('msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=3; plural=0;\\n"\n\n'
                  '#, fuzzy\nmsgid "Hi %(name)s"\nmsgstr "Hola %(nombre)s"\n\n'
                  'msgctxt "alert"\nmsgid "Saved."\nmsgstr ""\n\n'
                  'msgid "one of %(channels)s"\nmsgid_plural "%(count)s of %(channels)s"\n'
                  'msgstr[0] "uno de %(channels)s"\nmsgstr[1] "%(count)s de %(channels)s"\n\n'
                  '#~ msgid "Old"\n#~ msgstr "Viejo"\n', encoding="utf-8")
    entries = read_po(po)
    assert plural_forms(entries) == 3
    hi, saved, plural = entries[1:]
    assert hi.fuzzy and placeholders(hi.msgstr[0]) != placeholders(hi.msgid)
    assert saved.msgctxt == "alert" and not saved.msgstr[0] and not saved.fuzzy
    assert sorted(plural.msgstr) == [0, 1] and plural.msgid_plural.startswith("%(count)s")


# --- Telegram's limits, in every language ------------------------------------------------

LONG_NAME = "\u0645\u0631\u06cc\u0645 Mariam-" * 4  # 64 characters, both directions
LONG_TITLE = ("Канал новостей <&> " * 7)[:128]  # a channel title's maximum
CHANNELS = tuple(ChannelConfig(n, -1000 - n, f"{LONG_TITLE[:-3]}{n:03}", "", f"https://t.me/+{n}")
                 for n in range(10))


def _visible(text: str) -> str:
    """What Telegram counts: the text without its HTML tags."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@pytest.mark.parametrize("language", languages.shipped())
def test_a_raid_warning_with_long_names_fits_in_every_language(language):
    board = warnings.WarningBoard()
    for n in range(warnings.MAX_USERS):
        warning, _ = board.add(-100, None, LONG_TITLE, Person(n, f"{LONG_NAME[:-2]}{n:02}"),
                               CHANNELS, language=language)
    text, markup = warnings.render(warning)
    assert len(text) <= TELEGRAM_TEXT and len(_visible(text)) <= TELEGRAM_TEXT, language
    assert text.count("tg://user?id=") == warnings.NAMES_SHOWN
    for row in markup.inline_keyboard:
        for key in row:
            assert len(key.text) <= BUTTON, (language, key.text)


@pytest.mark.parametrize("language", languages.shipped())
def test_messages_to_one_person_fit_in_every_language(language):
    person = Person(7, LONG_NAME, language_code=language)
    with languages.speaking(language):
        texts = [
            captcha.render(LONG_TITLE, person, captcha.Question(9, 9, (18, 2, 3)), 3600,
                           CHANNELS, 3, "4")[0],
            warnings.needed(CHANNELS, 0, "all"),
        ]
    for text in texts:
        assert len(text) <= TELEGRAM_TEXT, language


@pytest.mark.parametrize("language", languages.shipped())
def test_alerts_buttons_and_command_descriptions_fit_in_every_language(language):
    with languages.speaking(language):
        alerts = [str(text) for text, _alert in button.REFUSALS.values()]
        # What an alert says around the channels' titles (Telegram cuts at 200).
        alerts.append(button.missing_text(StillMissing(-100, Person(7, "Eve"), (), unknown=True)))
        alerts.append(button.missing_text(StillMissing(-100, Person(7, "Eve"), CHANNELS[:1])))
        buttons = [wording.joined_button(), wording.join_button("")]
        buttons += [str(label) for choices in commands.SETTING_CHOICES.values()
                    for _value, label in choices]
        descriptions = [c.description for _scope, _code, menu in command_menus.wanted([language])
                        for c in menu]
    for alert in alerts:
        assert len(alert) <= TELEGRAM_ALERT, (language, alert)
    for label in buttons:
        assert 0 < len(label) <= BUTTON - 20, (language, label)  # room for a channel title
    for description in descriptions:
        assert 0 < len(description) <= TELEGRAM_COMMAND, (language, description)
