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
