"""Which language a person reads: theirs, else their group's, else English.

Telegram tells us each user's `language_code` (an IETF tag as their app is set:
"es", "pt-br", "fa", "en-GB", sometimes nothing). Nezuko speaks the languages in
`settings.LANGUAGES`; a tag is matched exactly first ("pt-br"), then by its
primary language ("en-gb" -> "en", "es-419" -> "es"). A message addressed to one
person uses `for_person`; a message to several people at once (a coalesced
warning) uses the group's language alone (`for_group`).

Texts are translated with Django's gettext inside `speaking(language)`, which is
`translation.override`: the language is per call, never per process, because one
engine serves people of many languages concurrently.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from django.conf import settings
from django.utils import translation

# gettext's Plural-Forms of each catalog, by locale (English, the source, has none): the
# CLDR rules for whole numbers. Django's own catalogs may have more forms (fractions);
# Django keeps each catalog's formula, so ours need not match theirs.
PLURAL_FORMS = {
    "es": "nplurals=2; plural=(n != 1);",
    "pt_BR": "nplurals=2; plural=(n > 1);",
    "ru": ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
           "(n%100<10 || n%100>=20) ? 1 : 2);"),
    "uk": ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
           "(n%100<10 || n%100>=20) ? 1 : 2);"),
    "id": "nplurals=1; plural=0;",
    "hi": "nplurals=2; plural=(n != 1);",
    "fa": "nplurals=2; plural=(n > 1);",
    "ar": ("nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
           ": n%100>=11 ? 4 : 5);"),
    "tr": "nplurals=2; plural=(n != 1);",
}

AUTO = "auto"  # a group's language when it follows its members (the most common)
DEFAULT = "en"
# A tally knows a group's language once it has seen this many members; before (after a
# restart) the most common language it last wrote down stands.
TALLY_QUORUM = 5
TALLY_MEMBERS = 2_000  # members remembered per group: the most recently seen


def choices() -> tuple[str, ...]:
    """What a group's language may be set to: `auto`, or a shipped language."""
    return (AUTO, *shipped())


def shipped() -> tuple[str, ...]:
    """The language codes with complete catalogs, English first."""
    return tuple(code for code, _name in settings.LANGUAGES)


def supported(tag: str | None) -> str | None:
    """The shipped language for a Telegram `language_code`, or None when none fits."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    codes = shipped()
    if tag in codes:
        return tag
    primary = tag.split("-", 1)[0]
    if primary in codes:
        return primary
    # "pt" (or "pt-pt") still reads Brazilian Portuguese better than English.
    return next((code for code in codes if code.split("-", 1)[0] == primary), None)


def for_group(group_language: str | None, most_common: str | None = None) -> str:
    """The language of a message to a whole group: its set language, or when it is
    `auto` the most common language among its members, else English."""
    if group_language and group_language != AUTO:
        return supported(group_language) or DEFAULT
    return supported(most_common) or DEFAULT


def for_person(person_tag: str | None, group_language: str | None = None,
               most_common: str | None = None) -> str:
    """The language of a message to one person: their own when shipped, else the group's."""
    return supported(person_tag) or for_group(group_language, most_common)


FSI = "\u2068"  # FIRST STRONG ISOLATE: what follows takes the direction of its first letter
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE: back to the sentence's own direction


def isolate(name: str) -> str:
    """A name people chose (a user's, a group's, a channel's), set apart from the
    sentence's direction: an Arabic name in an English sentence, or an English one
    in a Persian sentence, keeps its own order and leaves the words around it alone."""
    return f"{FSI}{name}{PDI}" if name else name


def speaking(language: str):
    """Translate the texts built inside this block into `language`."""
    return translation.override(language)


class Tally:
    """The most common language among each group's members, from those seen speaking.

    Kept in memory by the engine (`Engine.languages`): `note` is a few dict
    operations, so the hot path pays nothing measurable and never queries. Each
    group remembers its `TALLY_MEMBERS` most recently seen members; the leader is
    written down now and then (`changed`) so a restart starts from it.
    """

    def __init__(self, members: int = TALLY_MEMBERS) -> None:
        self.members = members
        # chat -> user -> language, the most recently seen last
        self._seen: dict[int, OrderedDict[int, str]] = {}
        self._counts: dict[int, Counter[str]] = {}
        self._stored: dict[int, str] = {}  # chat -> the leader last written down
        self._tags: dict[str, str | None] = {}  # Telegram's tag -> our language, or None

    def note(self, chat_id: int, user_id: int, tag: str | None) -> None:
        """A member seen speaking: count their language (once per member). On the hot
        path: about a microsecond when nothing changes."""
        if not tag:
            return
        language = self._tags.get(tag, "")
        if language == "":
            if len(self._tags) > 1_000:  # tags are few; a flood of odd ones is not kept
                self._tags.clear()
            language = self._tags[tag] = supported(tag)
        if language is None:
            return
        seen = self._seen.get(chat_id)
        if seen is None:
            seen = self._seen[chat_id] = OrderedDict()
        before = seen.get(user_id)
        if before is not None:
            seen.move_to_end(user_id)
            if before == language:
                return
        seen[user_id] = language
        counts = self._counts.setdefault(chat_id, Counter())
        if before is not None:
            counts[before] -= 1
        counts[language] += 1
        if len(seen) > self.members:
            _oldest, forgotten = seen.popitem(last=False)
            counts[forgotten] -= 1

    def chats(self) -> list[int]:
        return list(self._seen)

    def most_common(self, chat_id: int) -> str | None:
        """The leading language once enough members were seen, else None."""
        seen = self._seen.get(chat_id)
        if not seen or len(seen) < TALLY_QUORUM:
            return None
        counts = self._counts[chat_id]
        language = max(counts, key=counts.__getitem__)
        return language if counts[language] > 0 else None

    def changed(self, stored: dict[int, str]) -> dict[int, str]:
        """Leaders that differ from what is written down (`stored`, chat -> language,
        from the groups' configuration): what to write now. Remembers them as written."""
        out = {}
        for chat_id in self._seen:
            leader = self.most_common(chat_id)
            known = self._stored.get(chat_id, stored.get(chat_id, ""))
            if leader is not None and leader != known:
                out[chat_id] = leader
                self._stored[chat_id] = leader
        return out
