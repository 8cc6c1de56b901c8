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

from django.conf import settings
from django.utils import translation

AUTO = "auto"  # a group's language when it follows its members (the most common)
DEFAULT = "en"


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
