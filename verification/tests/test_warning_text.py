"""What a warning says: names, channels, the group's own text, all escaped."""

from groups.config import ChannelConfig
from verification.updates import Person
from verification.warnings import NAMES_SHOWN, WarningBoard, language, render

NEWS = ChannelConfig(1, -1001, "Cat <News>", "catnews", "https://t.me/catnews")
SECRET = ChannelConfig(2, -1002, "Secret", "", "")  # private, no link known


def test_it_lists_every_missing_channel_but_buttons_only_those_with_a_link():
    board = WarningBoard()
    warning, is_new = board.add(-100, None, "Cats", Person(1, "Carol"), (NEWS, SECRET))
    text, markup = render(warning)
    assert is_new
    assert "Cat &lt;News&gt;" in text and "Secret" in text
    buttons = [b for row in markup.inline_keyboard for b in row]
    # One Join button (the channel with a link), then "I've joined" bound to carol.
    assert [b.text for b in buttons] == ["Join \u2068Cat <News>\u2069", "I've joined"]
    assert buttons[-1].callback_data == "nz:j:1"


def test_a_shared_warning_binds_its_button_to_everyone_on_it():
    board = WarningBoard()
    first, _ = board.add(-100, None, "Cats", Person(1, "Carol"), (NEWS,))
    second, is_new = board.add(-100, None, "Cats", Person(2, "Dave"), (NEWS,))
    assert second is first and not is_new
    _text, markup = render(first)
    assert markup.inline_keyboard[-1][0].callback_data == "nz:j:0"
    assert first.user_ids == {1, 2}


def test_long_lists_are_cut_with_a_count():
    board = WarningBoard()
    for i in range(NAMES_SHOWN + 5):
        warning, _ = board.add(-100, None, "Cats", Person(i, f"User {i}"), (NEWS,))
    text, _ = render(warning)
    assert f"User {NAMES_SHOWN - 1}" in text and f"User {NAMES_SHOWN}" not in text
    assert "+5 more" in text


def test_a_groups_own_text_fills_placeholders_with_escaped_values():
    board = WarningBoard()
    warning, _ = board.add(-100, None, "Cats & Dogs", Person(7, "<i>Eve</i>"), (NEWS,),
                           custom_text="Hey {mention}, join {channels} to talk in {group} <b>!")
    text, _ = render(warning)
    assert '<a href="tg://user?id=7">&lt;i&gt;Eve&lt;/i&gt;</a>' in text
    assert "Cat &lt;News&gt;" in text and "Cats &amp; Dogs" in text
    # The group's own markup is text, not HTML.
    assert "&lt;b&gt;!" in text


def test_a_user_who_complies_leaves_the_warning_and_an_empty_one_can_go():
    board = WarningBoard()
    warning, _ = board.add(-100, 5, "Cats", Person(1, "Carol"), (NEWS,))
    board.posted(warning, 42)
    assert board.of_message(-100, 42) is warning
    assert board.remove_user(-100, 1) is warning and not warning.users
    board.forget(warning)
    assert board.of_message(-100, 42) is None and board.of_user(-100, 1) is None


def test_a_shared_warning_takes_up_the_groups_text_changed_while_it_is_open():
    board = WarningBoard()
    warning, _ = board.add(-100, None, "Cats", Person(1, "Carol"), (NEWS,))
    # The owner sets a custom text on the dashboard; the next person joins the same warning.
    same, is_new = board.add(-100, None, "Cats", Person(2, "Dave"), (NEWS,),
                             custom_text="Welcome {mention}!")
    text, _ = render(same)
    assert same is warning and not is_new
    assert "Welcome" in text and "Dave" in text


def test_names_of_either_direction_are_isolated_from_the_sentence():
    """An Arabic name in an English sentence (and a Latin channel title beside it) is
    wrapped in FSI ... PDI, so it cannot reorder the words around it."""
    board = WarningBoard()
    board.add(-100, None, "قطط Cats", Person(1, "مريم"), (NEWS,))
    warning, _ = board.add(-100, None, "قطط Cats", Person(2, "Dave"), (NEWS,))
    text, _ = render(warning)
    assert '\u2068<a href="tg://user?id=1">مريم</a>\u2069' in text
    assert '\u2068<a href="tg://user?id=2">Dave</a>\u2069' in text
    assert "<b>\u2068قطط Cats\u2069</b>" in text
    assert "\u2068<b>Cat &lt;News&gt;</b>\u2069" in text
    # Every isolate is closed.
    assert text.count("\u2068") == text.count("\u2069") == 4


def test_one_person_reads_their_language_and_several_the_groups():
    board = WarningBoard()
    warning, _ = board.add(-100, None, "Cats", Person(1, "Zoë", language_code="es-MX"),
                           (NEWS,), language="tr")
    assert language(warning) == "es"
    board.add(-100, None, "Cats", Person(2, "Ali", language_code="fa"), (NEWS,), language="tr")
    assert language(warning) == "tr"
    board.remove_user(-100, 1)
    assert language(warning) == "fa"
