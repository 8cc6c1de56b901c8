"""The pieces every Telegram text shares: names and lists, in the reader's language.

Names people chose (a user's, a group's, a channel's title) are isolated with
Unicode's FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE (U+2068 ... U+2069,
`groups.languages.isolate`), so an Arabic name inside an English sentence, or an
English one inside a Persian sentence, keeps its own direction and does not
reorder the words around it.

Lists ("A, B and C", "A or B") and what a person must join are built here with
gettext, so each language writes its own conjunctions; call these inside
`groups.languages.speaking(...)` like the templates they feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import ngettext, pgettext

from groups.languages import FSI, PDI, isolate


def name_html(name: str) -> SafeString:
    """A name for an HTML text: escaped and isolated."""
    return escape(isolate(name))


def html(text: str, **values) -> SafeString:
    """A translated text with its %(placeholders)s filled as HTML: each value escaped
    unless it is already safe HTML (a link, a bold name, another text from here)."""
    escaped = {name: conditional_escape(value) for name, value in values.items()}
    return mark_safe(text % escaped)  # noqa: S308 - the catalog's text, escaped values


def mention(user_id: int, name: str) -> SafeString:
    """A link to a person that Telegram shows as their name (isolated around the link,
    so the link's text is the name alone)."""
    return format_html('{}<a href="tg://user?id={}">{}</a>{}', FSI, user_id, name, PDI)


def bold(name: str) -> SafeString:
    return format_html("{}<b>{}</b>{}", FSI, name, PDI)


def joined(items: Sequence[str], *, any_of: bool = False) -> SafeString:
    """`items` as one list: "A, B and C", or with `any_of` "A, B or C", as HTML
    (plain items are escaped)."""
    return mark_safe(_joined(  # noqa: S308 - every part escaped by `html`
        [conditional_escape(item) for item in items], any_of, html))


def joined_text(items: Sequence[str], *, any_of: bool = False) -> str:
    """The same list as plain text (an alert: Telegram shows it as it is)."""
    return _joined(list(items), any_of, _plain)


def _plain(text: str, **values) -> str:
    return text % values


def _series(items: Sequence[str], fill) -> str:
    """Items one after the other, "A, B, C", without a conjunction."""
    head = items[0] if items else ""
    for item in items[1:]:
        # Translators: joins the items of a list ("A, B").
        head = fill(pgettext("list", "%(items)s, %(item)s"), items=head, item=item)
    return head


def _joined(items: list[str], any_of: bool, fill) -> str:
    if len(items) < 2:
        return items[0] if items else ""
    head = _series(items[:-1], fill)
    if any_of:
        # Translators: the last item of a list of choices ("A, B or C").
        return fill(pgettext("list", "%(items)s or %(last)s"), items=head, last=items[-1])
    # Translators: the last item of a list where every item counts ("A, B and C").
    return fill(pgettext("list", "%(items)s and %(last)s"), items=head, last=items[-1])


def mentions(people: Iterable[tuple[int, str]], more: int = 0) -> SafeString:
    """The people a warning names, as links: "A, B and C", or "A, B, C (+4 more)"."""
    links = [mention(user_id, name) for user_id, name in people]
    if not more:
        return joined(links)
    # Translators: a list of people's names, then how many more are not listed.
    return html(ngettext("%(names)s (+%(count)s more)", "%(names)s (+%(count)s more)", more),
                names=_series(links, html), count=more)


def channels_needed(labels: Sequence[str], *, every: bool, short: int,
                    policy_count: int) -> SafeString:
    """What a person must still join, as HTML: every channel listed (`every`), or
    `short` of them (policy `any`), or `short` more of them when the group asks for
    at least `policy_count` channels."""
    names = [bold(label) for label in labels]
    if every:
        return joined(names)
    choices = joined(names, any_of=True)
    if not policy_count:
        # Translators: what a person must join, e.g. "one of Cats or Dogs". The sentence
        # around it reads "... please join %(what)s". Where the first plural form also
        # serves other numbers (21, 31 ...), write %(count)s instead of "one".
        return html(ngettext("one of %(channels)s", "%(count)s of %(channels)s", short),
                    count=short, channels=choices)
    # Translators: what a person must join, e.g. "one more of Cats or Dogs", and how
    # many channels the group asks for. The sentence around it reads "... please join
    # %(what)s". Where the first plural form also serves other numbers (21, 31 ...),
    # write %(count)s instead of "one".
    return html(ngettext("one more of %(channels)s (this group asks for at least "
                         "%(required)s of its channels)",
                         "%(count)s more of %(channels)s (this group asks for at least "
                         "%(required)s of its channels)", short),
                count=short, channels=choices, required=policy_count)


def join_button(label: str) -> str:
    """A "Join <channel>" button's text (Telegram shows about 64 characters)."""
    # Translators: a button opening a channel to join it. Keep it short: with the
    # channel's title it is cut at 64 characters.
    return pgettext("button", "Join %(channel)s") % {"channel": isolate(label)}


def joined_button() -> str:
    # Translators: the button a person presses after joining the channels (under 30
    # characters). The warning text quotes it: translate both the same way.
    return pgettext("button", "I've joined")
