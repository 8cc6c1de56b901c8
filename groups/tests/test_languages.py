from django.utils.translation import get_language

from groups import languages


def test_a_persons_own_language_wins_when_shipped():
    assert languages.for_person("es", "ru") == "es"
    assert languages.for_person("pt-BR", "en") == "pt-br"
    assert languages.for_person("en-GB", "ru") == "en"


def test_a_region_falls_back_to_its_primary_language():
    assert languages.supported("es-419") == "es"
    assert languages.supported("fa_IR") == "fa"
    assert languages.supported("pt") == "pt-br"


def test_an_unshipped_or_missing_language_falls_back_to_the_group_then_english():
    assert languages.for_person("xx", "ru") == "ru"
    assert languages.for_person(None, "tr") == "tr"
    assert languages.for_person("xx", "auto", most_common="uk") == "uk"
    assert languages.for_person("", "auto") == "en"
    assert languages.for_person("xx", "zz") == "en"


def test_speaking_switches_the_language_only_inside_the_block():
    before = get_language()
    with languages.speaking("fa"):
        assert get_language() == "fa"
    assert get_language() == before


def test_names_are_isolated_so_they_keep_their_own_direction():
    assert languages.isolate("مریم") == "\u2068مریم\u2069"
    assert languages.isolate("") == ""


def test_a_group_may_be_set_to_auto_or_a_shipped_language_only():
    assert languages.choices()[0] == "auto"
    assert set(languages.choices()[1:]) == set(languages.shipped())
    assert "de" not in languages.choices()


def test_the_tally_counts_each_member_once_by_their_latest_language():
    tally = languages.Tally()
    for user_id in range(languages.TALLY_QUORUM - 1):
        tally.note(-1, user_id, "fa-IR")
    # Too few members seen yet: no opinion (the written-down one stands).
    assert tally.most_common(-1) is None
    tally.note(-1, 100, "es")
    assert tally.most_common(-1) == "fa"
    # Speaking again counts nothing twice; a member whose app changed moves over.
    for _ in range(10):
        tally.note(-1, 100, "es")
    for user_id in range(3):
        tally.note(-1, user_id, "es")
    assert tally.most_common(-1) == "es"
    # Unknown or missing languages are not counted; other groups are apart.
    tally.note(-1, 200, "xx")
    tally.note(-1, 201, None)
    assert tally.most_common(-2) is None


def test_the_tally_remembers_the_most_recently_seen_members_only():
    tally = languages.Tally(members=languages.TALLY_QUORUM)
    for user_id in range(languages.TALLY_QUORUM):
        tally.note(-1, user_id, "ru")
    for user_id in range(100, 100 + languages.TALLY_QUORUM - 1):
        tally.note(-1, user_id, "uk")
    # The oldest members were forgotten as new ones came: uk leads 4 to 1.
    assert tally.most_common(-1) == "uk"


def test_the_tally_reports_a_changed_leader_once():
    tally = languages.Tally()
    for user_id in range(languages.TALLY_QUORUM):
        tally.note(-1, user_id, "tr")
    assert tally.changed({-1: ""}) == {-1: "tr"}
    assert tally.changed({-1: ""}) == {}  # written already (the stored config is older)
    assert languages.Tally().changed({}) == {}
